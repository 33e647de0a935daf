import FederationCore
import Testing

@Suite struct RoundStateMachineTests {
    typealias Machine = RoundStateMachine<TestInstant>
    typealias Action = RoundAction<TestInstant>

    static let base = GlobalModel(
        version: 1, sha256: "base", weights: ModelWeights(["w": Tensor(shape: [2], values: [0, 0])]))

    static func weights(_ a: Float, _ b: Float) -> ModelWeights {
        ModelWeights(["w": Tensor(shape: [2], values: [a, b])])
    }

    /// A machine with three registered clients, all selected in round 1 (quorum 2, 10 s deadline).
    static func started(minFitResults: Int = 2, clients: Int = 3) -> (Machine, [ClientID], [Action]) {
        let configuration = RoundConfiguration(
            selection: SelectionPolicy(
                fractionFit: 1, minFitClients: 2, minAvailableClients: clients, fractionEvaluate: 0),
            minFitResults: minFitResults, fitTimeout: .seconds(10), livenessTimeout: .seconds(3))
        var machine = Machine(configuration: configuration, model: base, seed: 1)
        let ids = (1...clients).map { ClientID("c\($0)") }
        var actions: [Action] = []
        for id in ids { actions += machine.register(id, now: .zero) }
        return (machine, ids, actions)
    }

    static func tasks(_ machine: inout Machine, _ ids: [ClientID], at now: TestInstant = .zero) -> [ClientID: RoundTask<
        TestInstant
    >] {
        var tasks: [ClientID: RoundTask<TestInstant>] = [:]
        for id in ids { tasks[id] = machine.takeTask(for: id, now: now) }
        return tasks
    }

    static func report(in actions: [Action]) -> RoundReport<TestInstant>? {
        for case .roundFinished(let report) in actions { return report }
        return nil
    }

    static func storedCandidate(in actions: [Action]) -> ModelWeights? {
        for case .storeCandidate(_, _, let weights, _, _) in actions { return weights }
        return nil
    }

    @Test func roundStartsWhenEnoughClientsAndHandsEachATask() {
        var (machine, ids, actions) = Self.started()
        guard case .roundStarted(1, 1, let selected)? = actions.work().first else {
            Issue.record("no roundStarted in \(actions)")
            return
        }
        #expect(selected == ids)
        #expect(machine.phaseName == .training)
        let tasks = Self.tasks(&machine, ids)
        #expect(tasks.count == 3)
        #expect(tasks.values.allSatisfy { $0.kind == .fit && $0.modelVersion == 1 && $0.round == 1 })
        #expect(machine.takeTask(for: ids[0], now: .zero) == tasks[ids[0]], "asking again returns the same task")
    }

    @Test func quorumReachedAggregatesThenCommits() throws {
        var (machine, ids, _) = Self.started()
        let tasks = Self.tasks(&machine, ids)
        _ = try machine.fitResult(
            tasks[ids[0]]!.id, client: ids[0], weights: Self.weights(1, 1), numExamples: 1, metrics: [:],
            now: .seconds(1))
        _ = try machine.fitResult(
            tasks[ids[1]]!.id, client: ids[1], weights: Self.weights(4, 4), numExamples: 3, metrics: [:],
            now: .seconds(2))
        let actions = try machine.fitResult(
            tasks[ids[2]]!.id, client: ids[2], weights: Self.weights(0, 8), numExamples: 4, metrics: [:],
            now: .seconds(3))
        let aggregate = try #require(Self.storedCandidate(in: actions))
        #expect(aggregate["w"]?.floatValues == [1.625, 5.625])  // (1·1 + 4·3 + 0·4)/8, (1·1 + 4·3 + 8·4)/8
        #expect(machine.phaseName == .aggregating)

        let candidate = GlobalModel(version: 2, sha256: "two", weights: aggregate)
        let commitActions = machine.candidateStored(round: 1, candidate: candidate, now: .seconds(3))
        guard case .commit(1, 2, nil, _, 8, 3)? = commitActions.work().first else {
            Issue.record("expected a commit, got \(commitActions)")
            return
        }
        let finished = machine.committed(round: 1, now: .seconds(4))
        let report = try #require(Self.report(in: finished))
        #expect(report.outcome == .committed)
        #expect(report.accepted == 3 && report.resultVersion == 2 && report.fitDropoutCount == 0)
        #expect(machine.model.version == 2)
        guard case .roundStarted(2, 2, _)? = finished.work().dropFirst().first else {
            Issue.record("next round should start from version 2: \(finished)")
            return
        }
    }

