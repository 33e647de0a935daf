import FederationCore
import Foundation
import RondoTestSupport
import Testing

@testable import Coordinator

/// Registering again under an identity key, racing what a restarting site and an operator do at the same
/// moment: the old process leaving, an operator revoking. Whatever the interleaving, a 201 hands out a token
/// that works, a revoked client stays out of the round engine, and no ghost is counted.
@Suite struct IdentityKeyTests {
    static let json = "application/json"

    static func register(_ coordinator: RunningCoordinator, _ name: String, key: String) async throws -> (
        status: Int, id: String?, token: String?
    ) {
        let body = try JSONEncoder().encode(WireProtocol.RegistrationRequest(name: name, identityKey: key))
        let answer = try await coordinator.request("POST", "/v1/clients", contentType: json, body: Array(body))
        let registration = try? JSONDecoder().decode(WireProtocol.RegistrationResponse.self, from: Data(answer.body))
        return (answer.status, registration?.clientID, registration?.token)
    }

    @Test func aLeaveRacingARegistrationUnderTheSameKeyNeverHandsOutADeadToken() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration(clients: 5)) { coordinator in
            let key = "restarting-site-key-0123456789"
            var current = try await Self.register(coordinator, "site", key: key)
            for _ in 0..<40 {
                let (id, oldToken) = (try #require(current.id), try #require(current.token))
                async let left = coordinator.request("DELETE", "/v1/clients/\(id)", token: oldToken)
                async let again = Self.register(coordinator, "site", key: key)
                let (departure, registration) = try await (left, again)
                #expect(departure.status == 204 || departure.status == 401, "\(departure.status)")
                #expect(registration.status == 201 && registration.id == id)
                let heartbeat = try await coordinator.request(
                    "POST", "/v1/clients/\(id)/heartbeat", token: registration.token)
                #expect(heartbeat.status / 100 == 2, "a 201 hands out a token that works (\(heartbeat.status))")
                current = registration
            }
            let status = try await coordinator.status()
            #expect(status.clientsRegistered == 1, "one site, one client: \(status)")
        }
    }

    @Test func aRevocationRacingARegistrationUnderTheSameKeyWins() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration(clients: 5)) { coordinator in
            for index in 0..<20 {
                let key = "revoked-site-key-\(index)-0123456789"
                let first = try await Self.register(coordinator, "site-\(index)", key: key)
                let id = try #require(first.id)
                async let revoked = coordinator.request(
                    "POST", "/v1/clients/\(id)/revoke", token: RunningCoordinator.adminToken)
                async let again = Self.register(coordinator, "site-\(index)", key: key)
                let (revocation, registration) = try await (revoked, again)
                #expect(revocation.status == 200)
                #expect(registration.status == 201 || registration.status == 403, "\(registration.status)")
                if let token = registration.token {
                    let heartbeat = try await coordinator.request("POST", "/v1/clients/\(id)/heartbeat", token: token)
                    #expect(heartbeat.status == 403, "the revocation wins over the registration")
                }
                #expect(try await Self.register(coordinator, "site-\(index)", key: key).status == 403)
            }
            let status = try await coordinator.status()
            #expect(status.clientsRegistered == 0, "no revoked client stays in the round engine: \(status)")
        }
    }

    @Test func registeringAgainReleasesTheOldTokensParkedPolls() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration(clients: 2)) { coordinator in
            let key = "polling-site-key-0123456789"
            let old = try await Self.register(coordinator, "site", key: key)
            let id = try #require(old.id)
            async let firstPoll = coordinator.request(
                "GET", "/v1/clients/\(id)/tasks/next?wait_seconds=20", token: old.token)
            async let secondPoll = coordinator.request(
                "GET", "/v1/clients/\(id)/tasks/next?wait_seconds=20", token: old.token)
            try await LimitTests.waitForParkedPolls(2, in: coordinator)
            let again = try await Self.register(coordinator, "site", key: key)
            #expect(await coordinator.driver.parkedPollCount == 0, "the old token's polls were released")
            // Both poll slots are free for the new token (before, it got 429 too_many_polls until they expired).
            let poll = try await coordinator.request(
                "GET", "/v1/clients/\(id)/tasks/next?wait_seconds=1", token: again.token)
            #expect(poll.status == 204, "the new token has every poll slot: \(poll.status) \(poll.text)")
            let (first, second) = try await (firstPoll, secondPoll)
            #expect(first.status == 204 && second.status == 204, "the old polls returned, empty")
        }
    }

    /// A client killed while its long-poll is parked (its connection closes) stops counting as alive at once:
    /// it goes silent within the liveness timeout of its last request, not the poll's deadline later.
    @Test func aPollWhoseConnectionClosedIsNoSignOfLife() async throws {
        var configuration = RunningCoordinator.configuration(clients: 2)
        configuration.rounds.livenessTimeout = .seconds(1)
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let client = try await coordinator.register("killed")
            let socket = try RawConnection(port: coordinator.port)
            #expect(
                socket.send(
                    "GET /v1/clients/\(client.id)/tasks/next?wait_seconds=60 HTTP/1.1\r\nHost: x\r\n"
                        + "Authorization: Bearer \(client.token)\r\n\r\n"))
            try await LimitTests.waitForParkedPolls(1, in: coordinator)
            #expect(try await coordinator.status().clientsConnected == 1)
            socket.close()  // the process died
            try await LimitTests.waitForParkedPolls(0, in: coordinator)
            var connected = 1
            for _ in 0..<250 where connected != 0 {
                try await Task.sleep(for: .milliseconds(20))
                connected = try await coordinator.status().clientsConnected
            }
            #expect(connected == 0, "silent one liveness timeout after its last request, not 60 s later")
        }
    }
}
