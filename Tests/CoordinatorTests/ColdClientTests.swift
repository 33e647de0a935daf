@testable import Coordinator
import FederationCore
import Foundation
import RondoTestSupport
import Testing

@testable import ModelManager

/// Only the online federation is held in memory: start-up reads no client rows, a silent client is evicted,
/// and a token the coordinator does not hold is looked up in the store, where it is live, revoked, departed or
/// unknown exactly as before.
@Suite struct ColdClientTests {
    static func token(_ index: Int) -> String { "token-of-client-\(index)-0123456789abcdef" }

    /// A data directory whose store enrols `count` clients (`c-0`, `c-1`, …) with the tokens above, the way
    /// earlier runs of the coordinator left it.
    static func enrolled(_ count: Int) async throws -> String {
        let directory = RunningCoordinator.temporaryDirectory()
        let store = try await CheckpointStore(configuration: .init(path: directory + "/rondo.db"))
        try await store.clientsEnrolled(
            (0..<count).map {
                .registered(
                    id: "c-\($0)", name: "site \($0)", tokenSHA256: Digest.sha256Hex(token($0).utf8),
                    identitySHA256: Digest.sha256Hex("identity-key-of-site-\($0)".utf8))
            })
        return directory
    }

    /// Runs `body` against a coordinator started on a store that enrols `count` clients, then stops it.
    static func withEnrolled(
        _ count: Int, configuration: CoordinatorConfiguration = RunningCoordinator.configuration(clients: 2),
        _ body: (RunningCoordinator) async throws -> Void
    ) async throws {
        let directory = try await enrolled(count)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let coordinator = try await RunningCoordinator(configuration: configuration, in: directory)
        do {
            try await body(coordinator)
        } catch {
            await coordinator.stop()
            throw error
        }
        await coordinator.stop()
    }

    @Test func startUpHoldsNoClientAndEachTokenIsAnsweredFromTheStore() async throws {
        let directory = try await Self.enrolled(300)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await CheckpointStore(configuration: .init(path: directory + "/rondo.db"))
        #expect(try await store.revokeClient(id: "c-1", reason: "test", actor: "t") == .revoked(wasEnrolled: true))
        #expect(try await store.clientLeft(id: "c-2"))

        let coordinator = try await RunningCoordinator(
            configuration: RunningCoordinator.configuration(clients: 1_000), in: directory)
        #expect(try await coordinator.status().clientsRegistered == 298, "enrolled: neither revoked nor departed")
        #expect(await coordinator.driver.clientsInMemory == (0, 0), "start-up loads no client")

        let live = try await coordinator.request("POST", "/v1/clients/c-0/heartbeat", token: Self.token(0))
        #expect(live.status == 204, "a live token works after the restart: \(live.text)")
        let again = try await coordinator.request("POST", "/v1/clients/c-0/heartbeat", token: Self.token(0))
        #expect(again.status == 204)
        let revoked = try await coordinator.request("POST", "/v1/clients/c-1/heartbeat", token: Self.token(1))
        #expect(revoked.status == 403 && revoked.errorCode == "revoked", "\(revoked.text)")
        let departed = try await coordinator.request("POST", "/v1/clients/c-2/heartbeat", token: Self.token(2))
        #expect(departed.status == 401, "\(departed.text)")
        let madeUp = try await coordinator.request("POST", "/v1/clients/c-3/heartbeat", token: "made-up-token-0123")
        #expect(madeUp.status == 401, "\(madeUp.text)")
        let foreign = try await coordinator.request("POST", "/v1/clients/c-5/heartbeat", token: Self.token(4))
        #expect(foreign.status == 403 && foreign.errorCode == "forbidden", "another client's resource: \(foreign.text)")

        #expect(await coordinator.driver.clientsInMemory == (2, 2), "c-0 and c-4 were heard from")
        let status = try await coordinator.status()
        #expect(status.clientsConnected == 2 && status.clientsRegistered == 298, "\(status)")
        await coordinator.stop()
    }

