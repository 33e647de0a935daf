import CurlHTTP
import FederationCore
import Foundation
import RondoTestSupport
import Synchronization
import Testing

@testable import Coordinator
@testable import ModelManager

/// An operator's rollback that arrives while a round's outcome is being stored waits for the store write and
/// then goes ahead (it used to answer 409 `busy`).
@Suite struct RollbackDuringCommitTests {
    @Test func aRollbackDuringACommitWaitsForItThenRollsBack() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration()) { coordinator in
            let client = try await coordinator.register("site")
            let task = try await coordinator.nextTask(client)
            // Hold the store busy, so the round's candidate write queues behind it and the round stays in the
            // store-writing phase for a while.
            let store = coordinator.driver.store
            let holding = Atomic<Bool>(false)
            let blocker = Task {
                try await store.withConnection { _ in
                    holding.store(true, ordering: .sequentiallyConsistent)
                    usleep(1_500_000)
                }
            }
            while !holding.load(ordering: .sequentiallyConsistent) { try await Task.sleep(for: .milliseconds(2)) }
            async let submitted = coordinator.request(
                "POST", "/v1/tasks/\(task.taskID)/result", token: client.token,
                contentType: WireProtocol.safetensorsMediaType,
                body: FitResult(weights: AdminAPITests.weights(1), numExamples: 3).file.encoded())
            let deadline = ContinuousClock.now.advanced(by: .seconds(10))
            while await !coordinator.driver.machine.isPersisting, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(2))
            }
            #expect(await coordinator.driver.machine.isPersisting, "the round is storing its outcome")

            let rollback = try await coordinator.request(
                "POST", "/v1/checkpoints/1/rollback", token: RunningCoordinator.adminToken,
                contentType: "application/json", body: Array(#"{"reason":"during the commit"}"#.utf8))
            #expect(rollback.status == 200, "\(rollback.text)")
            let answer = try JSONDecoder().decode([String: Int].self, from: Data(rollback.body))
            #expect(answer == ["from_version": 2, "to_version": 1], "the commit finished first, then the rollback")
            #expect(try await submitted.status == 202)
            _ = try await blocker.value

            let status = try await coordinator.status()
            #expect(status.modelVersion == 1 && status.committedRounds == 1)
            #expect(try await store.refVersion(.current) == 1, "the store and the round engine agree")
            #expect(try await coordinator.driver.history.round(1)?.status == .committed)
        }
    }
}