    @Test func deadlineClosesTheRoundAndCountsTimeouts() throws {
        var (machine, ids, _) = Self.started()
        let tasks = Self.tasks(&machine, ids)
        _ = try machine.fitResult(
            tasks[ids[0]]!.id, client: ids[0], weights: Self.weights(1, 1), numExamples: 5, metrics: [:],
            now: .seconds(1))
        _ = try machine.fitResult(
            tasks[ids[1]]!.id, client: ids[1], weights: Self.weights(3, 3), numExamples: 5, metrics: [:],
            now: .seconds(1))
        // The third client keeps heartbeating but never answers.
        for second in 2...9 { _ = machine.touch(ids[2], now: .seconds(Double(second))) }
        #expect(machine.tick(now: .seconds(9.9)).work().isEmpty)
        let actions = machine.tick(now: .seconds(10))
        #expect(actions.contains { if case .clientDropped(ids[2], .fit, .timeout) = $0 { true } else { false } })
        #expect(Self.storedCandidate(in: actions)?["w"]?.floatValues == [2, 2])
    }

    @Test func lateResultAfterTheDeadlineIsRejectedAndChangesNothing() throws {
        var (machine, ids, _) = Self.started()
        let tasks = Self.tasks(&machine, ids)
        _ = machine.tick(now: .seconds(11))  // everyone timed out: the round fails
        #expect(machine.failedRounds == 1)
        let before = machine.model
        #expect(throws: UpdateRejection(.late, "task \(tasks[ids[0]]!.id) already ended as a timeout dropout")) {
            try machine.fitResult(
                tasks[ids[0]]!.id, client: ids[0], weights: Self.weights(9, 9), numExamples: 1, metrics: [:],
                now: .seconds(12))
        }
        #expect(machine.model == before)
    }

    @Test func duplicateResultIsRejected() throws {
        var (machine, ids, _) = Self.started()
        let tasks = Self.tasks(&machine, ids)
        _ = try machine.fitResult(
            tasks[ids[0]]!.id, client: ids[0], weights: Self.weights(1, 1), numExamples: 1, metrics: [:],
            now: .seconds(1))
        #expect {
            try machine.fitResult(
                tasks[ids[0]]!.id, client: ids[0], weights: Self.weights(1, 1), numExamples: 1, metrics: [:],
                now: .seconds(1))
        } throws: { ($0 as? UpdateRejection)?.reason == .duplicate }
    }

    @Test func anotherClientsTaskAndUnknownTasksAreRejected() throws {
        var (machine, ids, _) = Self.started()
        let tasks = Self.tasks(&machine, ids)
        #expect {
            try machine.fitResult(
                tasks[ids[0]]!.id, client: ids[1], weights: Self.weights(1, 1), numExamples: 1, metrics: [:],
                now: .seconds(1))
        } throws: { ($0 as? UpdateRejection)?.reason == .notYourTask }
        #expect {
            try machine.fitResult(
                TaskID("r9-f1"), client: ids[1], weights: Self.weights(1, 1), numExamples: 1, metrics: [:],
                now: .seconds(1))
        } throws: { ($0 as? UpdateRejection)?.reason == .unknownTask }
    }

    @Test func invalidUpdateIsRejectedAndNotAggregated() throws {
        var (machine, ids, _) = Self.started(minFitResults: 1)
        let tasks = Self.tasks(&machine, ids)
        #expect {
            try machine.fitResult(
                tasks[ids[0]]!.id, client: ids[0], weights: Self.weights(.nan, 1), numExamples: 1, metrics: [:],
                now: .seconds(1))
        } throws: { ($0 as? UpdateRejection)?.reason == .nonFinite }
        #expect {
            try machine.fitResult(
                tasks[ids[1]]!.id, client: ids[1],
                weights: ModelWeights(["w": Tensor(shape: [1, 2], values: [1, 1])]), numExamples: 1, metrics: [:],
                now: .seconds(1))
        } throws: { ($0 as? UpdateRejection)?.reason == .wrongShape }
        _ = try machine.fitResult(
            tasks[ids[2]]!.id, client: ids[2], weights: Self.weights(7, 7), numExamples: 1, metrics: [:],
            now: .seconds(1))
        #expect(machine.phaseName == .training, "refused results leave their tasks open")
        #expect(try machine.checkTask(tasks[ids[0]]!.id, of: ids[0]).id == tasks[ids[0]]!.id)
        for second in 2...9 {
            _ = machine.touch(ids[0], now: .seconds(Double(second)));
            _ = machine.touch(ids[1], now: .seconds(Double(second)))
        }
        let actions = machine.tick(now: .seconds(10))
        #expect(Self.storedCandidate(in: actions)?["w"]?.floatValues == [7, 7], "only the valid update is averaged")
        _ = machine.candidateStored(
            round: 1, candidate: GlobalModel(version: 2, sha256: "x", weights: Self.weights(7, 7)), now: .seconds(10))
        let report = try #require(Self.report(in: machine.committed(round: 1, now: .seconds(10))))
        #expect(report.rejected == [.nonFinite: 1, .wrongShape: 1])
        #expect(report.fitDropouts == [.timeout: 2])
    }

    @Test func dropoutsByReasonAndQuorumFailureKeepsTheModel() throws {
        var (machine, ids, _) = Self.started()
        let tasks = Self.tasks(&machine, ids)
        _ = try machine.fitResult(
            tasks[ids[0]]!.id, client: ids[0], weights: Self.weights(1, 1), numExamples: 1, metrics: [:],
            now: .seconds(1))
        let left = machine.leave(ids[1], now: .seconds(1))
        #expect(left.contains { if case .clientDropped(ids[1], .fit, .disconnect) = $0 { true } else { false } })
        let failed = try machine.taskFailed(tasks[ids[2]]!.id, client: ids[2], now: .seconds(2))
        let report = try #require(Self.report(in: failed))
        #expect(
            report.outcome == .failed(RoundFailure(.quorumNotReached, "1 of 3 selected clients answered; 2 needed")))
        #expect(report.fitDropouts == [.disconnect: 1, .error: 1])
        #expect(machine.model == Self.base, "a failed round leaves the last good model in place")
        #expect(machine.phaseName == .selecting, "two clients left is fewer than min_available_clients (3)")
    }

    @Test func silentClientsTimeOutBeforeTheDeadline() throws {
        var (machine, ids, _) = Self.started()
        _ = Self.tasks(&machine, ids)
        let actions = machine.tick(now: .seconds(3.5))  // liveness timeout is 3 s; nobody heartbeated
        let dropped = actions.filter { if case .clientDropped(_, _, .timeout) = $0 { true } else { false } }
        #expect(dropped.count == 3)
        #expect(
            Self.report(in: actions)?.outcome
                == .failed(RoundFailure(.quorumNotReached, "0 of 3 selected clients answered; 2 needed")))
        #expect(machine.connectedClients.isEmpty)
    }

    @Test func goingSilentAndComingBackAreAnnouncedOnce() {
        var (machine, ids, _) = Self.started()
        _ = Self.tasks(&machine, ids)
        let silent = machine.tick(now: .seconds(3.5), parked: [ids[0]])
        let wentSilent = silent.compactMap { action -> ClientID? in
            if case .clientWentSilent(let client, let lastSeen) = action, lastSeen == .zero { client } else { nil }
        }
        #expect(Set(wentSilent) == [ids[1], ids[2]], "the parked client is alive; the others are named once")
        #expect(!machine.tick(now: .seconds(4)).contains { if case .clientWentSilent = $0 { true } else { false } })
        let back = machine.touch(ids[1], now: .seconds(9))
        #expect(back.contains { if case .clientReturned(ids[1], .zero) = $0 { true } else { false } })
        #expect(machine.touch(ids[1], now: .seconds(9.5)).isEmpty, "a connected client's request announces nothing")
        #expect(machine.clientContacts[ids[1]]?.connected == true)
        #expect(machine.clientContacts[ids[2]]?.connected == false)
    }

    @Test func parkedPollKeepsAClientConnected() {
        var (machine, ids, _) = Self.started()
        _ = Self.tasks(&machine, ids)
        _ = machine.tick(now: .seconds(5), parked: [ids[0]])
        #expect(machine.connectedClients == [ids[0]])
        _ = machine.tick(now: .seconds(200))
        #expect(machine.connectedClients.isEmpty, "once the poll returned, silence disconnects it too")
    }

    @Test func evaluationPhaseAggregatesWeightedReports() throws {
        let configuration = RoundConfiguration(
            selection: SelectionPolicy(fractionFit: 1, minFitClients: 2, minAvailableClients: 2, fractionEvaluate: 1),
            minFitResults: 2, fitTimeout: .seconds(10), evaluateTimeout: .seconds(5), livenessTimeout: .seconds(30))
        var machine = Machine(configuration: configuration, model: Self.base, seed: 3)
        let ids = [ClientID("a"), ClientID("b")]
        for id in ids { _ = machine.register(id, now: .zero) }
        var tasks = Self.tasks(&machine, ids)
        _ = try machine.fitResult(
            tasks[ids[0]]!.id, client: ids[0], weights: Self.weights(1, 1), numExamples: 1, metrics: ["loss": 1],
            now: .zero)
        _ = try machine.fitResult(
            tasks[ids[1]]!.id, client: ids[1], weights: Self.weights(3, 3), numExamples: 1, metrics: ["loss": 3],
            now: .zero)
        let evaluate = machine.candidateStored(
            round: 1, candidate: GlobalModel(version: 2, sha256: "c", weights: Self.weights(2, 2)), now: .zero)
        #expect(machine.phaseName == .evaluating)
        guard case .tasksAvailable(let chosen)? = evaluate.work().first else {
            Issue.record("no evaluate tasks: \(evaluate)")
            return
        }
        #expect(chosen == ids)
        tasks = Self.tasks(&machine, ids)
        #expect(tasks.values.allSatisfy { $0.kind == .evaluate && $0.modelVersion == 2 })
        _ = try machine.evaluationResult(
            tasks[ids[0]]!.id, client: ids[0],
            report: EvaluationReport(loss: 1, numExamples: 10, metrics: ["accuracy": 0.5]), now: .zero)
        #expect {
            try machine.evaluationResult(
                tasks[ids[1]]!.id, client: ids[1], report: EvaluationReport(loss: .nan, numExamples: 30), now: .zero)
        } throws: { ($0 as? UpdateRejection)?.reason == .nonFinite }
        #expect(machine.tick(now: .seconds(1)).isEmpty, "the refused report leaves its task open")
        // At the evaluation deadline the silent evaluator times out; the phase closes with the one valid report.
        let closing = machine.tick(now: .seconds(5))
        guard case .commit(1, 2, let summary?, let fitMetrics, 2, 2)? = closing.last else {
            Issue.record("expected a commit with an evaluation")
            return
        }
        #expect(summary == EvaluationSummary(loss: 1, metrics: ["accuracy": 0.5], numExamples: 10, clients: 1))
        #expect(fitMetrics == ["loss": 2])
    }

    @Test func maxRoundsFinishesTheFederation() throws {
        let configuration = RoundConfiguration(
            selection: SelectionPolicy(fractionFit: 1, minFitClients: 1, minAvailableClients: 1, fractionEvaluate: 0),
            minFitResults: 1, maxRounds: 1)
        var machine = Machine(configuration: configuration, model: Self.base, seed: 3)
        _ = machine.register(ClientID("a"), now: .zero)
        let taken = machine.takeTask(for: ClientID("a"), now: .zero)
        let task = try #require(taken)
        _ = try machine.fitResult(
            task.id, client: ClientID("a"), weights: Self.weights(1, 2), numExamples: 2, metrics: [:], now: .zero)
        _ = machine.candidateStored(
            round: 1, candidate: GlobalModel(version: 2, sha256: "c", weights: Self.weights(1, 2)), now: .zero)
        let actions = machine.committed(round: 1, now: .zero)
        #expect(actions.work().count == 1, "no second round starts")
        #expect(machine.phaseName == .finished)
    }
}

