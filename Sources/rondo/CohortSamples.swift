import CurlHTTP
import Foundation
import Synchronization

/// Latencies and errors `rondo bench cohort` collects from thousands of concurrent clients, by request kind.
final class CohortSamples: Sendable {
    /// What a request was for.
    enum Kind: String, CaseIterable, Sendable {
        case register, poll, heartbeat, metrics
    }

    private struct State {
        var seconds: [Kind: [Double]] = [:]
        /// Errors by kind, then by what went wrong (`http_503`, a transport error's type).
        var errors: [Kind: [String: Int]] = [:]
    }

    private let state = Mutex(State())

    /// A request answered with `status` after `seconds`; a status of 400 or more also counts as an error.
    func record(_ kind: Kind, status: Int, seconds: Double) {
        state.withLock { state in
            state.seconds[kind, default: []].append(seconds)
            if status >= 400 { state.errors[kind, default: [:]]["http_\(status)", default: 0] += 1 }
        }
    }

    /// How an unanswered request failed, for the error table: libcurl's code (28 is a timeout, 7 a refused
    /// connection), or the error's type.
    static func name(of error: any Error) -> String {
        if let transfer = error as? CurlTransferError { return "curl_\(transfer.code)" }
        return "\(type(of: error))"
    }

    /// A request that got no answer.
    func failed(_ kind: Kind, _ what: String) {
        state.withLock { $0.errors[kind, default: [:]][what, default: 0] += 1 }
    }

    func report(
        clients: Int, ramp: Int, hold: Int, startRSSMB: Double, endRSSMB: Double, peakRSSMB: Double,
        cpuSecondsPerMinute: Double
    ) -> CohortReport {
        state.withLock { state in
            var latencies: [String: CohortReport.Latency] = [:]
            for kind in Kind.allCases {
                let sorted = (state.seconds[kind] ?? []).sorted()
                guard !sorted.isEmpty else { continue }
                func percentile(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
                latencies[kind.rawValue] = .init(
                    count: sorted.count, p50Milliseconds: percentile(0.5) * 1000,
                    p99Milliseconds: percentile(0.99) * 1000)
            }
            return CohortReport(
                clients: clients, rampPerSecond: ramp, holdSeconds: hold, coordinatorStartRSSMB: startRSSMB,
                coordinatorEndRSSMB: endRSSMB, coordinatorPeakRSSMB: peakRSSMB,
                coordinatorCPUSecondsPerMinute: cpuSecondsPerMinute, latencies: latencies,
                errors: Dictionary(uniqueKeysWithValues: state.errors.map { ($0.key.rawValue, $0.value) }))
        }
    }
}

/// What `rondo bench cohort` prints.
struct CohortReport: Encodable {
    struct Latency: Encodable {
        var count: Int
        var p50Milliseconds: Double
        var p99Milliseconds: Double

        enum CodingKeys: String, CodingKey {
            case count
            case p50Milliseconds = "p50_ms"
            case p99Milliseconds = "p99_ms"
        }
    }

    var clients: Int
    var rampPerSecond: Int
    var holdSeconds: Int
    var coordinatorStartRSSMB: Double
    var coordinatorEndRSSMB: Double
    var coordinatorPeakRSSMB: Double
    var coordinatorCPUSecondsPerMinute: Double
    /// By request kind; a poll's figure is how much later than its wait its 204 came.
    var latencies: [String: Latency]
    var errors: [String: [String: Int]]

    enum CodingKeys: String, CodingKey {
        case clients, latencies, errors
        case rampPerSecond = "ramp_per_second"
        case holdSeconds = "hold_seconds"
        case coordinatorStartRSSMB = "coordinator_start_rss_mb"
        case coordinatorEndRSSMB = "coordinator_end_rss_mb"
        case coordinatorPeakRSSMB = "coordinator_peak_rss_mb"
        case coordinatorCPUSecondsPerMinute = "coordinator_cpu_seconds_per_minute"
    }

    func jsonText() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    var text: String {
        var lines = [
            "cohort bench: \(clients) clients, ramp \(rampPerSecond)/s, hold \(holdSeconds) s",
            String(
                format: "  coordinator RSS: %.0f MB after start, %.0f MB at the end of the hold, peak %.0f MB",
                coordinatorStartRSSMB, coordinatorEndRSSMB, coordinatorPeakRSSMB),
            String(format: "  coordinator CPU during the hold: %.1f CPU-s/min", coordinatorCPUSecondsPerMinute),
        ]
        for kind in CohortSamples.Kind.allCases {
            guard let latency = latencies[kind.rawValue] else { continue }
            let what = kind == .poll ? "poll (lateness of the 204)" : kind.rawValue
            lines.append(
                String(
                    format: "  %@: %d requests, p50 %.1f ms, p99 %.1f ms", what, latency.count, latency.p50Milliseconds,
                    latency.p99Milliseconds))
        }
        let errorText = errors.sorted { $0.key < $1.key }.map { kind, counts in
            "\(kind): " + counts.sorted { $0.key < $1.key }.map { "\($0.key) × \($0.value)" }.joined(separator: ", ")
        }
        lines.append("  errors: " + (errorText.isEmpty ? "none" : errorText.joined(separator: "; ")))
        return lines.joined(separator: "\n")
    }
}
