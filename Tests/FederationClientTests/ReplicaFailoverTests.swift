import Coordinator
import CurlHTTP
import FederationClient
import Foundation
import Logging
import RondoTestSupport
import ServiceLifecycle
import Synchronization
import Testing

/// The Swift SDK given several coordinator replicas: it finds the leader past dead and standby replicas, and
/// never follows a standby to a URL it was not given.
@Suite struct ReplicaFailoverTests {
    final class Hits: Sendable {
        let count = Mutex(0)
    }

    /// A standby listener (the coordinator's own `StandbyServer`) naming `leader`, run until `body` returns;
    /// `asked` runs for every request it refuses.
    static func withStandby<R>(
        naming leader: String?, asked: @escaping @Sendable () -> Void = {}, _ body: (String) async throws -> R
    ) async throws -> R {
        let port = Mutex<Int?>(nil)
        let standby = try StandbyServer(
            configuration: RunningCoordinator.configuration(),
            leader: {
                asked()
                return LeaderInfo(address: leader, secondsSinceRenewal: 0.1)
            },
            renderMetrics: { [] }, logger: Logger(label: "standby"),
            onListening: { bound in port.withLock { $0 = bound } })
        let group = ServiceGroup(services: [standby.application], logger: Logger(label: "standby"))
        let runner = Task { try await group.run() }
        defer { runner.cancel() }
        while port.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(10)) }
        let result = try await body("http://127.0.0.1:\(port.withLock { $0 } ?? 0)")
        await group.triggerGracefulShutdown()
        return result
    }

    /// Registers through `connection`, retrying retryable failures the way `FederatedClient` does (short).
    static func register(_ connection: CoordinatorConnection) async throws {
        for _ in 0..<10 {
            do {
                try await connection.register()
                return
            } catch let error as FederationClientError where error.isRetryable {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        try await connection.register()
    }

    @Test func aClientFindsTheLeaderPastADeadReplicaAndAStandby() async throws {
        let dead = "http://127.0.0.1:\(try ChildProcess.freePort())"
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration()) { coordinator in
            try await Self.withStandby(naming: coordinator.url) { standby in
                let connection = CoordinatorConnection(
                    configuration: .init(coordinatorURL: "\(dead), \(standby)/,\(coordinator.url)", name: "site"))
                #expect(await connection.configuration.coordinatorURLs == [dead, standby, coordinator.url])
                try await Self.register(connection)
                #expect(await connection.baseURL == coordinator.url)
                // dead -> standby (the next replica), then the standby names the leader.
                #expect(await connection.failovers == 2)
                let token = await connection.credentials?.token
                try await connection.heartbeat()
                #expect(await connection.credentials?.token == token, "no registration again")
            }
        }
    }

    @Test func aStandbyNamingAnUnlistedLeaderIsNotFollowed() async throws {
        let hits = Hits()
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration()) { coordinator in
            // The "leader" a hostile standby names: a real listener that counts what reaches it.
            try await Self.withStandby(naming: nil, asked: { hits.count.withLock { $0 += 1 } }) { outside in
                try await Self.withStandby(naming: outside) { standby in
                    let connection = CoordinatorConnection(
                        configuration: .init(coordinatorURL: "\(standby),\(coordinator.url)", name: "site"))
                    try await Self.register(connection)
                    #expect(await connection.baseURL == coordinator.url, "the next listed replica, not \(outside)")
                    #expect(await connection.failovers == 1)
                    try await connection.heartbeat()
                    #expect(hits.count.withLock { $0 } == 0, "nothing reached the URL the standby named")
                }
            }
        }
    }
}
