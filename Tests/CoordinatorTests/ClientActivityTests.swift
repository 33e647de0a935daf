@testable import Coordinator
import FederationCore
import Foundation
import ModelManager
import RondoTestSupport
import Testing

/// `last_seen` is soft state: polls, heartbeats and results note the client in memory, and the driver writes
/// them in one transaction once a second (and on shutdown), so no request waits on a store write for it.
@Suite struct ClientActivityTests {
    static func lastSeen(_ store: CheckpointStore, _ id: String) async throws -> Double {
        try #require(try await store.clients(includeLeft: true).first { $0.clientID == id }).lastSeen
    }

    @Test func lastSeenIsWrittenByTheOnceASecondFlushNotByEachRequest() async throws {
        let clock = ManualClock()
        let configuration = RunningCoordinator.configuration(clients: 1, maxRounds: 1)
        try await RunningCoordinator.with(configuration: configuration, clock: clock) { coordinator in
            let store = coordinator.driver.store
            let client = try await coordinator.register("a")
            let registered = try await Self.lastSeen(store, client.id)
            let beat = try await coordinator.request(
                "POST", "/v1/clients/\(client.id)/heartbeat", token: client.token)
            #expect(beat.status < 300)
            let poll = try await coordinator.request(
                "GET", "/v1/clients/\(client.id)/tasks/next?wait_seconds=5", token: client.token)
            let task = try JSONDecoder().decode(WireProtocol.TaskMessage.self, from: Data(poll.body))
            let result = try await coordinator.request(
                "POST", "/v1/tasks/\(task.taskID)/result", token: client.token,
                contentType: WireProtocol.safetensorsMediaType,
                body: SafeTensorsFile(weights: RunningCoordinator.testModel, metadata: ["num_examples": "3"]).encoded())
            #expect(result.status == 202, "\(result.text)")
            // The manual clock has not moved, so no housekeeping ran: nothing was written since registration.
            #expect(try await Self.lastSeen(store, client.id) == registered)
            clock.advance(by: .seconds(1))
            await coordinator.driver.tick()
            #expect(try await Self.lastSeen(store, client.id) > registered, "flushed by the housekeeping")
        }
    }

    @Test func shutdownFlushesWhatTheLastSecondSaw() async throws {
        let clock = ManualClock()
        let coordinator = try await RunningCoordinator(
            configuration: RunningCoordinator.configuration(clients: 2), clock: clock)
        defer { try? FileManager.default.removeItem(atPath: coordinator.directory) }
        let client = try await coordinator.register("a")
        let registered = try await Self.lastSeen(coordinator.driver.store, client.id)
        _ = try await coordinator.request("POST", "/v1/clients/\(client.id)/heartbeat", token: client.token)
        await coordinator.stop()
        let reopened = try await CheckpointStore(configuration: .init(path: coordinator.directory + "/rondo.db"))
        #expect(try await Self.lastSeen(reopened, client.id) > registered)
    }
}
