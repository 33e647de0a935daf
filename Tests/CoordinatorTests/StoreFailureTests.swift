@testable import Coordinator
import CurlHTTP
import FederationCore
import Foundation
import RondoTestSupport
import Testing

@testable import ModelManager

/// A full disk: the store refuses every write. Rounds must fail with their real outcome,
/// back off instead of spinning, and show the condition on `/readyz`; once the disk has room again the next
/// round commits and the history holds every round's real outcome.
@Suite struct StoreFailureTests {
    /// Answers every task at once, as the clients in the outside report did, for `duration` (or until the
    /// status satisfies `until`).
    static func answerEverything(
        _ coordinator: RunningCoordinator, _ client: (id: String, token: String), for duration: Duration,
        until done: ((WireProtocol.StatusMessage) -> Bool)? = nil
    ) async throws {
        let deadline = ContinuousClock.now.advanced(by: duration)
        while ContinuousClock.now < deadline {
            if let done, done(try await coordinator.status()) { return }
            let response = try await coordinator.request(
                "GET", "/v1/clients/\(client.id)/tasks/next?wait_seconds=0.5", token: client.token)
            guard response.status == 200 else { continue }
            let task = try JSONDecoder().decode(WireProtocol.TaskMessage.self, from: Data(response.body))
            _ = try await coordinator.request(
                "POST", "/v1/tasks/\(task.taskID)/result", token: client.token,
                contentType: WireProtocol.safetensorsMediaType, body: ClientAPITests.fit(ClientAPITests.trained))
        }
    }

    @Test func aFullStoreBacksOffShowsOnReadyzAndRecoversWithHonestHistory() async throws {
        var configuration = RunningCoordinator.configuration()
        configuration.rounds.failureBackoff = .milliseconds(250)
        configuration.rounds.maxFailureBackoff = .seconds(2)
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let store = await coordinator.driver.store
            let client = try await coordinator.register("eager")
            // Every write now fails, as on a full or read-only disk (the test model is too small for a page cap).
            _ = try await store.withConnection { try $0.query("PRAGMA query_only = ON") }
            // A registration that cannot be stored is not acknowledged: 503 with Retry-After, and no token.
            let refused = try await coordinator.request(
                "POST", "/v1/clients", contentType: "application/json", body: Array(#"{"name":"late"}"#.utf8))
            #expect(refused.status == 503 && refused.errorCode == "store_failing", "\(refused.text)")
            #expect(refused.header("Retry-After") == "1")
            #expect(try await coordinator.status().clientsRegistered == 1, "the refused client was not enrolled")

            // Rounds fail with the store; how fast depends on the machine's load, so wait for three of them.
            try await Self.answerEverything(coordinator, client, for: .seconds(60)) { $0.failedRounds >= 3 }
            let afterThree = try await coordinator.status().failedRounds
            #expect(afterThree >= 3, "\(afterThree) failed rounds")
            // Then the backoff holds them: the waits are 1 s and 2 s now, so 2.5 s more fit at most two rounds,
            // where a spinning loop would run hundreds.
            try await Self.answerEverything(coordinator, client, for: .milliseconds(2500))
            let failing = try await coordinator.status()
            #expect(failing.failedRounds - afterThree <= 2, "\(failing.failedRounds - afterThree) more failed rounds")
            #expect(failing.committedRounds == 0)
            let readiness = try await coordinator.request("GET", "/readyz")
            #expect(readiness.status == 503 && readiness.errorCode == "store_failing", "\(readiness.text)")
            #expect(try await coordinator.metricValue("rondo_round_backoffs_total") ?? 0 >= 2)
            #expect(try await coordinator.metricValue("rondo_round_backoff_seconds") ?? 0 >= 0.5)
            #expect(
                try await coordinator.metricValue(#"rondo_checkpoint_writes_total{outcome="failure"}"#) ?? 0 >= 2)

            _ = try await store.withConnection { try $0.query("PRAGMA query_only = OFF") }
            // Readiness comes back by itself (a not-ready coordinator gets no traffic to prove the store works).
            var ready = false
            for _ in 0..<100 where !ready {
                ready = try await coordinator.request("GET", "/readyz").status == 200
                if !ready { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(ready, "/readyz recovers without a round having to commit first")
            try await Self.answerEverything(coordinator, client, for: .seconds(30)) { $0.committedRounds >= 1 }
            #expect(try await coordinator.status().committedRounds >= 1)
            #expect(try await coordinator.request("GET", "/readyz").status == 200)
            #expect(try await coordinator.metricValue("rondo_round_backoff_seconds") == 0)
            // The failed rounds' history rows were written once the store worked again: none is left "running".
            var rounds: [RoundRecord] = []
            for _ in 0..<100 {
                rounds = try await store.rounds()
                if rounds.allSatisfy({ $0.status != .running || $0.round == rounds.map(\.round).max() }) { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            let failed = rounds.filter { $0.status == .failed }
            #expect(failed.count >= failing.failedRounds, "\(rounds.map { "\($0.round) \($0.status)" })")
            #expect(failed.allSatisfy { $0.reason == "store_failed" })
            #expect(rounds.filter { $0.status == .running }.count <= 1, "only the round in progress may be running")
        }
    }
}
