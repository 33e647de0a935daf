import Coordinator
import FederationClient
import FederationCore
import Foundation
import RondoTestSupport
import Synchronization
import Testing

/// A trainer that takes `seconds` per fit (cancellable): a straggler.
struct SlowTrainer: Trainer {
    var seconds: Int
    let inner = IncrementingTrainer()

    func fit(model: ModelWeights, task: TaskContext) async throws -> FitResult {
        try await Task.sleep(for: .seconds(seconds))
        return try await inner.fit(model: model, task: task)
    }

    func evaluate(model: ModelWeights, task: TaskContext) async throws -> EvaluationReport {
        try await inner.evaluate(model: model, task: task)
    }
}

/// The Swift SDK against a coordinator that steers its pace: it waits out the `Retry-After` of an idle poll and
/// of a 429, and goal-count rounds close without their stragglers.
@Suite struct PaceSteeringClientTests {
    /// One client that never gets a task (the round needs two), polling every 0.1 s; `pollRate` 0.25/s with one
    /// client spreads its polls over 0...4 s (the cap is the 5 s heartbeat interval).
    static func idlePolls(pollRate: Double?, for duration: Duration) async throws -> (polls: Double, spread: Double) {
        var configuration = RunningCoordinator.configuration(clients: 2)
        configuration.rounds.livenessTimeout = .seconds(10)
        configuration.heartbeatInterval = .seconds(5)
        configuration.pollRate = pollRate
        return try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let client = FederatedClient(
                configuration: .init(coordinatorURL: coordinator.url, name: "idle"), trainer: IncrementingTrainer(),
                longPoll: .milliseconds(100), logger: FederatedClientTests.logger)
            let participation = Task { try? await client.participate() }
            try await Task.sleep(for: duration)
            participation.cancel()
            let route = #"route="/v1/clients/{id}/tasks/next",status="204""#
            let polls = try await coordinator.metricValue(#"rondo_http_requests_total{method="GET","# + route + "}")
            let idle = try await coordinator.metricValue("rondo_selection_idle_polls_total")
            // Every 204 is an idle poll; the poll parked when the client was cancelled may count without its 204.
            #expect(idle.map { $0 >= polls ?? 0 && $0 <= (polls ?? 0) + 1 } == true, "\(String(describing: idle))")
            let spread = try await coordinator.metricValue("rondo_selection_retry_after_spread_seconds") ?? -1
            return (polls ?? 0, spread)
        }
    }

    @Test func theClientWaitsOutEachIdlePollsRetryAfter() async throws {
        let steered = try await Self.idlePolls(pollRate: 0.25, for: .seconds(6))
        let unsteered = try await Self.idlePolls(pollRate: nil, for: .seconds(6))
        // Hints average 2 s: a handful of polls in 6 s. Without hints the client polls every ~0.1 s.
        #expect(steered.polls >= 1 && steered.polls <= 15, "steered: \(steered)")
        #expect(steered.spread == 4, "one client at 0.25 polls/s: hints spread over 4 s: \(steered)")
        #expect(unsteered.polls >= 20, "unsteered (up to 60 possible): \(unsteered)")
        #expect(unsteered.spread == 0)
    }

    @Test func aThrottledPollCarriesItsRetryAfterToTheSDK() async throws {
        var configuration = RunningCoordinator.configuration(clients: 3)
        configuration.limits.maxParkedPolls = 1
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let first = CoordinatorConnection(configuration: .init(coordinatorURL: coordinator.url, name: "first"))
            let second = CoordinatorConnection(configuration: .init(coordinatorURL: coordinator.url, name: "second"))
            _ = try await first.register()
            _ = try await second.register()
            let parked = Task { try await first.nextTask(wait: .seconds(5)) }
            defer { parked.cancel() }
            while await coordinator.driver.parkedPollCount < 1 { try await Task.sleep(for: .milliseconds(10)) }
            let error = await #expect(throws: FederationClientError.self) {
                try await second.nextTask(wait: .seconds(5))
            }
            #expect(error?.status == 429 && error?.retryAfter == .seconds(1), "\(String(describing: error))")
            #expect(error?.isRetryable == true)
        }
    }

    @Test func aGoalCountRoundClosesWithoutItsStraggler() async throws {
        var configuration = RunningCoordinator.configuration(clients: 3, maxRounds: 2)
        configuration.rounds = RoundConfiguration(
            selection: SelectionPolicy(
                fractionEvaluate: 0, goal: SelectionGoal(count: 2, overSelection: 1.5, timeout: .seconds(2))),
            minFitResults: 2, fitTimeout: .seconds(60), livenessTimeout: .seconds(10), maxRounds: 2)
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let straggler = FederatedClient(
                configuration: .init(coordinatorURL: coordinator.url, name: "straggler"),
                trainer: SlowTrainer(seconds: 120), longPoll: .seconds(1), logger: FederatedClientTests.logger)
            let fast = (0..<2).map { index in
                FederatedClient(
                    configuration: .init(coordinatorURL: coordinator.url, name: "fast-\(index)"),
                    trainer: IncrementingTrainer(), longPoll: .seconds(1), logger: FederatedClientTests.logger)
            }
            // Paused until all three are connected, so the first round (goal 2, target 3) selects all three
            // however slowly they register (a 2 s window could otherwise open it with the straggler and one other).
            let pause = try await coordinator.request(
                "POST", "/v1/federation/pause", token: RunningCoordinator.adminToken)
            #expect(pause.status == 200)
            let runs =
                [Task { try? await straggler.participate() }]
                + fast.map { client in
                    Task { try? await client.participate() }
                }
            defer { runs.forEach { $0.cancel() } }
            _ = try await coordinator.waitForStatus { $0.clientsConnected == 3 }
            let resume = try await coordinator.request(
                "POST", "/v1/federation/resume", token: RunningCoordinator.adminToken)
            #expect(resume.status == 200)
            var status = try await coordinator.status()
            let deadline = ContinuousClock.now.advanced(by: .seconds(50))
            while status.phase != .finished, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
                status = try await coordinator.status()
            }
            #expect(status.committedRounds == 2, "two rounds closed at their goal of two, not at the 60 s deadline")
            let released = try await coordinator.metricValue(#"rondo_dropouts_total{kind="fit",reason="released"}"#)
            #expect((released ?? 0) >= 1, "the straggler was released at the goal")
            // Round 1 opened with all three; round 2 could not count the straggler (still busy with its released
            // task, not polling), so its window opened at the timeout with the two free clients.
            let goalReached = try await coordinator.metricValue(
                #"rondo_selection_windows_total{outcome="goal_reached"}"#)
            let timedOut = try await coordinator.metricValue(
                #"rondo_selection_windows_total{outcome="timed_out_with_minimum"}"#)
            #expect(
                goalReached == 1 && timedOut == 1, "\(String(describing: goalReached)), \(String(describing: timedOut))"
            )
        }
    }
}
