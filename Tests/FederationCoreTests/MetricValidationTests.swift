import FederationCore
import Testing

/// Metric names and values a client reports end up in checkpoints, the CLI, log lines and the regression
/// guard: an outside attack forged log lines through a metric named "…\nFORGED", stored 20,000 names, and set
/// `best` to an accuracy of 10¹⁵ so every later round was "worse".
@Suite struct MetricValidationTests {
    static let hostileNames = [
        "acc\nFORGED", "\u{1B}[2J", "", String(repeating: "m", count: 65), "naïve", "with space", "a\u{202E}b",
    ]

    @Test(arguments: hostileNames)
    func hostileMetricNamesAreRefused(name: String) {
        #expect {
            try EvaluationReport(loss: 0.5, numExamples: 1, metrics: [name: 1]).validate(maxExamples: 10)
        } throws: { ($0 as? UpdateRejection)?.reason == .invalidValue }
    }

    @Test func usualNamesPass() throws {
        try EvaluationReport(
            loss: 0.5, numExamples: 1,
            metrics: ["accuracy": 0.9, "val_acc@5": 0.8, "f1.macro": 0.7, "auc/roc": 0.6, "top-1:train": 0.5]
        ).validate(maxExamples: 10)
    }

    @Test func tooManyMetricsOrALossMetricAreRefused() {
        let many = Dictionary(uniqueKeysWithValues: (0...64).map { ("m\($0)", 1.0) })
        #expect {
            try EvaluationReport(loss: 0.5, numExamples: 1, metrics: many).validate(maxExamples: 10)
        } throws: { ($0 as? UpdateRejection)?.reason == .invalidValue }
        #expect {
            try EvaluationReport(loss: 0.5, numExamples: 1, metrics: ["loss": 0.0001]).validate(maxExamples: 10)
        } throws: { ($0 as? UpdateRejection)?.reason == .invalidValue }
    }

    @Test(arguments: [1e15, 1.0001, -0.1])
    func theGuardedRateMustBeARate(value: Double) {
        let regressionGuard = RegressionGuard()
        #expect(regressionGuard.validRange == 0...1)
        #expect {
            try regressionGuard.check(EvaluationReport(loss: 0.5, numExamples: 1, metrics: ["accuracy": value]))
        } throws: { ($0 as? UpdateRejection)?.reason == .invalidValue }
    }

    @Test func otherGuardedMetricsHaveNoDefaultRange() throws {
        #expect(RegressionGuard(metric: "loss", higherIsBetter: false).validRange == nil)
        try RegressionGuard(metric: "loss", higherIsBetter: false).check(EvaluationReport(loss: 1e6, numExamples: 1))
        try RegressionGuard().check(EvaluationReport(loss: 0.5, numExamples: 1, metrics: ["accuracy": 1]))
    }

    @Test func aFitResultWithHostileMetricNamesIsRefusedAndItsTaskStaysOpen() throws {
        let configuration = RoundConfiguration(
            selection: SelectionPolicy(fractionFit: 1, minFitClients: 1, minAvailableClients: 1, fractionEvaluate: 0),
            minFitResults: 1)
        let model = ModelWeights(["w": Tensor(shape: [1], values: [0])])
        var machine = RoundStateMachine<TestInstant>(
            configuration: configuration, model: GlobalModel(version: 1, sha256: "s", weights: model), seed: 1)
        let client = ClientID("c")
        _ = machine.register(client, now: .zero)
        let taken = machine.takeTask(for: client, now: .zero)
        let task = try #require(taken)
        #expect {
            try machine.fitResult(
                task.id, client: client, weights: model, numExamples: 1, metrics: ["fit\nFAKE ROW": 1], now: .zero)
        } throws: { ($0 as? UpdateRejection)?.reason == .invalidValue }
        let actions = try machine.fitResult(
            task.id, client: client, weights: model, numExamples: 1, metrics: ["loss": 0.3], now: .zero)
        #expect(actions.contains { if case .storeCandidate = $0 { true } else { false } })
    }
}
