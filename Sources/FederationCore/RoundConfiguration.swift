/// How rounds run. Defaults suit a small production federation; the demo tightens the timeouts.
public struct RoundConfiguration: Sendable, Equatable {
    /// Client sampling (Flower's `fraction_fit`, `min_fit_clients`, `min_available_clients`, …).
    public var selection: SelectionPolicy
    /// Accepted fit results a round needs to aggregate (its quorum), in 1...`minFitClients` (1...`goal.minimum`
    /// with a selection goal). Default 2.
    public var minFitResults: Int
    /// Evaluation reports needed for a round's evaluation to count. Default 1.
    public var minEvaluateResults: Int
    /// Time from handing out fit tasks to closing the training phase. Default 120 s.
    public var fitTimeout: Duration
    /// Time from handing out evaluate tasks to closing the evaluation phase. Default 60 s.
    public var evaluateTimeout: Duration
    /// A client not seen (no poll parked, no heartbeat, no request) for this long is disconnected; an open
    /// task of its counts as a timeout dropout. Default 30 s.
    public var livenessTimeout: Duration
    /// Stop after starting this many rounds in this run (numbering continues from earlier runs); nil runs until
    /// stopped. Default nil.
    public var maxRounds: Int?
    /// Refuses an evaluated model that is worse than the best so far by more than a margin; nil turns it off.
    /// Default nil.
    public var regressionGuard: RegressionGuard?
    /// Checks every fit result before aggregation.
    public var validator: UpdateValidator
    /// Sent with every fit task (`local_epochs`, `learning_rate`, `batch_size`, …).
    public var fitConfig: [String: String]
    /// Sent with every evaluate task.
    public var evaluateConfig: [String: String]
    /// Largest `num_examples` one fit or evaluate result may report; above it the result is refused as
    /// `invalid_value` (422). Bounds the weight a client can claim. Default 100,000,000.
    public var maxExamplesPerResult: Int
    /// After a failed round the next waits this long, doubling with every further failure in a row up to
    /// `maxFailureBackoff`, so a broken store or clients that fail at once cannot spin rounds. A committed
    /// round resets it; operator aborts and rollbacks do not count. Default 1 s.
    public var failureBackoff: Duration
    /// The longest wait between failed rounds. Default 60 s.
    public var maxFailureBackoff: Duration
    /// Caps the share of a round's average (fit and evaluation) any one client can hold; nil leaves FedAvg's
    /// plain example weighting. Default nil.
    public var weightCap: WeightCap?
    /// What turns the round's FedAvg average into the next model (a server optimizer, or FedAvg itself).
    /// Default FedAvg.
    public var strategy: AggregationStrategy
    /// Norm-bounded averaging: an accepted update whose L2 distance to the base model (over its floating-point
    /// tensors) exceeds this is scaled down to it before it is folded, base + (C/‖Δ‖)·Δ; the validator's
    /// `maxUpdateNorm` still refuses what lies beyond that. Applies to the FedAvg family (robust aggregators
    /// need no clipping). Default nil (off).
    public var clipNorm: Double? {
        didSet { precondition(clipNorm.map { $0 > 0 && $0.isFinite } ?? true, "the clip norm must be positive") }
    }
    /// Central differential privacy (DP-FedAvg) for the FedAvg family; check it with `checkPrivacy()`.
    /// Default nil (off).
    public var privacy: DifferentialPrivacy?