    @Test func aSilentClientLeavesMemoryStaysEnrolledAndComesBack() async throws {
        let clock = ManualClock()
        let configuration = RunningCoordinator.configuration(clients: 2)
        try await RunningCoordinator.with(configuration: configuration, clock: clock) { coordinator in
            let client = try await coordinator.register("quiet")
            #expect(await coordinator.driver.clientsInMemory == (1, 1))
            clock.advance(by: configuration.rounds.livenessTimeout + .seconds(1))
            await coordinator.driver.tick()
            #expect(await coordinator.driver.clientsInMemory == (0, 0), "silent: evicted")
            var status = try await coordinator.status()
            #expect(status.clientsRegistered == 1 && status.clientsConnected == 0, "still enrolled: \(status)")
            let listing = try await coordinator.request("GET", "/v1/clients", token: RunningCoordinator.adminToken)
            #expect(listing.text.contains(client.id), "the listing comes from the store: \(listing.text)")

            let beat = try await coordinator.request(
                "POST", "/v1/clients/\(client.id)/heartbeat", token: client.token)
            #expect(beat.status == 204, "its token still works: \(beat.text)")
            #expect(await coordinator.driver.clientsInMemory == (1, 1))
            status = try await coordinator.status()
            #expect(status.clientsRegistered == 1 && status.clientsConnected == 1, "\(status)")
        }
    }