@Suite struct RegressionGuardAndRollbackTests {
    typealias Machine = RoundStateMachine<TestInstant>

    static let base = RoundStateMachineTests.base

    /// One client, evaluation on, guard tolerating a 0.05 accuracy drop from a best of 0.9.
    static func machine() -> Machine {
        let configuration = RoundConfiguration(
            selection: SelectionPolicy(fractionFit: 1, minFitClients: 1, minAvailableClients: 1, fractionEvaluate: 1),
            minFitResults: 1, regressionGuard: RegressionGuard(metric: "accuracy", maxRegression: 0.05))
        var machine = Machine(configuration: configuration, model: base, seed: 1, bestMetricValue: 0.9)
        _ = machine.register(ClientID("a"), now: .zero)
        return machine
    }

    /// Runs round fit → candidate → evaluation with `accuracy`; returns the actions after the evaluation.
    static func evaluateRound(_ machine: inout Machine, accuracy: Double, candidateVersion: Int) throws -> [RoundAction<
        TestInstant
    >] {
        let client = ClientID("a")
        let fitTask = machine.takeTask(for: client, now: .zero)
        let fit = try #require(fitTask)
        _ = try machine.fitResult(
            fit.id, client: client, weights: RoundStateMachineTests.weights(5, 5), numExamples: 1, metrics: [:],
            now: .zero)
        _ = machine.candidateStored(
            round: fit.round,
            candidate: GlobalModel(
                version: candidateVersion, sha256: "c", weights: RoundStateMachineTests.weights(5, 5)), now: .zero)
        let evaluateTask = machine.takeTask(for: client, now: .zero)
        let evaluate = try #require(evaluateTask)
        return try machine.evaluationResult(
            evaluate.id, client: client,
            report: EvaluationReport(loss: 1, numExamples: 10, metrics: ["accuracy": accuracy]), now: .zero)
    }

