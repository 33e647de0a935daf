import FederationCore
import Testing

/// The machine announces what the server's telemetry needs as actions, in the order things happen, so the
/// server never reads side channels off the machine after an event.
@Suite struct RoundAnnouncementTests {
    typealias Machine = RoundStateMachine<TestInstant>
    typealias Action = RoundAction<TestInstant>

    static func phaseChanges(_ actions: [Action]) -> [String] {
        actions.compactMap {
            guard case .phaseChanged(let from, let to, let round) = $0 else { return nil }
            return "\(from.rawValue)→\(to.rawValue)@\(round.map(String.init) ?? "-")"
        }
    }

    @Test func everyPhaseOfARoundIsAnnouncedOnceWhereItBegins() throws {
        let configuration = RoundConfiguration(
            selection: SelectionPolicy(fractionFit: 1, minFitClients: 2, minAvailableClients: 2, fractionEvaluate: 1),
            minFitResults: 2, fitTimeout: .seconds(10), evaluateTimeout: .seconds(5), livenessTimeout: .seconds(30))
        var machine = Machine(configuration: configuration, model: RoundStateMachineTests.base, seed: 3)
        let ids = [ClientID("a"), ClientID("b")]
        var log: [Action] = []
        for id in ids { log += machine.register(id, now: .zero) }
        var tasks = RoundStateMachineTests.tasks(&machine, ids)
        log += try machine.fitResult(
            tasks[ids[0]]!.id, client: ids[0], weights: RoundStateMachineTests.weights(3, 4), numExamples: 1,
            metrics: [:], now: .zero)
        let closing = try machine.fitResult(
            tasks[ids[1]]!.id, client: ids[1], weights: RoundStateMachineTests.weights(0, 0), numExamples: 1,
            metrics: [:], now: .zero)
        // Aggregating lasts only until the candidate is stored: announced before the store request.
        guard case .phaseChanged(.training, .aggregating, 1)? = closing.dropFirst().first else {
            Issue.record("aggregating is announced before storeCandidate: \(closing)")
            return
        }
        log += closing
        log += machine.candidateStored(
            round: 1, candidate: GlobalModel(version: 2, sha256: "c", weights: RoundStateMachineTests.weights(1, 2)),
            now: .zero)
        tasks = RoundStateMachineTests.tasks(&machine, ids)
        for id in ids {
            log += try machine.evaluationResult(
                tasks[id]!.id, client: id, report: EvaluationReport(loss: 1, numExamples: 1), now: .zero)
        }
        log += machine.committed(round: 1, now: .seconds(1))
        #expect(
            Self.phaseChanges(log) == [
                "selecting→training@1", "training→aggregating@1", "aggregating→evaluating@1",
                "evaluating→committing@1", "committing→selecting@-", "selecting→training@2",
            ])
        let accepted = log.compactMap { action -> String? in
            guard case .resultAccepted(_, let client, let kind, let norm) = action else { return nil }
            return "\(client.rawValue) \(kind.rawValue) \(norm.map { String($0) } ?? "nil")"
        }
        // The fit updates' norms are |(3,4) − (0,0)| = 5 and 0; evaluations carry none.
        #expect(accepted == ["a fit 5.0", "b fit 0.0", "a evaluate nil", "b evaluate nil"])
    }

    @Test func aRefusedResultIsNotAnnouncedAsAccepted() throws {
        var (machine, ids, _) = RoundStateMachineTests.started()
        let tasks = RoundStateMachineTests.tasks(&machine, ids)
        #expect(throws: UpdateRejection.self) {
            try machine.fitResult(
                tasks[ids[0]]!.id, client: ids[0], weights: RoundStateMachineTests.weights(.nan, 1), numExamples: 1,
                metrics: [:], now: .zero)
        }
        let accepted = try machine.fitResult(
            tasks[ids[0]]!.id, client: ids[0], weights: RoundStateMachineTests.weights(1, 1), numExamples: 1,
            metrics: [:], now: .zero)
        let announced = accepted.filter { if case .resultAccepted = $0 { true } else { false } }
        #expect(announced.count == 1, "only the valid result of the task is announced: \(accepted)")
        #expect(accepted.work().isEmpty, "one of three answered: the round stays in training")
    }

    @Test func finishingTheLastRoundAnnouncesFinished() throws {
        var configuration = RoundStateMachineTests.started(clients: 2).0.configuration
        configuration.maxRounds = 1
        configuration.selection.minAvailableClients = 1
        configuration.selection.minFitClients = 1
        configuration.minFitResults = 1
        var machine = Machine(configuration: configuration, model: RoundStateMachineTests.base, seed: 1)
        var log = machine.register(ClientID("a"), now: .zero)
        let taken = machine.takeTask(for: ClientID("a"), now: .zero)
        let task = try #require(taken)
        log += try machine.fitResult(
            task.id, client: ClientID("a"), weights: RoundStateMachineTests.weights(1, 1), numExamples: 1,
            metrics: [:], now: .zero)
        log += machine.candidateStored(
            round: 1, candidate: GlobalModel(version: 2, sha256: "c", weights: RoundStateMachineTests.weights(1, 1)),
            now: .zero)
        log += machine.committed(round: 1, now: .zero)
        #expect(Self.phaseChanges(log).suffix(2) == ["committing→selecting@-", "selecting→finished@-"])
    }
}
