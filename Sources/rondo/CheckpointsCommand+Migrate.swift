import ArgumentParser
import Coordinator
import Foundation
import Logging
import ModelManager
import PostgresStore

extension CheckpointsCommand {
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a whole federation from SQLite into an empty PostgreSQL database, then check the copy.",
            discussion: """
                Every version with its bytes and server state, every ref, round, client (token hashes), audit event \
                and privacy-ledger row moves, with the same numbers, in one transaction. The copy is then compared \
                with the source record by record and re-hashed. The source is left as it was. No coordinator may run \
                on either store meanwhile.
                """)
        @Option(help: "The source: sqlite:PATH to a rondo.db, or a data directory.") var from: String
        @Option(help: "The destination: postgres://USER@HOST:PORT/DATABASE, empty.") var to: String
        @Option(help: "File holding the destination's password (else env RONDO_STORE_PASSWORD).")
        var toPasswordFile: String?
        @Flag(help: "Print JSON instead of text.") var json = false

        struct Answer: Encodable {
            var rows: [String: Int]
            var bytes: Int
            var verified: Bool
            var differences: [String]
        }

        func run() async throws {
            var path = from.hasPrefix("sqlite:") ? String(from.dropFirst("sqlite:".count)) : from
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                path = resolvedDatabasePath(path)
            }
            guard FileManager.default.fileExists(atPath: path) else {
                throw CommandFailure("no Rondo database at \(path)", code: "no_database")
            }
            let directory = (path as NSString).deletingLastPathComponent
            guard let lock = try DataDirectoryLock.tryAcquire(directory: directory.isEmpty ? "." : directory) else {
                throw CommandFailure(
                    "a coordinator runs on \(directory); stop it before you migrate (the copy must be whole)",
                    code: "coordinator_running")
            }
            defer { withExtendedLifetime(lock) {} }
            let destination = try postgresConfiguration(to, passwordFile: toPasswordFile, flag: "--to")
            let source = try await CheckpointStore(configuration: .init(path: path))
            let target = try await CheckpointStore.open(
                postgres: destination, configuration: .init(), logger: Logger(label: "rondo-migrate"))
            let report: StoreCopyReport
            do {
                report = try await source.copy(to: target)
            } catch let error as CheckpointStoreError {
                throw CommandFailure(error.message, code: error.code.description)
            }
            // `copy` compared the copy with the source and re-hashed it inside its transaction, and kept nothing
            // otherwise: reaching here means it checked out.
            if json {
                let answer = Answer(rows: report.rows, bytes: report.bytes, verified: true, differences: [])
                printLine(String(decoding: try JSONStyle.encoder(pretty: true).encode(answer), as: UTF8.self))
            } else {
                for (table, rows) in report.rows.sorted(by: { $0.key < $1.key }) { printLine("\(table): \(rows) rows") }
                printLine("\(byteSize(report.bytes)) of model and state chunks")
                printLine("copied to \(destination.redactedURL) and checked: every record and hash matches")
            }
        }
    }
}
