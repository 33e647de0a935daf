import FederationCore
import Testing

/// Google's goal-count selection with injected time: a window opens when the machine is ready for a round and
/// closes at the goal count, or at the timeout with the minimum, or is abandoned below it; an over-selected
/// round closes training at the goal.
@Suite struct SelectionGoalTests {
    typealias Machine = RoundStateMachine<TestInstant>
    typealias Action = RoundAction<TestInstant>

    /// Goal 4, 1.5× over-selection (target 6), a 10 s window, minimum half the goal (2); quorum 2.
    static let goal = SelectionGoal(count: 4, overSelection: 1.5, timeout: .seconds(10), minimumShare: 0.5)

    static func machine(goal: SelectionGoal = goal) -> Machine {
        let configuration = RoundConfiguration(
            selection: SelectionPolicy(fractionEvaluate: 0, goal: goal), minFitResults: 2, fitTimeout: .seconds(60),
            livenessTimeout: .seconds(600))
        return Machine(configuration: configuration, model: RoundStateMachineTests.base, seed: 3)
    }

    static func register(_ count: Int, from first: Int = 0, into machine: inout Machine, at now: TestInstant)
        -> [Action]
    {
        (first..<first + count).flatMap { machine.register(ClientID("c\($0)"), now: now) }
    }

    static func selectionEnds(in actions: [Action]) -> [(SelectionOutcome, Int, Int, Duration)] {
        actions.compactMap {
            guard case .selectionEnded(let outcome, let checkedIn, let selected, let waited) = $0 else { return nil }
            return (outcome, checkedIn, selected, waited)
        }
    }

    static func selected(in actions: [Action]) -> [ClientID]? {
        for case .roundStarted(_, _, let selected) in actions { return selected }
        return nil
    }

    @Test func theDecisionFollowsCountTimeoutAndMinimum() {
        let goal = Self.goal
        #expect(goal.selectionTarget == 6 && goal.minimum == 2)
        #expect(goal.decide(checkedIn: 5, waited: .seconds(9)) == .wait, "the goal with its over-selection is 6")
        #expect(goal.decide(checkedIn: 6, waited: .zero) == .open(selecting: 6, outcome: .goalReached))
        #expect(goal.decide(checkedIn: 50, waited: .zero) == .open(selecting: 6, outcome: .goalReached))
        #expect(goal.decide(checkedIn: 5, waited: .seconds(10)) == .open(selecting: 5, outcome: .timedOutWithMinimum))
        #expect(goal.decide(checkedIn: 2, waited: .seconds(10)) == .open(selecting: 2, outcome: .timedOutWithMinimum))
        #expect(goal.decide(checkedIn: 1, waited: .seconds(10)) == .abandon)
        #expect(SelectionGoal(count: 10, minimumShare: 0.01).minimum == 1)
        #expect(SelectionGoal(count: 3, overSelection: 1).selectionTarget == 3)
    }

    @Test func theGoalCountOpensTheRoundAtOnce() {
        var machine = Self.machine()
        var actions = Self.register(5, into: &machine, at: .zero)
        #expect(Self.selected(in: actions) == nil, "five of a goal of six (4 × 1.5): the window waits")
        #expect(machine.selectionWindowOpenedAt == .zero)
        // The sixth checks in two seconds later: the goal is reached and the round opens with the six.
        actions = Self.register(1, from: 5, into: &machine, at: .seconds(2))
        let ends = Self.selectionEnds(in: actions)
        #expect(ends.count == 1)
        #expect(ends.first?.0 == .goalReached && ends.first?.1 == 6 && ends.first?.2 == 6)
        #expect(ends.first?.3 == .seconds(2), "the window waited from the first check-in")
        #expect(Self.selected(in: actions)?.count == 6)
        #expect(machine.selectionWindowOpenedAt == nil, "no window while a round is open")
    }

