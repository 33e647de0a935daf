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
///
/// Serialized: each test blocks one thread of the (two-thread, on CI) cooperative pool while it holds the store.
@Suite(.serialized) struct RollbackDuringCommitTests {
    /// Keeps the store's actor busy until `release()`, so every store write queues behind it: the test decides
    /// when writes go ahead, however slow the machine is.
    final class StoreHold: Sendable {
        final class Flags: Sendable {
            let holding = Atomic<Bool>(false)
            let released = Atomic<Bool>(false)
        }

        private let flags = Flags()
        private let task: Task<Void, any Error>

        init(_ store: CheckpointStore) async throws {
            let flags = flags
            task = Task {
                try await store.withConnection { _ in
                    flags.holding.store(true, ordering: .sequentiallyConsistent)
                    // Bounded, so a failing test cannot hang the suite.
                    for _ in 0..<30_000 where !flags.released.load(ordering: .sequentiallyConsistent) { usleep(1000) }
                }
            }
            while !flags.holding.load(ordering: .sequentiallyConsistent) { try await Task.sleep(for: .milliseconds(2)) }
        }

        func release() async throws {
            flags.released.store(true, ordering: .sequentiallyConsistent)
            try await task.value
        }
    }

    /// Polls `condition` (real time, at most 20 s); the test's own expectations say what it needed.
    static func waitUntil(_ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now.advanced(by: .seconds(20))
        while try await !condition(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
    }

    @Test func aRollbackDuringACommitWaitsForItThenRollsBack() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration()) { coordinator in
            let client = try await coordinator.register("site")
            let task = try await coordinator.nextTask(client)
            let store = coordinator.driver.store
            let hold = try await StoreHold(store)
            async let submitted = coordinator.request(
                "POST", "/v1/tasks/\(task.taskID)/result", token: client.token,
                contentType: WireProtocol.safetensorsMediaType,
                body: FitResult(weights: AdminAPITests.weights(1), numExamples: 3).file.encoded())
            try await Self.waitUntil { await coordinator.driver.machine.isPersisting }
            #expect(await coordinator.driver.machine.isPersisting, "the round is storing its outcome")
            async let rollback = coordinator.request(
                "POST", "/v1/checkpoints/1/rollback", token: RunningCoordinator.adminToken,
                contentType: "application/json", body: Array(#"{"reason":"during the commit"}"#.utf8))
            try await Self.waitUntil { await coordinator.driver.rollbackInProgress }
            #expect(await coordinator.driver.machine.isPersisting, "the rollback arrived during the store write")
            try await hold.release()

            let answer = try await rollback
            #expect(answer.status == 200, "\(answer.text)")
            let moved = try JSONDecoder().decode(RollbackAnswer.self, from: Data(answer.body))
            #expect(
                moved.fromVersion == 2 && moved.toVersion == 1 && !moved.forced,
                "the commit finished first, then the rollback")
            #expect(try await submitted.status == 202)
            let status = try await coordinator.status()
            #expect(status.modelVersion == 1 && status.committedRounds == 1)
            #expect(try await store.refVersion(.current) == 1, "the store and the round engine agree")
            #expect(try await coordinator.driver.history.round(1)?.status == .committed)
        }
    }

    @Test func aBurstOfRollbacksIsBoundedAndEveryAdmittedOneIsCarriedOut() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration(clients: 2)) { coordinator in
            let store = coordinator.driver.store
            // The first rollback cannot finish before the test has seen the lane fill up.
            let hold = try await StoreHold(store)
            async let statuses = withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<(RoundDriver.maxQueuedRollbacks + 3) {
                    group.addTask {
                        try await coordinator.request(
                            "POST", "/v1/checkpoints/1/rollback", token: RunningCoordinator.adminToken,
                            contentType: "application/json", body: Array(#"{"reason":"burst"}"#.utf8)
                        ).status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            let refusals = #"rondo_limit_refusals_total{limit="queued_rollbacks"}"#
            try await Self.waitUntil {
                let queued = await coordinator.driver.rollbackQueue.count
                let refused = try await coordinator.metricValue(refusals)
                return queued == RoundDriver.maxQueuedRollbacks && refused == 2
            }
            try await hold.release()
            let counts = Dictionary(try await statuses.map { ($0, 1) }, uniquingKeysWith: +)
            #expect(
                counts == [200: RoundDriver.maxQueuedRollbacks + 1, 429: 2], "one running, the queue full: \(counts)")
            #expect(try await coordinator.metricValue(refusals) == 2)
            #expect(try await store.refVersion(.current) == 1)
        }
    }
}
