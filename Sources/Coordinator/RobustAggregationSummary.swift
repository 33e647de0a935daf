import FederationCore

/// What a robust aggregator did in a round, worded for the round record, the audit event, the round's span and
/// the log: the clients it left out (Krum, Multi-Krum) and, for the trimmed mean, the clients whose values were
/// cut most often.
struct RobustAggregationSummary: Sendable {
    var strategy: StrategyName
    var outcome: AggregationOutcome

    /// How many of the most-trimmed clients are named (a round may have thousands of results).
    static let namedTrimmed = 10

    /// Clients whose values were cut at all, by the share of their coordinates cut, most first (ties by id).
    var mostTrimmed: [(client: ClientID, share: Double)] {
        outcome.trimmedShares.filter { $0.value > 0 }.map { ($0.key, $0.value) }
            .sorted { ($1.1, $0.0.rawValue) < ($0.1, $1.0.rawValue) }
            .prefix(Self.namedTrimmed).map { (client: $0.0, share: $0.1) }
    }

    /// `krum excluded c-1, c-2`, `fedtrimmedavg cut most: c-3 100%, c-1 40%`, or `fedmedian`.
    var text: String {
        var parts = [strategy.rawValue]
        if !outcome.excluded.isEmpty {
            parts.append("excluded " + outcome.excluded.map(\.rawValue).joined(separator: ", "))
        }
        let trimmed = mostTrimmed
        if !trimmed.isEmpty {
            parts.append(
                "cut most: "
                    + trimmed.map { "\($0.client.rawValue) \(Int(($0.share * 100).rounded()))%" }
                    .joined(separator: ", "))
        }
        return parts.joined(separator: " ")
    }

    /// The audit event's detail.
    var eventDetail: [String: String] {
        var detail = ["strategy": strategy.rawValue]
        if !outcome.excluded.isEmpty { detail["excluded"] = outcome.excluded.map(\.rawValue).joined(separator: ",") }
        let trimmed = mostTrimmed
        if !trimmed.isEmpty {
            detail["most_trimmed"] = trimmed.map { "\($0.client.rawValue)=\(Self.decimal($0.share))" }
                .joined(separator: ",")
        }
        return detail
    }

    static func decimal(_ value: Double) -> String {
        String(Double((value * 10_000).rounded()) / 10_000)
    }
}