    @Test func everyConnectedClientIsACandidate() {
        // Over many seeds a goal-reached window samples every connected client, not the first to check in.
        var chosen: [ClientID: Int] = [:]
        for seed in 0..<200 as Range<UInt64> {
            let configuration = RoundConfiguration(
                selection: SelectionPolicy(fractionEvaluate: 0, goal: SelectionGoal(count: 2, overSelection: 1)),
                minFitResults: 1, livenessTimeout: .seconds(600))
            var machine = Machine(configuration: configuration, model: RoundStateMachineTests.base, seed: seed)
            _ = machine.setPaused(true, now: .zero)
            _ = Self.register(10, into: &machine, at: .zero)
            let opened = machine.setPaused(false, now: .seconds(1))
            for client in Self.selected(in: opened) ?? [] { chosen[client, default: 0] += 1 }
        }
        #expect(chosen.count == 10, "every one of the ten was selected at least once: \(chosen)")
        #expect(chosen.values.allSatisfy { $0 >= 15 }, "about 40 each of 400 picks: \(chosen)")
    }

    @Test func theTimeoutOpensTheRoundWithTheMinimum() {
        var machine = Self.machine()
        _ = Self.register(3, into: &machine, at: .zero)
        #expect(Self.selectionEnds(in: machine.tick(now: .seconds(9.9))).isEmpty, "before the timeout it waits")
        let actions = machine.tick(now: .seconds(10))
        let ends = Self.selectionEnds(in: actions)
        #expect(ends.first?.0 == .timedOutWithMinimum && ends.first?.1 == 3 && ends.first?.2 == 3)
        #expect(Self.selected(in: actions)?.count == 3, "all three checked-in clients train")
        #expect(machine.phaseName == .training)
    }

    @Test func theTimeoutBelowTheMinimumOpensNoRoundAndANewWindow() {
        var machine = Self.machine()
        _ = Self.register(1, into: &machine, at: .zero)
        var actions = machine.tick(now: .seconds(10))
        let ends = Self.selectionEnds(in: actions)
        #expect(ends.count == 1 && ends.first?.0 == .timedOutBelowMinimum && ends.first?.2 == 0)
        #expect(Self.selected(in: actions) == nil && machine.phaseName == .selecting && machine.currentRound == 0)
        #expect(machine.selectionWindowOpenedAt == .seconds(10), "the next window opened when this one ended")
        #expect(machine.failedRounds == 0, "no round was opened, so none failed")
        // A second client checks in during the new window; at its timeout the minimum is there.
        _ = machine.register(ClientID("late"), now: .seconds(15))
        #expect(Self.selectionEnds(in: machine.tick(now: .seconds(19.9))).isEmpty)
        actions = machine.tick(now: .seconds(20))
        #expect(Self.selectionEnds(in: actions).first?.0 == .timedOutWithMinimum)
        #expect(Self.selected(in: actions)?.count == 2)
    }

