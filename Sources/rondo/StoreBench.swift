import ArgumentParser
import FederationCore
import Foundation
import Logging
import ModelManager
import PostgresStore

/// Checkpoint commit latency on the two backends, measured side by side in one run.
struct StoreBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Time a checkpoint commit on SQLite and on PostgreSQL, interleaved in one run.")

    @Option(help: "A scratch PostgreSQL database to write to (postgres://...; password: env RONDO_STORE_PASSWORD).")
    var postgres: String
    @Option(help: "Model size, in MB.") var sizeMb = 100
    @Option(help: "Timed commits per backend (medians are reported; one warm-up each is discarded).") var runs = 5
    @Option(help: "Scratch directory for the SQLite file; removed afterwards.") var directory = "./rondo-bench"

    func run() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = try postgresConfiguration(postgres, passwordFile: nil, flag: "--postgres")
        let sqlite = try await CheckpointStore(configuration: .init(path: directory + "/bench.db"))
        let postgresStore = try await CheckpointStore.open(
            postgres: configuration, configuration: .init(), logger: Logger(label: "rondo-bench"))
        let count = sizeMb * 1_000_000 / 4
        let file = SafeTensorsFile(
            weights: ModelWeights(["w": Tensor(shape: [count], values: (0..<count).map { Float($0 % 1000) / 1000 })]))
        let clock = ContinuousClock()
        var timings: [String: [Double]] = [:]
        var versions: [String: [Int]] = [:]
        for run in 0...runs {
            // Alternate which backend goes first, so neither always meets a warmer machine.
            let order =
                run.isMultiple(of: 2)
                ? [("sqlite", sqlite), ("postgres", postgresStore)]
                : [
                    ("postgres", postgresStore), ("sqlite", sqlite),
                ]
            for (name, store) in order {
                let start = clock.now
                let (version, _) = try await store.storeCandidate(round: run, parentVersion: nil, file: file)
                try await store.commit(version: version, metrics: CheckpointMetrics())
                let elapsed = start.duration(to: clock.now)
                if run > 0 { timings[name, default: []].append(elapsed.seconds) }
                versions[name, default: []].append(version)
            }
        }
        let megabytes = Double(file.encodedByteCount) / 1e6
        printLine(
            "checkpoint commit of \(String(format: "%.0f", megabytes)) MB, median of \(runs) (chunked insert + SHA-256 + commit):"
        )
        for name in ["sqlite", "postgres"] {
            let median = (timings[name] ?? []).median
            printLine(
                String(
                    format: "  %@ %.3f s  %5.0f MB/s  (runs: %@)",
                    name.padding(toLength: 9, withPad: " ", startingAt: 0),
                    median, megabytes / median,
                    (timings[name] ?? []).map { String(format: "%.3f", $0) }.joined(separator: " ")))
        }
        printLine(
            String(
                format: "  postgres/sqlite = %.2f",
                (timings["postgres"] ?? []).median / (timings["sqlite"] ?? []).median))
        // Keep only the version `current` names in the scratch database.
        _ = try await postgresStore.prune(keepLast: 0, actor: "bench")
    }
}