    @Test func aPoisonedRoundIsRejectedAndTheModelStays() throws {
        var machine = Self.machine()
        let actions = try Self.evaluateRound(&machine, accuracy: 0.8, candidateVersion: 2)
        guard case .reject(1, 2, _, _, _, 1, let reason)? = actions.work().first else {
            Issue.record("expected a rejection, got \(actions)")
            return
        }
        #expect(reason.contains("worse than the best 0.9"))
        let finished = machine.rejectionRecorded(round: 1, now: .zero)
        let report = try #require(RoundStateMachineTests.report(in: finished))
        #expect(report.outcome == .failed(RoundFailure(.rejectedByGuard, reason)))
        #expect(machine.model == Self.base)
        #expect(machine.bestMetricValue == 0.9)
    }

    @Test func aSmallDipWithinTheMarginCommitsAndAnImprovementRaisesTheBest() throws {
        var machine = Self.machine()
        let dip = try Self.evaluateRound(&machine, accuracy: 0.86, candidateVersion: 2)
        guard case .commit(1, 2, _, _, _, 1)? = dip.work().first else {
            Issue.record("a 0.04 dip should commit: \(dip)")
            return
        }
        _ = machine.committed(round: 1, now: .zero)
        #expect(machine.bestMetricValue == 0.9)
        _ = try Self.evaluateRound(&machine, accuracy: 0.95, candidateVersion: 3)
        _ = machine.committed(round: 2, now: .zero)
        #expect(machine.bestMetricValue == 0.95 && machine.model.version == 3)
    }