    public init(
        selection: SelectionPolicy = SelectionPolicy(),
        minFitResults: Int = 2,
        minEvaluateResults: Int = 1,
        fitTimeout: Duration = .seconds(120),
        evaluateTimeout: Duration = .seconds(60),
        livenessTimeout: Duration = .seconds(30),
        maxRounds: Int? = nil,
        validator: UpdateValidator = UpdateValidator(),
        fitConfig: [String: String] = [:],
        evaluateConfig: [String: String] = [:],
        regressionGuard: RegressionGuard? = nil,
        maxExamplesPerResult: Int = 100_000_000,
        weightCap: WeightCap? = nil,
        failureBackoff: Duration = .seconds(1),
        maxFailureBackoff: Duration = .seconds(60),
        strategy: AggregationStrategy = .fedAvg
    ) {
        self.strategy = strategy
        precondition(failureBackoff >= .zero && maxFailureBackoff >= failureBackoff)
        self.failureBackoff = failureBackoff
        self.maxFailureBackoff = maxFailureBackoff
        precondition(maxExamplesPerResult >= 1)
        if let goal = selection.goal {
            precondition(
                minFitResults >= 1 && minFitResults <= goal.minimum,
                "min_fit_results must be between 1 and the goal's minimum (\(goal.minimum))")
        } else {
            precondition(
                minFitResults >= 1 && minFitResults <= selection.minFitClients,
                "min_fit_results must be between 1 and min_fit_clients (\(selection.minFitClients))")
        }
        precondition(minEvaluateResults >= 1)
        precondition(maxRounds.map { $0 >= 1 } ?? true)
        self.selection = selection
        self.minFitResults = minFitResults
        self.minEvaluateResults = minEvaluateResults
        self.fitTimeout = fitTimeout
        self.evaluateTimeout = evaluateTimeout
        self.livenessTimeout = livenessTimeout
        self.maxRounds = maxRounds
        self.validator = validator
        self.fitConfig = fitConfig
        self.evaluateConfig = evaluateConfig
        self.regressionGuard = regressionGuard
        self.maxExamplesPerResult = maxExamplesPerResult
        self.weightCap = weightCap
    }
}

/// The promotion rule for evaluated models: a candidate whose metric is worse than the best model's by more
/// than `maxRegression` is stored as rejected and never becomes current.
public struct RegressionGuard: Sendable, Equatable {
    /// The federated-evaluation metric compared (`loss` is the evaluation loss). Default `accuracy`.
    public var metric: String
    /// True when larger values are better. Default true.
    public var higherIsBetter: Bool
    /// Largest tolerated step back from the best value. Default 0.05.
    public var maxRegression: Double

    /// The values a client's report may give the guarded metric; a report outside it is refused (422), so one
    /// client cannot set `best` out of reach (an accuracy of 10¹⁵ would make every later round "worse").
    /// Default: 0...1 for rate metrics (names containing accuracy, precision, recall, f1 or auc), else nil.
    public var validRange: ClosedRange<Double>?

    public init(
        metric: String = "accuracy", higherIsBetter: Bool = true, maxRegression: Double = 0.05,
        validRange: ClosedRange<Double>? = nil
    ) {
        precondition(maxRegression >= 0 && maxRegression.isFinite)
        self.metric = metric
        self.higherIsBetter = higherIsBetter
        self.maxRegression = maxRegression
        self.validRange = validRange ?? Self.defaultRange(for: metric)
    }

    /// 0...1 for metrics that are rates by name, else nil.
    public static func defaultRange(for metric: String) -> ClosedRange<Double>? {
        let name = metric.lowercased()
        return ["accuracy", "precision", "recall", "f1", "auc"].contains { name.contains($0) } ? 0...1 : nil
    }

    /// Refuses a report whose guarded metric lies outside `validRange`.
    public func check(_ report: EvaluationReport) throws(UpdateRejection) {
        guard let validRange, let value = metric == "loss" ? report.loss : report.metrics[metric],
            !validRange.contains(value)
        else { return }
        throw UpdateRejection(
            .invalidValue,
            "\(metric) \(value) is outside \(validRange.lowerBound)...\(validRange.upperBound), the range the regression guard accepts"
        )
    }

    /// The value of the guarded metric in an evaluation summary.
    public func value(in summary: EvaluationSummary) -> Double? {
        metric == "loss" ? summary.loss : summary.metrics[metric]
    }

    /// Why `value` is refused against `best`, or nil when it passes.
    public func verdict(value: Double, best: Double) -> String? {
        let regression = higherIsBetter ? best - value : value - best
        guard regression > maxRegression else { return nil }
        return
            "\(metric) \(value) is worse than the best \(best) by \(regression), more than the allowed \(maxRegression)"
    }

    /// True when `value` beats `best`.
    public func improves(_ value: Double, on best: Double?) -> Bool {
        guard let best else { return true }
        return higherIsBetter ? value > best : value < best
    }
}
