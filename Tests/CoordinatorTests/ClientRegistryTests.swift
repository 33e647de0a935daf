import FederationCore
import Testing

@testable import Coordinator

@Suite struct ClientRegistryTests {
    @Test func tokensAuthenticateTheirClientUntilItLeavesOrIsRevoked() {
        var registry = ClientRegistry()
        let (alice, aliceHash) = registry.issueToken(for: ClientID("alice"))
        let (bob, _) = registry.issueToken(for: ClientID("bob"))
        #expect(aliceHash == Digest.sha256Hex(alice.utf8), "only the hash is handed to the store")
        #expect(registry.authenticate(token: alice) == .client(ClientID("alice")))
        #expect(registry.authenticate(token: bob) == .client(ClientID("bob")))
        #expect(registry.authenticate(token: "made-up") == .unknown)

        registry.forget(ClientID("alice"))
        #expect(registry.authenticate(token: alice) == .unknown, "a client that left gets 401")
        registry.revoke(ClientID("bob"))
        #expect(registry.authenticate(token: bob) == .revoked, "a revoked client gets 403 for good")
        #expect(registry.liveCount == 0)
    }

    @Test func restoredClientsAndRevocationsSurviveARestart() {
        var registry = ClientRegistry()
        registry.restore(ClientID("old"), tokenSHA256: Digest.sha256Hex("old-token".utf8))
        registry.restoreRevocation(tokenSHA256: Digest.sha256Hex("gone-token".utf8))
        #expect(registry.authenticate(token: "old-token") == .client(ClientID("old")))
        #expect(registry.authenticate(token: "gone-token") == .revoked)
        registry.revoke(ClientID("old"))
        #expect(registry.authenticate(token: "old-token") == .revoked)
    }
}
