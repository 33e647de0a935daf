import ArgumentParser
import Coordinator
import FederationCore
import Foundation
import Logging
import ModelManager
import PostgresStore

/// The store maintenance commands: export, import, verify, prune.
extension CheckpointsCommand {
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a version as a plain safetensors file.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The version: vN, N, current, best or a tag.") var reference: String
        @Option(name: .shortAndLong, help: "Output file.") var output: String

        func run() async throws {
            let database = try await store.openStore()
            let version = try await database.resolve(reference)
            guard let record = try await database.checkpoint(version: version) else {
                throw CheckpointStoreError(.notFound, "no checkpoint \(reference)")
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
                throw CommandFailure("cannot write \(output)", code: "io")
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
                throw CommandFailure("cannot read \(file)", code: "io")
            }
            guard data.count <= ServedModel.maxImportByteCount else {
                throw CommandFailure(
                    "\(file) has \(data.count) bytes; a coordinator takes models up to 4 GiB − 64 KiB",
                    code: "model_too_large")
            }
            let decoded = try SafeTensorsFile.decode(Array(data))
            try ModelImportCheck.checkContents(decoded.weights)
            let bytes = SafeTensorsFile(
                weights: decoded.weights, metadata: ["imported_from": (file as NSString).lastPathComponent]
            ).encoded()
            guard bytes.count <= ServedModel.maxImportByteCount else {
                throw CommandFailure(
                    "\(file) encodes to \(bytes.count) bytes; a coordinator takes models up to 4 GiB − 64 KiB",
                    code: "model_too_large")
            }
            let lock = try await OperatorChannel.requireNoCoordinator(store, action: "import a model")
            defer { withExtendedLifetime(lock) {} }
            let database = try await store.openStore()
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
        @Option(
            name: .customLong("store"),
            help:
                "Verify this PostgreSQL store (postgres://...; password: env RONDO_STORE_PASSWORD) instead; reports only."
        )
        var postgresURL: String?

        func run() async throws {
            if let postgresURL {
                let configuration = try postgresConfiguration(postgresURL, passwordFile: nil, flag: "--store")
                let database = try await CheckpointStore.open(
                    postgres: configuration, configuration: .init(), logger: Logger(label: "rondo-verify"))
                return try report(try await database.verify(recording: false))
            }
            let database = try await store.openStore()
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
            try self.report(report)
        }

        private func report(_ report: VerificationReport) throws {
            if store.json {
                try store.printJSON(report)
            } else {
                printLine(
                    "checked \(report.checkpointsChecked) checkpoints"
                        + (postgresURL == nil
                            ? "; integrity_check: \(report.integrityCheck)" : " (every chunk read back)"))
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
        @Flag(help: "Only list what would be deleted.") var dryRun = false

        struct Answer: Encodable {
            var deleted: [Int]
            var dryRun: Bool
            var keepLast: Int

            enum CodingKeys: String, CodingKey {
                case deleted
                case dryRun = "dry_run"
                case keepLast = "keep_last"
            }
        }

        func run() async throws {
            guard keepLast >= 0 else { throw ValidationError("--keep-last must be >= 0") }
            let deleted: [Int]
            if dryRun {
                deleted = try await store.openStore().prune(keepLast: keepLast, actor: cliActor, dryRun: true)
            } else {
                let lock = try await OperatorChannel.requireNoCoordinator(store, action: "prune")
                defer { withExtendedLifetime(lock) {} }
                deleted = try await store.openStore().prune(keepLast: keepLast, actor: cliActor)
            }
            if store.json { return try store.printJSON(Answer(deleted: deleted, dryRun: dryRun, keepLast: keepLast)) }
            let versions = deleted.map { "v\($0)" }.joined(separator: " ")
            switch (deleted.isEmpty, dryRun) {
            case (true, _):
                printLine("nothing to prune: every version is among the newest \(keepLast) or named by a ref")
            case (false, true):
                printLine("would delete \(deleted.count) versions (current, best and tagged ones stay):\n  \(versions)")
            case (false, false): printLine("deleted \(deleted.count) versions: \(versions)")
            }
        }
    }
}
