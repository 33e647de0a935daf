import FederationCore
import Testing

/// A client that reports an absurd `num_examples` must neither crash the round nor own the average
/// (outside testing crashed the coordinator with Int.max followed by a normal result).
@Suite struct ExampleCountAttackTests {
    typealias Machine = RoundStateMachine<TestInstant>

    static let base = GlobalModel(
        version: 1, sha256: "base", weights: ModelWeights(["w": Tensor(shape: [1], values: [0])]))

    static func weights(_ value: Float) -> ModelWeights { ModelWeights(["w": Tensor(shape: [1], values: [value])]) }

    /// Two clients, both selected; evaluation on; optional weight cap.
    static func machine(weightCap: WeightCap? = nil, clients: Int = 2) -> (Machine, [ClientID]) {
        let configuration = RoundConfiguration(
            selection: SelectionPolicy(
                fractionFit: 1, minFitClients: clients, minAvailableClients: clients, fractionEvaluate: 1),
            minFitResults: clients, fitTimeout: .seconds(10), evaluateTimeout: .seconds(10),
            livenessTimeout: .seconds(30), maxExamplesPerResult: 1_000_000, weightCap: weightCap)
        var machine = Machine(configuration: configuration, model: base, seed: 5)
        let ids = (0..<clients).map { ClientID("c\($0)") }
        for id in ids { _ = machine.register(id, now: .zero) }
        return (machine, ids)
    }

    @Test(arguments: [Int.max, Int.max - 1, 1_000_001, Int(Int32.max) + 1])
    func anExampleCountAboveTheLimitIsRefusedAndTheRoundGoesOn(count: Int) throws {
        var (machine, ids) = Self.machine()
        let tasks = ids.map { machine.takeTask(for: $0, now: .zero)! }
        #expect {
            try machine.fitResult(
                tasks[0].id, client: ids[0], weights: Self.weights(100), numExamples: count, metrics: [:], now: .zero)
        } throws: { ($0 as? UpdateRejection)?.reason == .invalidValue }
        _ = try machine.fitResult(
            tasks[0].id, client: ids[0], weights: Self.weights(1), numExamples: 1_000_000, metrics: [:], now: .zero)
        let actions = try machine.fitResult(
            tasks[1].id, client: ids[1], weights: Self.weights(3), numExamples: 1_000_000, metrics: [:], now: .zero)
        guard case .storeCandidate(1, 1, let average, _, _)? = actions.last else {
            Issue.record("expected the aggregate, got \(actions)")
            return
        }
        #expect(average["w"]?.floatValues == [2])
    }

    @Test(arguments: [Int.max, 1_000_001])
    func anEvaluationCountAboveTheLimitIsRefused(count: Int) throws {
        var (machine, ids) = Self.machine()
        var tasks = ids.map { machine.takeTask(for: $0, now: .zero)! }
        for (task, id) in zip(tasks, ids) {
            _ = try machine.fitResult(
                task.id, client: id, weights: Self.weights(1), numExamples: 5, metrics: [:], now: .zero)
        }
        _ = machine.candidateStored(
            round: 1, candidate: GlobalModel(version: 2, sha256: "c", weights: Self.weights(1)), now: .zero)
        tasks = ids.map { machine.takeTask(for: $0, now: .zero)! }
        #expect {
            try machine.evaluationResult(
                tasks[0].id, client: ids[0], report: EvaluationReport(loss: 0.1, numExamples: count), now: .zero)
        } throws: { ($0 as? UpdateRejection)?.reason == .invalidValue }
        _ = try machine.evaluationResult(
            tasks[0].id, client: ids[0], report: EvaluationReport(loss: 0.1, numExamples: 1_000_000), now: .zero)
        let actions = try machine.evaluationResult(
            tasks[1].id, client: ids[1], report: EvaluationReport(loss: 0.3, numExamples: 1_000_000), now: .zero)
        guard case .commit(1, 2, let summary?, _, 10, 2)? = actions.last else {
            Issue.record("expected a commit, got \(actions)")
            return
        }
        #expect(abs(summary.loss - 0.2) < 1e-12)
        #expect(summary.numExamples == 2_000_000)
    }

    @Test func theWeightCapKeepsOneClientFromOwningFitAndEvaluation() throws {
        var (machine, ids) = Self.machine(weightCap: WeightCap(maxShare: 0.5), clients: 3)
        var tasks = ids.map { machine.takeTask(for: $0, now: .zero)! }
        let fit: [(Float, Int)] = [(90, 1_000_000), (0, 10), (0, 10)]
        var actions: [RoundAction<TestInstant>] = []
        for ((value, examples), (task, id)) in zip(fit, zip(tasks, ids)) {
            actions = try machine.fitResult(
                task.id, client: id, weights: Self.weights(value), numExamples: examples,
                metrics: ["accuracy": value == 0 ? 0 : 1], now: .zero)
        }
        guard case .storeCandidate(1, 1, let average, _, _)? = actions.last else {
            Issue.record("expected the aggregate, got \(actions)")
            return
        }
        #expect(average["w"]?.floatValues == [45], "the heavy client holds exactly half")
        _ = machine.candidateStored(
            round: 1, candidate: GlobalModel(version: 2, sha256: "c", weights: average), now: .zero)
        tasks = ids.map { machine.takeTask(for: $0, now: .zero)! }
        let reports: [(Double, Int)] = [(0, 1_000_000), (1, 10), (1, 10)]
        for ((loss, examples), (task, id)) in zip(reports, zip(tasks, ids)) {
            actions = try machine.evaluationResult(
                task.id, client: id, report: EvaluationReport(loss: loss, numExamples: examples), now: .zero)
        }
        guard case .commit(1, 2, let summary?, let fitMetrics, _, 3)? = actions.last else {
            Issue.record("expected a commit, got \(actions)")
            return
        }
        #expect(summary.loss == 0.5)
        #expect(fitMetrics["accuracy"] == 0.5)
    }

    @Test(arguments: [1e308, -1e16, 1e15 + 1e3])
    func aHugeMetricOrLossIsRefusedSoTheSummaryStaysFinite(value: Double) throws {
        var (machine, ids) = Self.machine()
        let tasks = ids.map { machine.takeTask(for: $0, now: .zero)! }
        #expect {
            try machine.fitResult(
                tasks[0].id, client: ids[0], weights: Self.weights(1), numExamples: 5, metrics: ["m": value],
                now: .zero)
        } throws: { ($0 as? UpdateRejection)?.reason == .invalidValue }
        #expect {
            try EvaluationReport(loss: value, numExamples: 2).validate(maxExamples: 10)
        } throws: { ($0 as? UpdateRejection)?.reason == .invalidValue }
        #expect(throws: Never.self) { try EvaluationReport(loss: 1e15, numExamples: 2).validate(maxExamples: 10) }
    }
}