    @Test func theClientLimitCountsEnrolledClientsNotTheOnesInMemory() async throws {
        let directory = try await Self.enrolled(2)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = RunningCoordinator.configuration(clients: 3)
        configuration.limits.maxClients = 2
        let coordinator = try await RunningCoordinator(configuration: configuration, in: directory)
        let newcomer = try await coordinator.request(
            "POST", "/v1/clients", contentType: "application/json", body: Array(#"{"name":"third"}"#.utf8))
        #expect(newcomer.status == 409 && newcomer.errorCode == "client_limit_reached", "\(newcomer.text)")
        // A site registering again under its key is one of the two, not a third.
        let returning = try await coordinator.request(
            "POST", "/v1/clients", contentType: "application/json",
            body: Array(#"{"name":"site 0","identity_key":"identity-key-of-site-0"}"#.utf8))
        #expect(returning.status == 201, "\(returning.text)")
        let registration = try JSONDecoder().decode(
            WireProtocol.RegistrationResponse.self, from: Data(returning.body))
        #expect(registration.clientID == "c-0")
        let old = try await coordinator.request("POST", "/v1/clients/c-0/heartbeat", token: Self.token(0))
        #expect(old.status == 401, "the token it replaced stopped working: \(old.text)")

        // Departures and revocations free places, as the store counts them.
        let left = try await coordinator.request(
            "DELETE", "/v1/clients/c-0", token: registration.token)
        #expect(left.status < 300, "\(left.text)")
        #expect(try await coordinator.status().clientsRegistered == 1)
        let revoke = try await coordinator.request(
            "POST", "/v1/clients/c-1/revoke", token: RunningCoordinator.adminToken, contentType: "application/json",
            body: Array(#"{"reason":"test"}"#.utf8))
        #expect(revoke.status < 300, "\(revoke.text)")
        #expect(try await coordinator.status().clientsRegistered == 0)
        let revokedToken = try await coordinator.request("POST", "/v1/clients/c-1/heartbeat", token: Self.token(1))
        #expect(revokedToken.status == 403, "revoked while not in memory: \(revokedToken.text)")
        await coordinator.stop()
    }

    @Test func aStoreThatCannotAnswerIsA503NotA401() async throws {
        try await Self.withEnrolled(1) { coordinator in
            let store = coordinator.driver.store
            // A real SQLite error on the lookup: the table it reads is gone.
            _ = try await store.withConnection { try $0.query("ALTER TABLE clients RENAME TO clients_away") }
            let refused = try await coordinator.request("POST", "/v1/clients/c-0/heartbeat", token: Self.token(0))
            #expect(refused.status == 503 && refused.errorCode == "store_failing", "\(refused.text)")
            #expect(refused.header("Retry-After") == "1")
            _ = try await store.withConnection { try $0.query("ALTER TABLE clients_away RENAME TO clients") }
            let answered = try await coordinator.request("POST", "/v1/clients/c-0/heartbeat", token: Self.token(0))
            #expect(answered.status == 204, "the same token works once the store answers: \(answered.text)")
        }
    }

    @Test func madeUpTokensCostNoStoreRead() async throws {
        try await Self.withEnrolled(20, configuration: RunningCoordinator.configuration(clients: 50)) { coordinator in
            for attempt in 0..<50 {
                let response = try await coordinator.request(
                    "POST", "/v1/clients/c-0/heartbeat", token: "made-up-token-\(attempt)-0123456789abcdef")
                #expect(response.status == 401)
            }
            #expect(await coordinator.driver.storeLookupsMade == 0, "the token filter answered without the store")
            let returning = try await coordinator.request("POST", "/v1/clients/c-7/heartbeat", token: Self.token(7))
            #expect(returning.status == 204, "\(returning.text)")
            #expect(await coordinator.driver.storeLookupsMade == 1)
        }
    }

    @Test func aDepartureTheStoreCouldNotWriteStaysADepartureAndIsWrittenLater() async throws {
        let clock = ManualClock()
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration(clients: 2), clock: clock) {
            coordinator in
            let store = coordinator.driver.store
            let client = try await coordinator.register("leaving")
            _ = try await store.withConnection { try $0.query("PRAGMA query_only = ON") }
            let left = try await coordinator.request("DELETE", "/v1/clients/\(client.id)", token: client.token)
            #expect(left.status == 204, "\(left.text)")
            let after = try await coordinator.request(
                "POST", "/v1/clients/\(client.id)/heartbeat", token: client.token)
            #expect(after.status == 401, "the departed token is not brought back from the stale row: \(after.text)")
            _ = try await store.withConnection { try $0.query("PRAGMA query_only = OFF") }
            clock.advance(by: .seconds(1))
            await coordinator.driver.tick()
            let row = try #require(try await store.clients().first { $0.clientID == client.id })
            #expect(row.leftAt != nil, "the housekeeping wrote the departure")
            #expect(try await coordinator.status().clientsRegistered == 0)
        }
    }

    @Test func aSiteThatLeftAndReturnedUnderItsKeyKeepsItsNewTokenAcrossEviction() async throws {
        let clock = ManualClock()
        let configuration = RunningCoordinator.configuration(clients: 2)
        try await RunningCoordinator.with(configuration: configuration, clock: clock) { coordinator in
            let body = Array(#"{"name":"site","identity_key":"identity-key-of-a-returning-site"}"#.utf8)
            let first = try JSONDecoder().decode(
                WireProtocol.RegistrationResponse.self,
                from: Data(
                    try await coordinator.request("POST", "/v1/clients", contentType: "application/json", body: body)
                        .body))
            let left = try await coordinator.request(
                "DELETE", "/v1/clients/\(first.clientID)", token: first.token)
            #expect(left.status == 204)
            let again = try await coordinator.request(
                "POST", "/v1/clients", contentType: "application/json", body: body)
            #expect(again.status == 201, "\(again.text)")
            let second = try JSONDecoder().decode(WireProtocol.RegistrationResponse.self, from: Data(again.body))
            #expect(second.clientID == first.clientID && second.token != first.token)
            clock.advance(by: configuration.rounds.livenessTimeout + .seconds(1))
            await coordinator.driver.tick()
            #expect(await coordinator.driver.clientsInMemory == (0, 0))
            let beat = try await coordinator.request(
                "POST", "/v1/clients/\(second.clientID)/heartbeat", token: second.token)
            #expect(beat.status == 204, "the new token, read back from the store: \(beat.text)")
            let old = try await coordinator.request(
                "POST", "/v1/clients/\(first.clientID)/heartbeat", token: first.token)
            #expect(old.status == 401)
            #expect(try await coordinator.status().clientsRegistered == 1)
        }
    }

    @Test func aReturningSiteIsNotEnrolledAsNewWhileTheStoreCannotAnswer() async throws {
        try await Self.withEnrolled(1) { coordinator in
            let store = coordinator.driver.store
            _ = try await store.withConnection { try $0.query("ALTER TABLE clients RENAME TO clients_away") }
            let refused = try await coordinator.request(
                "POST", "/v1/clients", contentType: "application/json",
                body: Array(#"{"name":"site 0","identity_key":"identity-key-of-site-0"}"#.utf8))
            #expect(refused.status == 503 && refused.errorCode == "store_failing", "\(refused.text)")
            _ = try await store.withConnection { try $0.query("ALTER TABLE clients_away RENAME TO clients") }
            #expect(try await store.clients().count == 1, "no second client for the same site")
        }
    }
}
