import FederationCore

/// Who a client bearer token belongs to.
public enum ClientAuthentication: Sendable, Equatable {
    /// A live client's token.
    case client(ClientID)
    /// The token of a client an operator revoked: refused with 403 for good.
    case revoked
    /// No client has this token (never issued, or the client left): 401.
    case unknown
}

/// The bearer tokens of the live federation: which client each belongs to, and which were revoked.
///
/// Only SHA-256 hashes are kept: a token is shown to its client once, at registration. Invariant: a hash is
/// never both live and revoked, and each live client has exactly one token.
struct ClientRegistry: Sendable {
    private var owners: [String: ClientID] = [:]
    private var tokenOf: [ClientID: String] = [:]
    private var revoked: Set<String> = []

    /// Adds a client known from the store (after a restart) with its token hash.
    mutating func restore(_ client: ClientID, tokenSHA256: String) {
        owners[tokenSHA256] = client
        tokenOf[client] = tokenSHA256
    }

    /// Marks a stored revocation: that token is refused with 403 from now on.
    mutating func restoreRevocation(tokenSHA256: String) {
        revoked.insert(tokenSHA256)
    }

    /// Issues a fresh token for `client`; the caller hands `token` out and stores only `sha256`.
    mutating func issueToken(for client: ClientID) -> (token: String, sha256: String) {
        let token = Digest.randomToken()
        let hash = Digest.sha256Hex(token.utf8)
        restore(client, tokenSHA256: hash)
        return (token, hash)
    }

    /// The client a bearer token belongs to, or why there is none.
    func authenticate(token: String) -> ClientAuthentication {
        let hash = Digest.sha256Hex(token.utf8)
        if let client = owners[hash] { return .client(client) }
        return revoked.contains(hash) ? .revoked : .unknown
    }

    /// The client left: its token stops working (401 from now on).
    mutating func forget(_ client: ClientID) {
        guard let hash = tokenOf.removeValue(forKey: client) else { return }
        owners[hash] = nil
    }

    /// An operator revoked the client: its token is refused with 403 from now on.
    mutating func revoke(_ client: ClientID) {
        guard let hash = tokenOf[client] else { return }
        revoked.insert(hash)
        forget(client)
    }

    /// The number of live tokens.
    var liveCount: Int { owners.count }
}
