/// One client's answer to an evaluate task.
public struct EvaluationReport: Sendable, Equatable {
    public var loss: Double
    public var numExamples: Int
    /// Named metrics such as `accuracy`; averaged across clients weighted by `numExamples`.
    public var metrics: [String: Double]

    public init(loss: Double, numExamples: Int, metrics: [String: Double] = [:]) {
        self.loss = loss
        self.numExamples = numExamples
        self.metrics = metrics
    }

    /// Checks the numbers are usable: finite, and a positive example count.
    public func validate() throws(UpdateRejection) {
        guard numExamples > 0 else { throw UpdateRejection(.invalidValue, "num_examples must be positive") }
        guard loss.isFinite, metrics.values.allSatisfy(\.isFinite) else {
            throw UpdateRejection(.nonFinite, "loss or a metric is NaN or infinite")
        }
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
public struct FederatedEvaluation: Sendable {
    private var lossSum = 0.0
    private var examples = 0
    private var metricSums: [String: (sum: Double, examples: Int)] = [:]
    public private(set) var clients = 0

    public init() {}

    /// Adds one validated report.
    public mutating func add(_ report: EvaluationReport) {
        let weight = Double(report.numExamples)
        lossSum += report.loss * weight
        examples += report.numExamples
        for (name, value) in report.metrics {
            let current = metricSums[name] ?? (0, 0)
            metricSums[name] = (current.sum + value * weight, current.examples + report.numExamples)
        }
        clients += 1
    }

    /// The weighted averages, or nil when no report arrived.
    public func summary() -> EvaluationSummary? {
        guard examples > 0 else { return nil }
        return EvaluationSummary(
            loss: lossSum / Double(examples),
            metrics: metricSums.mapValues { $0.sum / Double($0.examples) },
            numExamples: examples,
            clients: clients)
    }
}
