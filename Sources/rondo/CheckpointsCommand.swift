import ArgumentParser
import Coordinator
import FederationCore
import Foundation
import ModelManager

struct CheckpointsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoints", abstract: "Inspect and manage model checkpoints in the data directory.",
        subcommands: [
            List.self, Show.self, Diff.self, Tag.self, Rollback.self, Export.self, Import.self, Verify.self, Prune.self,
            Migrate.self,
        ],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List checkpoint versions, newest first.")
        @OptionGroup var store: StoreOptions
        @Option(help: "Show only the newest N versions (default: all).") var limit: Int?

        func run() async throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
            let listing = try await store.history().listing(limit: limit)
            let (records, refs) = (listing.checkpoints, listing.refs)
            if store.json { return try store.printJSON(listing) }
            var table = TextTable(headers: [
                "VERSION", "ROUND", "PARENT", "STATUS", "SIZE", "SHA256", "EVAL_ACC", "EVAL_LOSS", "CREATED", "REFS",
            ])
            for record in records {
                table.rows.append([
                    "v\(record.version)", String(record.round), record.parentVersion.map { "v\($0)" } ?? "-",
                    record.status.rawValue + (record.integrityError == nil ? "" : " (CORRUPT)"),
                    byteSize(record.sizeBytes),
                    String(record.sha256.prefix(12)), decimal(record.metrics.evalMetrics["accuracy"]),
                    decimal(record.metrics.evalLoss), timestamp(record.createdAt),
                    refs.filter { $0.value == record.version }.map(\.key).sorted().joined(separator: ","),
                ])
            }
            printLine(table.render())
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one checkpoint: lineage, hash, metrics, tensors.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The version: vN, N, current, best or a tag.") var version: String

        /// `fedadam (beta_1=0.9, beta_2=0.99, eta=0.1, tau=1e-09)`.
        static func strategyText(_ strategy: StrategyView) -> String {
            let parameters = strategy.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            let text = parameters.isEmpty ? strategy.name : "\(strategy.name) (\(parameters.joined(separator: ", ")))"
            guard let privacy = strategy.privacy else { return text }
            let epsilon = privacy.epsilon.map { String(format: "%.4g", $0) } ?? "unbounded"
            return text
                + "; differential privacy (noise_multiplier=\(privacy.noiseMultiplier), clip_norm=\(privacy.clipNorm), epsilon=\(epsilon) at delta=\(privacy.delta))"
        }

        func run() async throws {
            let history = try await store.history()
            let resolved = try await history.resolve(version)
            guard let detail = try await history.detail(version: resolved) else {
                throw CheckpointStoreError(.notFound, "no checkpoint \(version)")
            }
            if store.json { return try store.printJSON(detail) }
            let record = detail.checkpoint
            let refs = detail.refs
            let parent: String = record.parentVersion.map { "v\($0)" } ?? "-"
            let status: String = record.status.rawValue + (record.statusReason.map { " (\($0))" } ?? "")
            let size: String = "\(byteSize(record.sizeBytes)) (\(record.sizeBytes) bytes)"
            var fields: [(String, String)] = [
                ("version", "v\(record.version)"), ("round", String(record.round)), ("parent", parent),
                ("status", status), ("integrity", record.integrityError ?? "ok (verify found no corruption)"),
                ("created", timestamp(record.createdAt)), ("sha256", record.sha256), ("size", size),
                ("refs", refs.isEmpty ? "-" : refs.joined(separator: ", ")),
                ("eval loss", decimal(record.metrics.evalLoss)),
            ]
            fields += record.metrics.evalMetrics.sorted { $0.key < $1.key }.map {
                ("eval \($0.key)", decimal($0.value))
            }
            fields += record.metrics.fitMetrics.sorted { $0.key < $1.key }.map { ("fit \($0.key)", decimal($0.value)) }
            fields.append(("examples", record.metrics.examples.map(String.init) ?? "-"))
            fields.append(("strategy", record.strategy.map(Self.strategyText) ?? "-"))
            fields[4].1 = record.integrityError ?? "ok (verify found no corruption)"
            fields[5].1 = timestamp(record.createdAt)
            let lines = fields.map { $0.0.padded(20) + $0.1 }
            printLine(lines.joined(separator: "\n"))
            var table = TextTable(headers: ["TENSOR", "DTYPE", "SHAPE", "PARAMETERS"])
            for tensor in detail.tensors {
                table.rows.append([tensor.name, tensor.dtype, "\(tensor.shape)", String(tensor.parameters)])
            }
            printLine("\n" + table.render())
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Compare two versions tensor by tensor.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The first version: vN, N, current, best or a tag.") var first: String
        @Argument(help: "The second version.") var second: String

        struct TensorDiff: Encodable {
            var name: String
            @Nullable var shapeA: [Int]?
            @Nullable var shapeB: [Int]?
            @Nullable var l2: Double?
            @Nullable var maxAbs: Double?

            enum CodingKeys: String, CodingKey {
                case name, l2
                case shapeA = "shape_a"
                case shapeB = "shape_b"
                case maxAbs = "max_abs"
            }
        }

        struct DiffAnswer: Encodable {
            var fromVersion: Int
            var toVersion: Int
            var tensors: [TensorDiff]

            enum CodingKeys: String, CodingKey {
                case tensors
                case fromVersion = "from_version"
                case toVersion = "to_version"
            }
        }

        func run() async throws {
            let database = try await store.openStore()
            let a = try await database.resolve(first)
            let b = try await database.resolve(second)
            let left = try SafeTensorsFile.decode(try await database.bytes(version: a)).weights
            let right = try SafeTensorsFile.decode(try await database.bytes(version: b)).weights
            let names = Set(left.names).union(right.names).sorted()
            let diffs = names.map { name -> TensorDiff in
                let x = left[name]
                let y = right[name]
                var diff = TensorDiff(name: name, shapeA: x?.shape, shapeB: y?.shape)
                if let x, let y, x.shape == y.shape {
                    let deltas = zip(x.doubleValues, y.doubleValues).map { $1 - $0 }
                    diff.l2 = deltas.reduce(0) { $0 + $1 * $1 }.squareRoot()
                    diff.maxAbs = deltas.map(abs).max() ?? 0
                }
                return diff
            }
            if store.json { return try store.printJSON(DiffAnswer(fromVersion: a, toVersion: b, tensors: diffs)) }
            var table = TextTable(headers: ["TENSOR", "SHAPE v\(a)", "SHAPE v\(b)", "L2(v\(b)-v\(a))", "MAX|Δ|"])
            for diff in diffs {
                table.rows.append([
                    diff.name, diff.shapeA.map { "\($0)" } ?? "absent", diff.shapeB.map { "\($0)" } ?? "absent",
                    diff.l2.map { String(format: "%.6g", $0) } ?? "-",
                    diff.maxAbs.map { String(format: "%.6g", $0) } ?? "-",
                ])
            }
            printLine(table.render())
        }
    }

    struct Tag: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Point a tag (e.g. production) at a version.")
        @OptionGroup var store: StoreOptions
        @OptionGroup var operatorOptions: OperatorOptions
        @Argument(help: "The version: vN, N, current, best or a tag.") var version: String
        @Argument(help: "The tag name.") var name: String

        func run() async throws {
            let tagged: Int
            switch try await OperatorChannel.open(store, operatorOptions) {
            case .coordinator(let api):
                tagged = try await api.post(
                    "/v1/checkpoints/\(try VersionReference(parsing: version))/tags", ["tag": name],
                    as: TagAnswer.self
                ).version
            case .store(let database, let lock):
                defer { withExtendedLifetime(lock) {} }
                tagged = try await database.resolve(version)
                try await database.tag(version: tagged, name: name, actor: cliActor)
            }
            if store.json { return try store.printJSON(TagAnswer(version: tagged, tag: name)) }
            printLine("tagged v\(tagged) as \(name)")
        }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make an earlier version current (through a running coordinator's admin API, if one runs).")
        @OptionGroup var store: StoreOptions
        @OptionGroup var operatorOptions: OperatorOptions
        @Argument(help: "The version to roll back to: vN, N, current, best or a tag.") var version: String
        @Option(help: "Why (recorded in the audit log).") var reason: String
        @Flag(help: "Allow a version the regression guard rejected or whose round was aborted (recorded).")
        var force = false

        struct Body: Encodable {
            var reason: String
            var force: Bool
        }

        func run() async throws {
            guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ValidationError("--reason must not be empty")
            }
            let answer: RollbackAnswer
            switch try await OperatorChannel.open(store, operatorOptions) {
            case .coordinator(let api):
                answer = try await api.post(
                    "/v1/checkpoints/\(try VersionReference(parsing: version))/rollback",
                    Body(reason: reason, force: force), as: RollbackAnswer.self)
            case .store(let database, let lock):
                defer { withExtendedLifetime(lock) {} }
                let target = try await database.resolve(version)
                let previous = try await database.rollback(
                    to: target, reason: reason, actor: cliActor, force: force)
                answer = RollbackAnswer(fromVersion: previous ?? target, toVersion: target, forced: force)
            }
            if store.json { return try store.printJSON(answer) }
            printLine(
                "current: v\(answer.fromVersion) -> v\(answer.toVersion)" + (answer.forced ? " (forced)" : ""))
        }
    }
}

extension String {
    /// Pads with spaces on the right to at least `length` characters.
    func padded(_ length: Int) -> String {
        count >= length ? self + " " : self + String(repeating: " ", count: length - count)
    }
}
