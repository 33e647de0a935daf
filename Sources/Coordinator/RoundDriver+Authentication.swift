import FederationCore
import Foundation
import ModelManager

/// Bearer tokens, with only the online federation in memory.
///
/// The registry and the round engine hold the clients heard from lately. A client that goes silent is evicted
/// from both (it stays enrolled in the store), and a token the registry does not know is looked up in the store
/// (one read of the token's unique index): a live client's token brings it back, a revoked one is refused for
/// good, anything else is unknown. So memory and the per-tick walk follow the clients online, start-up reads no
/// client rows, and a federation of many enrolled sites, few of them online, costs what its online part costs.
extension RoundDriver {
    /// The client a bearer token belongs to, or why there is none. A request bearing a live token is contact:
    /// a client brought back from the store counts as connected from now on.
    /// - Throws: `ClientLookupFailed` when the token had to be looked up and the store could not answer (503,
    ///   retried by the client; a 401 would tell it to enrol again as someone new).
    public func authenticate(token: String) async throws(ClientLookupFailed) -> ClientAuthentication {
        let hash = Digest.sha256Hex(token.utf8)
        if let known = registry.authenticate(tokenSHA256: hash) { return known }
        // A made-up token costs no store read; a departure not stored yet stays a departure.
        guard tokenFilter.mayContain(tokenSHA256: hash), unstoredDepartures[hash] == nil else { return .unknown }
        storeLookups += 1
        storeLookupsMade += 1
        let looked: Result<ClientRecord?, any Error>
        do {
            looked = .success(try await store.client(tokenSHA256: hash))
        } catch {
            looked = .failure(error)
        }
        storeLookups -= 1
        defer { forgetDeparturesWhenIdle() }
        // The registry may have learnt the token while the store was asked (a concurrent request of the client).
        if let known = registry.authenticate(tokenSHA256: hash) { return known }
        let record: ClientRecord?
        switch looked {
        case .success(let found): record = found
        case .failure(let error):
            logger.error("looking a client token up in the store failed", metadata: ["error": "\(error)"])
            throw ClientLookupFailed(cause: "\(error)")
        }
        guard let record else { return .unknown }
        let client = ClientID(record.clientID)
        if record.revokedAt != nil {
            registry.restoreRevocation(tokenSHA256: hash)
            return .revoked
        }
        guard record.leftAt == nil else { return .unknown }
        // It left, was revoked or registered again with a new token since the row was read.
        if registry.isRevoked(client) { return .revoked }
        if departedDuringLookups.contains(hash) || unstoredDepartures[hash] != nil { return .unknown }
        guard registry.tokenHash(of: client) == nil, !machine.isRegistered(client) else { return .unknown }
        await bringBack(client, record: record, tokenSHA256: hash)
        return .client(client)
    }

    /// Loads an enrolled client the store knows into the registry and the round engine; it counts as heard
    /// from now (which may complete the set a round waits for).
    private func bringBack(_ client: ClientID, record: ClientRecord, tokenSHA256 hash: String) async {
        registry.restore(client, tokenSHA256: hash)
        registry.setName(record.name, of: client)
        if let identity = record.identitySHA256 { registry.restoreIdentity(identity, of: client) }
        // The store's `last_seen` is wall-clock time; the engine counts in the driver's clock.
        let now = clock.now
        let silentFor = max(0, Date().timeIntervalSince1970 - record.lastSeen)
        machine.restore(client, lastSeen: now.advanced(by: .seconds(-silentFor)))
        await perform(machine.touch(client, now: now))
    }

    /// The clients held in memory: live tokens in the registry, rows in the round engine (the two agree).
    var clientsInMemory: (tokens: Int, engine: Int) { (registry.liveCount, machine.registeredClientCount) }

    /// A client that went silent leaves memory: its token, name and limits here, its row in the round engine.
    /// It stays enrolled; its next request brings it back from the store.
    func evictSilent(_ client: ClientID) {
        guard machine.evict(client) else { return }
        registry.forget(client)
        admission.forget(client)
    }

    /// Notes a departure while a token lookup or a departure's store write is in flight: a lookup may have
    /// read the client's row from before, and must not bring the token back. (A revocation needs no note: the
    /// registry remembers revoked clients.)
    func noteDeparture(tokenSHA256 hash: String?) {
        guard let hash, storeLookups > 0 || departureWrites > 0 else { return }
        departedDuringLookups.insert(hash)
    }

    /// Retries the departures the store could not write (see `unstoredDepartures`); called by the
    /// housekeeping.
    func storeUnstoredDepartures() async {
        for (hash, client) in unstoredDepartures {
            do {
                if try await store.clientLeft(id: client.rawValue, tokenSHA256: hash) { enrolledClients -= 1 }
                unstoredDepartures[hash] = nil
            } catch {
                return  // still failing: the next housekeeping tries again
            }
        }
    }

    /// Drops the noted departures once no lookup and no departure write is in flight: every later lookup reads
    /// rows that already show them.
    func forgetDeparturesWhenIdle() {
        if storeLookups == 0, departureWrites == 0, !departedDuringLookups.isEmpty { departedDuringLookups = [] }
    }
}
