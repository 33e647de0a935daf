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
        ],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List checkpoint versions, newest first.")
        @OptionGroup var store: StoreOptions

        struct Listing: Encodable {
            var checkpoints: [CheckpointRecord]
            var refs: [String: Int]
        }

        func run() async throws {
            let database = try store.openStore()
            let records = try await database.checkpoints()
            let refs = try await database.refs()
            if store.json { return try store.printJSON(Listing(checkpoints: records, refs: refs)) }
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
        @Argument(help: "The version.") var version: Int

        func run() async throws {
            let database = try store.openStore()
            guard let record = try await database.checkpoint(version: version) else {
                throw ValidationError("no checkpoint version \(version)")
            }
            let refs = try await database.refs().filter { $0.value == version }.map(\.key).sorted()
            if store.json { return try store.printJSON(record) }
            let weights = try SafeTensorsFile.decode(try await database.bytes(version: version)).weights
            let parent: String = record.parentVersion.map { "v\($0)" } ?? "-"
            let status: String = record.status.rawValue + (record.statusReason.map { " (\($0))" } ?? "")
            let size: String = "\(byteSize(record.sizeBytes)) (\(record.sizeBytes) bytes)"
            var fields: [(String, String)] = [
                ("version", "v\(record.version)"), ("round", String(record.round)), ("parent", parent),
                ("status", status), ("integrity", record.integrityError ?? "not found corrupt"),
                ("created", timestamp(record.createdAt)), ("sha256", record.sha256), ("size", size),
                ("refs", refs.isEmpty ? "-" : refs.joined(separator: ", ")),
                ("eval loss", decimal(record.metrics.evalLoss)),
            ]
            fields += record.metrics.evalMetrics.sorted { $0.key < $1.key }.map {
                ("eval \($0.key)", decimal($0.value))
            }
            fields += record.metrics.fitMetrics.sorted { $0.key < $1.key }.map { ("fit \($0.key)", decimal($0.value)) }
            fields.append(("examples", record.metrics.examples.map(String.init) ?? "-"))
            let lines = fields.map { $0.0.padded(20) + $0.1 }
            printLine(lines.joined(separator: "\n"))
            var table = TextTable(headers: ["TENSOR", "DTYPE", "SHAPE", "PARAMETERS"])
            for named in weights.tensors {
                table.rows.append([
                    named.name, named.tensor.dtype.rawValue, "\(named.tensor.shape)", String(named.tensor.elementCount),
                ])
            }
            printLine("\n" + table.render())
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Compare two versions tensor by tensor.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The first version.") var a: Int
        @Argument(help: "The second version.") var b: Int

        struct TensorDiff: Encodable {
            var name: String
            var shapeA: [Int]?
            var shapeB: [Int]?
            var l2: Double?
            var maxAbs: Double?
        }

        func run() async throws {
            let database = try store.openStore()
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
            if store.json { return try store.printJSON(diffs) }
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
        @Argument(help: "The version.") var version: Int
        @Argument(help: "The tag name.") var name: String

        func run() async throws {
            switch try await OperatorChannel.open(store, operatorOptions) {
            case .coordinator(let api):
                _ = try await api.post(
                    "/v1/checkpoints/\(version)/tags", ["tag": name], as: [String: AnyDecodable].self)
            case .store(let database, let lock):
                defer { withExtendedLifetime(lock) {} }
                try await database.tag(version: version, name: name, actor: cliActor)
            }
            printLine("tagged v\(version) as \(name)")
        }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make an earlier version current (through a running coordinator's admin API, if one runs).")
        @OptionGroup var store: StoreOptions
        @OptionGroup var operatorOptions: OperatorOptions
        @Argument(help: "The version to roll back to.") var version: Int
        @Option(help: "Why (recorded in the audit log).") var reason: String

        func run() async throws {
            guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ValidationError("--reason must not be empty")
            }
            let previous: Int?
            switch try await OperatorChannel.open(store, operatorOptions) {
            case .coordinator(let api):
                previous = try await api.post(
                    "/v1/checkpoints/\(version)/rollback", ["reason": reason], as: [String: Int].self)["from_version"]
            case .store(let database, let lock):
                defer { withExtendedLifetime(lock) {} }
                previous = try await database.rollback(to: version, reason: reason, actor: cliActor)
            }
            if store.json { return try store.printJSON(["from_version": previous, "to_version": version]) }
            printLine("current: v\(previous.map(String.init) ?? "-") -> v\(version)")
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a version as a plain safetensors file.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The version.") var version: Int
        @Option(name: .shortAndLong, help: "Output file.") var output: String

        func run() async throws {
            let database = try store.openStore()
            guard let record = try await database.checkpoint(version: version) else {
                throw ValidationError("no checkpoint version \(version)")
            }
            var file = try SafeTensorsFile.decode(try await database.bytes(version: version))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            file.metadata = [
                "rondo_version": String(record.version), "round": String(record.round),
                "metrics": String(decoding: try encoder.encode(record.metrics), as: UTF8.self),
                "sha256_in_store": record.sha256,
            ]
            guard FileManager.default.createFile(atPath: output, contents: Data(file.encoded())) else {
                throw ValidationError("cannot write \(output)")
            }
            printLine("wrote v\(version) to \(output)")
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a safetensors file (from PyTorch, numpy, …) as a new version and make it current.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The safetensors file.") var file: String
        @Flag(help: "Store it without making it current.") var keepCurrent = false
        @Flag(help: "Accept a layout (tensor names, shapes, dtypes) that differs from the current model's.")
        var force = false

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ValidationError("cannot read \(file)")
            }
            let decoded = try SafeTensorsFile.decode(Array(data))
            try ModelImportCheck.checkContents(decoded.weights)
            let bytes = SafeTensorsFile(
                weights: decoded.weights, metadata: ["imported_from": (file as NSString).lastPathComponent]
            ).encoded()
            let lock = try OperatorChannel.requireNoCoordinator(store, action: "import a model")
            defer { withExtendedLifetime(lock) {} }
            let database = try store.openStore()
            let current = try await database.refVersion(.current)
            var layoutChange: String?
            if let current {
                // A current model that cannot be read is exactly when an operator imports a replacement.
                let currentWeights: ModelWeights
                do {
                    currentWeights = try SafeTensorsFile.decode(try await database.bytes(version: current)).weights
                } catch {
                    guard force else { throw error }
                    currentWeights = decoded.weights
                    layoutChange = "the current model v\(current) is unreadable (\(error))"
                }
                do throws(ModelImportCheck.Refusal) {
                    try ModelImportCheck.checkLayout(decoded.weights, against: currentWeights)
                } catch {
                    guard force else {
                        throw ModelImportCheck.Refusal(
                            reason: error.reason, message: error.message + "; pass --force to import it anyway")
                    }
                    layoutChange = error.message
                }
            }
            let version = try await database.insert(
                round: try await database.lastRoundNumber(), parentVersion: current,
                bytes: bytes, tensorCount: decoded.weights.tensors.count, status: .imported, makeCurrent: !keepCurrent,
                actor: cliActor)
            if let layoutChange {
                try await database.recordEvent(
                    kind: .layoutChanged, actor: cliActor, version: version,
                    detail: ["from_version": current.map(String.init) ?? "none", "detail": layoutChange])
            }
            printLine("imported \(file) as v\(version)\(keepCurrent ? "" : " (now current)")")
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute every checkpoint's SHA-256 and run SQLite's integrity check; exit 1 on any problem.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let database = try store.openStore()
            // Recording findings is a write: only as the data directory's owner, holding its lock. While a
            // coordinator runs (it holds the lock) findings are reported only; its rollbacks re-hash anyway.
            let lock = (try? OperatorChannel.requireOwner(store.dataDir)).flatMap {
                try? DataDirectoryLock.tryAcquire(directory: store.dataDir)
            }
            defer { withExtendedLifetime(lock) {} }
            let report = try await database.verify(recording: lock != nil)
            if lock == nil, !store.json {
                printLine("(another process holds the data directory: findings not recorded)")
            }
            if store.json {
                try store.printJSON(report)
            } else {
                printLine("checked \(report.checkpointsChecked) checkpoints; integrity_check: \(report.integrityCheck)")
                for problem in report.problems { printLine("PROBLEM \(problem)") }
                printLine(report.isHealthy ? "ok" : "FAILED")
            }
            if !report.isHealthy { throw ExitCode.failure }
        }
    }

    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete old versions, keeping the newest N and every version current, best or a tag points at.")
        @OptionGroup var store: StoreOptions
        @Option(help: "How many of the newest versions to keep.") var keepLast: Int

        func run() async throws {
            guard keepLast >= 0 else { throw ValidationError("--keep-last must be >= 0") }
            let lock = try OperatorChannel.requireNoCoordinator(store, action: "prune")
            defer { withExtendedLifetime(lock) {} }
            let deleted = try await store.openStore().prune(keepLast: keepLast, actor: cliActor)
            if store.json { return try store.printJSON(["deleted": deleted]) }
            printLine(
                deleted.isEmpty
                    ? "nothing to prune"
                    : "deleted \(deleted.count) versions: \(deleted.map { "v\($0)" }.joined(separator: " "))")
        }
    }
}

extension String {
    /// Pads with spaces on the right to at least `length` characters.
    func padded(_ length: Int) -> String {
        count >= length ? self + " " : self + String(repeating: " ", count: length - count)
    }
}
