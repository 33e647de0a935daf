import ArgumentParser
import FederationCore
import Foundation
import ModelManager

/// Checkpoint commit throughput against a plain file write of the same bytes, and rollback latency by size.
struct CheckpointBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint", abstract: "Time checkpoint commits and rollbacks on a scratch database.")

    @Option(help: "Model size for the commit comparison, in MB.") var sizeMb = 100
    @Option(help: "Model sizes for the rollback timing, in MB.") var rollbackSizesMb: [Int] = [10, 1000]
    @Option(help: "Timed runs (medians are reported).") var runs = 5
    @Option(help: "Scratch directory (on the disk to measure); removed afterwards.") var directory = "./rondo-bench"

    func run() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await CheckpointStore(configuration: .init(path: directory + "/bench.db"))
        let bytes = model(megabytes: sizeMb, value: 1)
        let clock = ContinuousClock()
        var commits: [Double] = []
        var plain: [Double] = []
        var plainSynced: [Double] = []
        var hashing: [Double] = []
        for run in 0..<(runs + 1) {
            let start = clock.now
            let version = try await store.storeCandidate(round: run, parentVersion: nil, bytes: bytes, tensorCount: 1)
                .version
            try await store.commit(version: version, metrics: CheckpointMetrics())
            let committed = clock.now
            let path = directory + "/plain-\(run).bin"
            FileManager.default.createFile(atPath: path, contents: Data(bytes))
            let written = clock.now
            let handle = try FileHandle(
                forWritingTo: URL(fileURLWithPath: directory + "/synced-\(run).bin", isDirectory: false)
                    .creatingIfNeeded())
            try handle.write(contentsOf: Data(bytes))
            try handle.synchronize()
            try handle.close()
            let synced = clock.now
            _ = CheckpointStore.sha256Hex(bytes)
            let hashed = clock.now
            if run > 0 {
                // The first run warms the page cache and is discarded.
                hashing.append(synced.duration(to: hashed).seconds)
                commits.append(start.duration(to: committed).seconds)
                plain.append(committed.duration(to: written).seconds)
                plainSynced.append(written.duration(to: synced).seconds)
            }
            try? FileManager.default.removeItem(atPath: path)
            try? FileManager.default.removeItem(atPath: directory + "/synced-\(run).bin")
        }
        let megabytes = Double(bytes.count) / 1e6
        printLine("checkpoint commit of \(sizeMb) MB (median of \(runs), SHA-256 + chunked insert + commit, WAL):")
        printLine(String(format: "  store commit      %.3f s  %.0f MB/s", median(commits), megabytes / median(commits)))
        printLine(
            String(
                format: "  plain file write  %.3f s  %.0f MB/s  (commit/plain = %.2f)", median(plain),
                megabytes / median(plain), median(commits) / median(plain)))
        printLine(String(format: "  (of the commit, SHA-256 alone takes %.3f s)", median(hashing)))
        printLine(
            String(
                format: "  write + fsync     %.3f s  %.0f MB/s  (commit/fsynced = %.2f)", median(plainSynced),
                megabytes / median(plainSynced), median(commits) / median(plainSynced)))

        for size in rollbackSizesMb {
            let a = try await store.insert(
                round: 0, parentVersion: nil, bytes: model(megabytes: size, value: 2), tensorCount: 1, status: .imported
            )
            let b = try await store.insert(
                round: 0, parentVersion: a, bytes: model(megabytes: size, value: 3), tensorCount: 1, status: .imported)
            var times: [Double] = []
            for run in 0..<(runs * 2) {
                let start = clock.now
                try await store.rollback(to: run % 2 == 0 ? a : b, reason: "bench", actor: "bench")
                times.append(start.duration(to: clock.now).seconds)
            }
            printLine(
                String(
                    format: "rollback between two %d MB versions: median %.3f ms (%d rollbacks)", size,
                    median(times) * 1000, times.count))
        }
    }

    private func model(megabytes: Int, value: Float) -> [UInt8] {
        let count = megabytes * 1_000_000 / 4
        return SafeTensorsFile(
            weights: ModelWeights(["w": Tensor(shape: [count], values: [Float](repeating: value, count: count))])
        ).encoded()
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? .nan : sorted[sorted.count / 2]
    }
}

extension URL {
    /// The same URL, after creating an empty file there if none exists.
    fileprivate func creatingIfNeeded() -> URL {
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        return self
    }
}
