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

/// Why a registration was refused.
public enum RegistrationRefusal: Error, Sendable {
    /// A configured limit (clients enrolled, registration rate).
    case limit(LimitError)
    /// The identity key belongs to a client an operator revoked.
    case revoked
    /// The store could not write the registration; it was not made.
    case notStored(EnrolmentNotStored)
}

/// What an identity key names.
enum ClientIdentityMatch: Sendable, Equatable {
    /// A client (live or departed) that registered with this key: registering again returns it.
    case client(ClientID)
    /// A client an operator revoked: its key is refused for good, like its token.
    case revoked
}

/// Who the clients are: the bearer tokens of the live federation (which client each belongs to, which were
/// revoked), each client's name for log lines, and the identity keys clients may re-register under.
///
/// It holds the clients heard from lately, not every enrolled one: a client that goes silent is forgotten here
/// (it stays enrolled in the store), and its token is looked up in the store when it returns, so memory follows
/// the online federation, not the enrolment.
///
/// Only SHA-256 hashes of tokens and keys are kept: a token is shown to its client once, at registration, and a
/// key never leaves the client. Invariant: a token hash is never both live and revoked, each live client has
/// exactly one token, and an identity key names at most one client.
struct ClientRegistry: Sendable {
    private var owners: [String: ClientID] = [:]
    private var tokenOf: [ClientID: String] = [:]
    private var revoked: Set<String> = []
    private var names: [ClientID: String] = [:]
    private var identities: [String: ClientID] = [:]
    private var identityOf: [ClientID: String] = [:]
    private var revokedClients: Set<ClientID> = []

    /// The hash of the client's live token, if it has one.
    func tokenHash(of client: ClientID) -> String? { tokenOf[client] }

    /// The name a client registered with (for log lines), if it is known.
    func name(of client: ClientID) -> String? { names[client] }

    mutating func setName(_ name: String, of client: ClientID) { names[client] = name }

    /// Notes which client registered with the identity key hashing to `sha256` (at registration, or from the
    /// store after a restart).
    mutating func restoreIdentity(_ sha256: String, of client: ClientID, revoked isRevoked: Bool = false) {
        identities[sha256] = client
        identityOf[client] = sha256
        if isRevoked { revokedClients.insert(client) }
    }

    /// The live or revoked client an identity key's hash names, if any. Departed clients are forgotten here
    /// (memory stays bounded by the live federation); the store still knows their keys.
    func identity(_ sha256: String) -> ClientIdentityMatch? {
        guard let client = identities[sha256] else { return nil }
        return revokedClients.contains(client) ? .revoked : .client(client)
    }

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

    /// The client a bearer token belongs to, or why there is none, as far as the registry knows.
    func authenticate(token: String) -> ClientAuthentication {
        authenticate(tokenSHA256: Digest.sha256Hex(token.utf8)) ?? .unknown
    }

    /// The client a token's hash belongs to, or that it was revoked; nil when the registry does not know the
    /// hash (an enrolled client not heard from lately is known only to the store).
    func authenticate(tokenSHA256 hash: String) -> ClientAuthentication? {
        if let client = owners[hash] { return .client(client) }
        return revoked.contains(hash) ? .revoked : nil
    }

    /// Whether an operator revoked the client while this coordinator ran.
    func isRevoked(_ client: ClientID) -> Bool { revokedClients.contains(client) }

    /// The client left: its token stops working (401 from now on).
    mutating func forget(_ client: ClientID) {
        names[client] = nil
        if !revokedClients.contains(client), let identity = identityOf.removeValue(forKey: client) {
            identities[identity] = nil
        }
        guard let hash = tokenOf.removeValue(forKey: client) else { return }
        owners[hash] = nil
    }

    /// An operator revoked the client: its token is refused with 403 from now on.
    mutating func revoke(_ client: ClientID) {
        revokedClients.insert(client)
        guard let hash = tokenOf[client] else { return }
        revoked.insert(hash)
        forget(client)
    }

    /// The number of live tokens.
    var liveCount: Int { owners.count }
}