    @Test func replacingTheModelAbortsTheOpenRoundAndTheNextRoundStartsFromIt() throws {
        var machine = Self.machine()
        let fitTask = machine.takeTask(for: ClientID("a"), now: .zero)
        let fit = try #require(fitTask)
        let older = GlobalModel(version: 7, sha256: "old", weights: RoundStateMachineTests.weights(1, 2))
        let actions = machine.replaceModel(with: older, reason: "rolled back", now: .seconds(1))
        let report = try #require(RoundStateMachineTests.report(in: actions))
        #expect(report.outcome == .failed(RoundFailure(.aborted, "rolled back")))
        guard case .roundStarted(2, 7, _)? = actions.work().dropFirst().first else {
            Issue.record("the next round should train from version 7: \(actions)")
            return
        }
        #expect {
            try machine.fitResult(
                fit.id, client: ClientID("a"), weights: RoundStateMachineTests.weights(5, 5), numExamples: 1,
                metrics: [:], now: .seconds(2))
        } throws: { ($0 as? UpdateRejection)?.reason == .late }
    }

    @Test func restartContinuesNumberingAndCountsOnlyThisRunsRounds() throws {
        let configuration = RoundConfiguration(
            selection: SelectionPolicy(fractionFit: 1, minFitClients: 1, minAvailableClients: 1, fractionEvaluate: 0),
            minFitResults: 1, maxRounds: 1)
        var machine = Machine(configuration: configuration, model: Self.base, lastRound: 41, seed: 1)
        machine.restore(ClientID("old"), lastSeen: .zero)
        #expect(machine.connectedClients.isEmpty, "a restored client is disconnected until heard from")
        let actions = machine.touch(ClientID("old"), now: .zero)
        guard case .roundStarted(42, 1, [ClientID("old")])? = actions.work().first else {
            Issue.record("expected round 42 with the returning client: \(actions)")
            return
        }
    }
}
