import FederationCore
import Testing

/// Failing rounds back off exponentially instead of spinning (a full disk drove 3,154 failed rounds in ten
/// minutes before this existed).
@Suite struct FailureBackoffTests {
    typealias Machine = RoundStateMachine<TestInstant>

    static let base = GlobalModel(
        version: 1, sha256: "base", weights: ModelWeights(["w": Tensor(shape: [1], values: [0])]))

    static func machine() -> (Machine, ClientID) {
        let configuration = RoundConfiguration(
            selection: SelectionPolicy(fractionFit: 1, minFitClients: 1, minAvailableClients: 1, fractionEvaluate: 0),
            minFitResults: 1, fitTimeout: .seconds(10), livenessTimeout: .seconds(1000),
            failureBackoff: .seconds(1), maxFailureBackoff: .seconds(8))
        var machine = Machine(configuration: configuration, model: base, seed: 1)
        let client = ClientID("c")
        _ = machine.register(client, now: .zero)
        return (machine, client)
    }

    /// Runs the open round to a store failure at `now`; returns the actions of the failure.
    static func failRound(_ machine: inout Machine, _ client: ClientID, at now: TestInstant) throws -> [RoundAction<
        TestInstant
    >] {
        let taken = machine.takeTask(for: client, now: now)
        let task = try #require(taken)
        _ = try machine.fitResult(
            task.id, client: client, weights: ModelWeights(["w": Tensor(shape: [1], values: [1])]), numExamples: 1,
            metrics: [:], now: now)
        return machine.candidateStoreFailed(round: task.round, message: "database or disk is full", now: now)
    }

    @Test func consecutiveFailuresWaitLongerUpToTheCap() throws {
        var (machine, client) = Self.machine()
        var now = TestInstant.zero
        var delays: [Double] = []
        for _ in 0..<6 {
            let actions = try Self.failRound(&machine, client, at: now)
            guard case .backingOff(let until, let delay, _)? = actions.work().first else {
                Issue.record("no backoff in \(actions)")
                return
            }
            delays.append(delay.seconds)
            #expect(machine.openRound == nil, "no round starts at once after a failure")
            #expect(machine.tick(now: until.advanced(by: .milliseconds(-1))).isEmpty, "nor before the wait is over")
            let started = machine.tick(now: until)
            guard case .roundStarted? = started.work().first else {
                Issue.record("the next round did not start after the wait: \(started)")
                return
            }
            now = until
        }
        #expect(delays == [1, 2, 4, 8, 8, 8])
        #expect(machine.consecutiveFailures == 6)
    }

    @Test func aCommitResetsTheBackoff() throws {
        var (machine, client) = Self.machine()
        var actions = try Self.failRound(&machine, client, at: .zero)
        guard case .backingOff(let until, _, _)? = actions.work().first else {
            Issue.record("no backoff")
            return
        }
        _ = machine.tick(now: until)
        let taken = machine.takeTask(for: client, now: until)
        let task = try #require(taken)
        actions = try machine.fitResult(
            task.id, client: client, weights: ModelWeights(["w": Tensor(shape: [1], values: [1])]), numExamples: 1,
            metrics: [:], now: until)
        guard case .storeCandidate(let round, _, let weights, _, _)? = actions.last else {
            Issue.record("no store")
            return
        }
        _ = machine.candidateStored(
            round: round, candidate: GlobalModel(version: 2, sha256: "two", weights: weights), now: until)
        let committed = machine.committed(round: round, now: until)
        #expect(machine.consecutiveFailures == 0)
        #expect(committed.contains { if case .roundStarted = $0 { true } else { false } }, "no wait after a commit")
    }

    @Test func anOperatorAbortDoesNotBackOff() throws {
        var (machine, _) = Self.machine()
        _ = machine.tick(now: .zero)
        let aborted = machine.abortRound(reason: "operator", now: .zero)
        let actions = try #require(aborted)
        #expect(!actions.contains { if case .backingOff = $0 { true } else { false } })
        #expect(machine.consecutiveFailures == 0)
    }

    @Test func clientsMayDownloadOnlyTheCurrentModelAndTheirTasksModel() throws {
        var (machine, client) = Self.machine()
        #expect(machine.taskModelVersion(for: client) == 1)
        _ = try Self.failRound(&machine, client, at: .zero)
        #expect(machine.taskModelVersion(for: client) == nil, "no open task between rounds")
        #expect(machine.taskModelVersion(for: ClientID("stranger")) == nil)
    }

    @Test func aRollbackPauseOrTheEndOfTheFederationClearsTheWait() throws {
        var (machine, client) = Self.machine()
        _ = try Self.failRound(&machine, client, at: .zero)
        _ = machine.tick(now: .seconds(1))  // the first wait (1 s) is over: the next round starts
        _ = try Self.failRound(&machine, client, at: .seconds(1))
        #expect(machine.failureBackoff == .seconds(2))
        _ = machine.setPaused(true, now: .seconds(2))
        #expect(machine.failureBackoff == .zero, "nothing is held back while paused")
        let resumed = machine.setPaused(false, now: .seconds(2))
        #expect(machine.failureBackoff == .seconds(2) && resumed.isEmpty, "resuming keeps the wait")
        let rolledBack = machine.replaceModel(with: Self.base, reason: "rollback", now: .seconds(2))
        #expect(machine.failureBackoff == .zero && machine.consecutiveFailures == 0)
        #expect(rolledBack.contains { if case .roundStarted = $0 { true } else { false } }, "a rollback starts at once")
    }

    @Test func aGuardRejectionIsNotAFailureToBackOffFrom() {
        // Covered through the public path: `rejectionRecorded` finishes without `backingOff`.
        let configuration = RoundConfiguration(
            selection: SelectionPolicy(fractionFit: 1, minFitClients: 1, minAvailableClients: 1, fractionEvaluate: 1),
            minFitResults: 1, fitTimeout: .seconds(10), evaluateTimeout: .seconds(10), livenessTimeout: .seconds(100),
            regressionGuard: RegressionGuard(maxRegression: 0.01))
        var machine = Machine(configuration: configuration, model: Self.base, seed: 1, bestMetricValue: 0.9)
        let client = ClientID("c")
        _ = machine.register(client, now: .zero)
        let fit = machine.takeTask(for: client, now: .zero)!
        _ = try? machine.fitResult(
            fit.id, client: client, weights: Self.base.weights, numExamples: 1, metrics: [:], now: .zero)
        _ = machine.candidateStored(
            round: 1, candidate: GlobalModel(version: 2, sha256: "c", weights: Self.base.weights), now: .zero)
        let evaluate = machine.takeTask(for: client, now: .zero)!
        let rejecting = try? machine.evaluationResult(
            evaluate.id, client: client, report: EvaluationReport(loss: 1, numExamples: 1, metrics: ["accuracy": 0.1]),
            now: .zero)
        guard case .reject? = rejecting?.last else {
            Issue.record("expected a guard rejection, got \(String(describing: rejecting))")
            return
        }
        let finished = machine.rejectionRecorded(round: 1, now: .zero)
        #expect(!finished.contains { if case .backingOff = $0 { true } else { false } })
        #expect(machine.consecutiveFailures == 0)
    }
}