    @Test func overSelectionClosesTrainingAtTheGoal() throws {
        // Nine check in while paused: the window opening at the resume samples six of them.
        var fresh = Self.machine()
        _ = fresh.setPaused(true, now: .zero)
        _ = Self.register(9, into: &fresh, at: .zero)
        let opened = fresh.setPaused(false, now: .seconds(1))
        let selected = try #require(Self.selected(in: opened))
        #expect(selected.count == 6)
        let tasks = RoundStateMachineTests.tasks(&fresh, selected, at: .seconds(1))
        var last: [Action] = []
        for (index, client) in selected.prefix(4).enumerated() {
            last = try fresh.fitResult(
                tasks[client]!.id, client: client, weights: RoundStateMachineTests.weights(Float(index), 1),
                numExamples: 1, metrics: [:], now: .seconds(2))
        }
        let released = last.compactMap { action -> ClientID? in
            guard case .clientDropped(let client, .fit, .released) = action else { return nil }
            return client
        }
        #expect(Set(released) == Set(selected.suffix(2)), "the two stragglers were released")
        let aggregate = try #require(RoundStateMachineTests.storedCandidate(in: last), "training closed at the goal")
        #expect(aggregate["w"]?.floatValues == [1.5, 1])  // (0 + 1 + 2 + 3) / 4
        #expect(fresh.phaseName == .aggregating)
        // A straggler's result after the goal is late.
        #expect(throws: UpdateRejection.self) {
            try fresh.fitResult(
                tasks[selected[5]]!.id, client: selected[5], weights: RoundStateMachineTests.weights(9, 9),
                numExamples: 1, metrics: [:], now: .seconds(3))
        }
    }

    @Test func aReleasedClientIsNeitherCheckedInNorSampledUntilItPollsAgain() throws {
        // Goal 2 × 1.5 = 3 of 3: the straggler is released at the goal and keeps training.
        let goal = SelectionGoal(count: 2, overSelection: 1.5, timeout: .seconds(10), minimumShare: 0.5)
        let configuration = RoundConfiguration(
            selection: SelectionPolicy(fractionEvaluate: 1, goal: goal), minFitResults: 1, fitTimeout: .seconds(60),
            livenessTimeout: .seconds(600))
        var machine = Machine(configuration: configuration, model: RoundStateMachineTests.base, seed: 5)
        _ = machine.setPaused(true, now: .zero)
        _ = Self.register(3, into: &machine, at: .zero)
        let selected = try #require(Self.selected(in: machine.setPaused(false, now: .zero)))
        let tasks = RoundStateMachineTests.tasks(&machine, selected)
        for client in selected.prefix(2) {
            _ = try machine.fitResult(
                tasks[client]!.id, client: client, weights: RoundStateMachineTests.weights(1, 1), numExamples: 1,
                metrics: [:], now: .seconds(1))
        }
        let straggler = selected[2]
        #expect(machine.releasedStillWorking == [straggler])
        #expect(machine.availableClientCount == 2 && machine.connectedClientCount == 3)
        // Evaluation asks only the two free clients, so it does not wait for the busy one.
        let candidate = GlobalModel(version: 2, sha256: "two", weights: RoundStateMachineTests.weights(1, 1))
        let evaluating = machine.candidateStored(round: 1, candidate: candidate, now: .seconds(1))
        var asked: [ClientID] = []
        for case .tasksAvailable(let clients) in evaluating { asked = clients }
        #expect(Set(asked) == Set(selected.prefix(2)))
        // A heartbeat is not asking for work; a poll is.
        _ = machine.touch(straggler, now: .seconds(2))
        #expect(machine.releasedStillWorking == [straggler])
        _ = machine.polled(straggler, now: .seconds(3))
        #expect(machine.releasedStillWorking.isEmpty && machine.availableClientCount == 3)
    }

    @Test func aBackedOffFederationOpensNoWindowUntilTheBackoffEnds() {
        // Goal 4 × 1.5: six open a round, which fails at its 60 s deadline (no results), so the next waits 1 s.
        var machine = Self.machine()
        _ = Self.register(6, into: &machine, at: .zero)
        #expect(machine.phaseName == .training)
        _ = machine.tick(now: .seconds(60))
        #expect(machine.failedRounds == 1 && machine.nextRoundNotBefore == .seconds(61))
        _ = Self.register(1, from: 6, into: &machine, at: .seconds(60.5))
        #expect(machine.selectionWindowOpenedAt == nil, "no window while rounds are held back")
        let actions = machine.tick(now: .seconds(61))
        #expect(Self.selectionEnds(in: actions).first?.0 == .goalReached, "the window opened at 61 s, full at once")
    }

    @Test func aPausedFederationHasNoOpenWindow() {
        var machine = Self.machine()
        _ = Self.register(1, into: &machine, at: .zero)
        #expect(machine.selectionWindowOpenedAt == .zero)
        _ = machine.setPaused(true, now: .seconds(1))
        _ = machine.tick(now: .seconds(30))
        #expect(machine.selectionWindowOpenedAt == nil, "a pause closes the window: its time does not count")
        let actions = machine.setPaused(false, now: .seconds(31))
        #expect(Self.selectionEnds(in: actions).isEmpty, "the window reopened at 31 s, not timed out")
        #expect(machine.selectionWindowOpenedAt == .seconds(31))
    }
}
