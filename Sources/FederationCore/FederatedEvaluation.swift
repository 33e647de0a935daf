/// One client's answer to an evaluate task.
public struct EvaluationReport: Sendable, Equatable {
    /// The largest magnitude a reported loss or metric may have. Weighted sums of values this size stay finite
    /// for any example count (Int.max × 10¹⁵ × 10⁴ clients ≈ 10³⁸), so one client cannot turn a round's
    /// summary into infinity, which the store cannot record.
    public static let maxMagnitude = 1e15

    /// The most metrics one result may report.
    public static let maxMetricCount = 64
    /// The longest metric name, in bytes.
    public static let maxMetricNameBytes = 64

    /// Refuses metric names that are not short identifiers (`[A-Za-z0-9_.:@/-]`, at most 64 bytes) and more
    /// than 64 metrics: names are stored with every checkpoint and printed by the CLI and in log lines, so a
    /// client must not be able to put escape sequences, line breaks or megabytes there.
    public static func checkMetricNames(_ metrics: [String: Double]) throws(UpdateRejection) {
        guard metrics.count <= maxMetricCount else {
            throw UpdateRejection(.invalidValue, "\(metrics.count) metrics; at most \(maxMetricCount) are allowed")
        }
        for name in metrics.keys {
            let valid =
                !name.isEmpty && name.utf8.count <= maxMetricNameBytes
                && name.utf8.allSatisfy { byte in
                    (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                        || "_.:@/-".utf8.contains(byte)
                }
            guard valid else {
                throw UpdateRejection(
                    .invalidValue,
                    "metric names are 1 to 64 of A-Z a-z 0-9 _ . : @ / -, not \(name.debugDescription.prefix(80))")
            }
        }
    }

    /// Refuses a value above `maxMagnitude` in size.
    public static func checkMagnitudes(_ values: [String: Double]) throws(UpdateRejection) {
        if let (name, value) = values.first(where: { abs($0.value) > maxMagnitude }) {
            throw UpdateRejection(.invalidValue, "\(name) \(value) is larger in size than \(maxMagnitude)")
        }
    }

    /// Refuses an example count outside 1...`max`: a client-reported weight must be positive and bounded.
    public static func checkExampleCount(_ count: Int, max: Int) throws(UpdateRejection) {
        guard count > 0 else { throw UpdateRejection(.invalidValue, "num_examples must be positive") }
        guard count <= max else {
            throw UpdateRejection(.invalidValue, "num_examples \(count) exceeds the federation's limit of \(max)")
        }
    }

    public var loss: Double
    public var numExamples: Int
    /// Named metrics such as `accuracy`; averaged across clients weighted by `numExamples`.
    public var metrics: [String: Double]

    public init(loss: Double, numExamples: Int, metrics: [String: Double] = [:]) {
        self.loss = loss
        self.numExamples = numExamples
        self.metrics = metrics
    }

    /// Checks the numbers are usable: finite, and an example count in 1...`maxExamples`.
    public func validate(maxExamples: Int) throws(UpdateRejection) {
        try Self.checkExampleCount(numExamples, max: maxExamples)
        guard loss.isFinite, metrics.values.allSatisfy(\.isFinite) else {
            throw UpdateRejection(.nonFinite, "loss or a metric is NaN or infinite")
        }
        guard metrics["loss"] == nil else {
            throw UpdateRejection(.invalidValue, "\"loss\" is the report's own field, not a metric name")
        }
        try Self.checkMetricNames(metrics)
        try Self.checkMagnitudes(metrics.merging(["loss": loss]) { own, _ in own })
    }
}

/// The weighted result of a round's federated evaluation.
public struct EvaluationSummary: Sendable, Equatable {
    /// Loss averaged over clients, weighted by examples.
    public var loss: Double
    /// Each metric averaged over the clients that reported it, weighted by their examples.
    public var metrics: [String: Double]
    /// Examples evaluated in total.
    public var numExamples: Int
    /// Clients whose report was included.
    public var clients: Int

    public init(loss: Double, metrics: [String: Double], numExamples: Int, clients: Int) {
        self.loss = loss
        self.metrics = metrics
        self.numExamples = numExamples
        self.clients = clients
    }
}

/// Accumulates evaluation reports into an `EvaluationSummary`, weighting each by its example count.
///
/// Reports are a few numbers each, so they are kept and weighted at the end; with a `WeightCap`, no client's
/// report weighs more than the cap's share of the summary.
public struct FederatedEvaluation: Sendable {
    private let weightCap: WeightCap?
    private var reports: [EvaluationReport] = []

    public init(weightCap: WeightCap? = nil) {
        self.weightCap = weightCap
    }

    /// Clients whose report was added.
    public var clients: Int { reports.count }

    /// Adds one validated report.
    public mutating func add(_ report: EvaluationReport) {
        reports.append(report)
    }

    /// The weighted averages, or nil when no report arrived.
    public func summary() -> EvaluationSummary? {
        guard !reports.isEmpty else { return nil }
        let raw = reports.map { Double($0.numExamples) }
        let weights = weightCap?.apply(to: raw) ?? raw
        let total = weights.reduce(0, +)
        var lossSum = 0.0
        var metricSums: [String: (sum: Double, weight: Double)] = [:]
        for (report, weight) in zip(reports, weights) {
            lossSum += report.loss * weight
            for (name, value) in report.metrics {
                let current = metricSums[name] ?? (0, 0)
                metricSums[name] = (current.sum + value * weight, current.weight + weight)
            }
        }
        return EvaluationSummary(
            loss: lossSum / total,
            metrics: metricSums.mapValues { $0.sum / $0.weight },
            numExamples: reports.reduce(0) { $0.saturatingAdd($1.numExamples) },
            clients: reports.count)
    }
}

extension Int {
    /// `self + other`, stopping at `Int.max` instead of trapping: totals of client-reported counts.
    public func saturatingAdd(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }
}
