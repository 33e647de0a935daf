/// How rounds run. Defaults suit a small production federation; the demo tightens the timeouts.
public struct RoundConfiguration: Sendable, Equatable {
    /// Client sampling (Flower's `fraction_fit`, `min_fit_clients`, `min_available_clients`, …).
    public var selection: SelectionPolicy
    /// Accepted fit results a round needs to aggregate (its quorum), in 1...`minFitClients`. Default 2.
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
    /// Stop after this many rounds; nil runs until stopped. Default nil.
    public var maxRounds: Int?
    /// Checks every fit result before aggregation.
    public var validator: UpdateValidator
    /// Sent with every fit task (`local_epochs`, `learning_rate`, `batch_size`, …).
    public var fitConfig: [String: String]
    /// Sent with every evaluate task.
    public var evaluateConfig: [String: String]

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
        evaluateConfig: [String: String] = [:]
    ) {
        precondition(
            minFitResults >= 1 && minFitResults <= selection.minFitClients,
            "min_fit_results must be between 1 and min_fit_clients (\(selection.minFitClients))")
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
    }
}
