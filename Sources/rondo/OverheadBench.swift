import ArgumentParser
import CurlHTTP
import FederationCore
import Foundation

/// `rondo bench overhead`: what a round costs beyond the clients' own work. For each cohort size K it starts
/// `rondo serve` as a separate process with a 64-parameter model, has K clients (libcurl, four multi loops in
/// this process) answer every fit task at once with the model they downloaded, and reads each round's
/// start-to-commit time from the coordinator's history: selection, task delivery, K downloads, K checked and
/// folded uploads, the average, the candidate and the commit. Reports the median and p99 per K and fits
/// `overhead = a + b·K` to the medians.
struct OverheadBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "overhead",
        abstract: "Round overhead with a 64-parameter model for several cohort sizes; fits a + b·K.")

    @Option(parsing: .upToNextOption, help: "Cohort sizes to measure, each against a fresh coordinator.")
    var clients: [Int] = [20, 200, 1000]
    @Option(help: "Rounds per cohort size (every client is selected in each).") var rounds = 20
    @Option(help: "Run this rondo binary as the coordinator instead of this one.") var coordinator: String?
    @Flag(help: "Print one JSON object instead of text.") var json = false

    struct Row: Encodable {
        var clients: Int
        var medianMilliseconds: Double
        var p99Milliseconds: Double
        var roundMilliseconds: [Double]

        enum CodingKeys: String, CodingKey {
            case clients
            case medianMilliseconds = "median_ms"
            case p99Milliseconds = "p99_ms"
            case roundMilliseconds = "round_ms"
        }
    }

    func run() async throws {
        guard !clients.isEmpty, clients.allSatisfy({ $0 >= 1 }), rounds >= 2 else {
            throw ValidationError("--clients must be positive and --rounds at least 2")
        }
        var rows: [Row] = []
        for size in clients { rows.append(try await measure(size)) }
        let (intercept, slope) = Self.fit(rows.map { (Double($0.clients), $0.medianMilliseconds) })
        if json {
            struct Report: Encodable {
                var rows: [Row]
                var interceptMilliseconds: Double
                var perClientMilliseconds: Double
                enum CodingKeys: String, CodingKey {
                    case rows
                    case interceptMilliseconds = "intercept_ms"
                    case perClientMilliseconds = "per_client_ms"
                }
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let report = Report(rows: rows, interceptMilliseconds: intercept, perClientMilliseconds: slope)
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print("round overhead bench: 64-parameter model, \(rounds) rounds per cohort size, every client selected")
        var table = TextTable(headers: ["CLIENTS", "MEDIAN", "P99", "P99 / MEDIAN"])
        for row in rows {
            table.rows.append([
                String(row.clients), String(format: "%.1f ms", row.medianMilliseconds),
                String(format: "%.1f ms", row.p99Milliseconds),
                String(format: "%.2f", row.p99Milliseconds / row.medianMilliseconds),
            ])
        }
        print(table.render())
        print(String(format: "  fit of the medians: %.1f ms + %.3f ms per client", intercept, slope))
    }

    /// One cohort size against a fresh coordinator.
    private func measure(_ size: Int) async throws -> Row {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rondo-overhead-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let weights = ModelWeights(["w": Tensor(shape: [64], values: [Float](repeating: 0.5, count: 64))])
        let initial = SafeTensorsFile(weights: weights, metadata: [:]).encoded()
        let update = SafeTensorsFile(weights: weights, metadata: [WireProtocol.numExamplesKey: "10"]).encoded()
        let server = try BenchCoordinator(
            directory: directory, initialModel: initial, clients: size, rounds: rounds,
            extra: [
                "--registrations-per-second", String(max(size * 2, 100)), "--max-clients", String(max(size, 10_000)),
            ], executable: coordinator)
        defer { server.stop() }
        let url = try await server.waitUntilListening()
        let pool = (0..<4).map { _ in CurlHTTPClient() }
        defer { pool.forEach { $0.shutdown() } }
        let origin = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<size {
                let client = BenchClient(http: pool[index % pool.count], url: url, name: "overhead-\(index)")
                group.addTask { _ = try await client.participate(rounds: rounds, update: update, origin: origin) }
            }
            try await group.waitForAll()
        }
        let seconds = try await server.roundDurations(http: pool[0], url: url, count: rounds)
        let milliseconds = seconds.map { $0 * 1000 }
        let sorted = milliseconds.sorted()
        let p99 = sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.99).rounded(.up)) - 1)]
        return Row(
            clients: size, medianMilliseconds: milliseconds.median, p99Milliseconds: p99,
            roundMilliseconds: milliseconds)
    }

    /// Least-squares line through `points`; with one point, that point's value and no slope.
    static func fit(_ points: [(x: Double, y: Double)]) -> (intercept: Double, slope: Double) {
        guard points.count > 1 else { return (points.first?.y ?? .nan, 0) }
        let n = Double(points.count)
        let meanX = points.map(\.x).reduce(0, +) / n
        let meanY = points.map(\.y).reduce(0, +) / n
        let covariance = points.map { ($0.x - meanX) * ($0.y - meanY) }.reduce(0, +)
        let variance = points.map { ($0.x - meanX) * ($0.x - meanX) }.reduce(0, +)
        guard variance > 0 else { return (meanY, 0) }
        let slope = covariance / variance
        return (meanY - slope * meanX, slope)
    }
}
