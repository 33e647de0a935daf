import FederationCore
import Foundation

/// A registration to write (`CheckpointStore.clientsEnrolled`).
public enum ClientEnrolment: Sendable, Equatable {
    /// A new client: its token's hash, and its identity key's hash when it registered with one.
    case registered(id: String, name: String, tokenSHA256: String, identitySHA256: String?)
    /// A client registering again under its identity key: same id, new token and name, enrolled again if it had
    /// left; a revoked client stays revoked.
    case returned(id: String, name: String, tokenSHA256: String)
}

/// Enrolled clients: token hashes only, revocations, and a bounded record of departures.
extension CheckpointStore {
    /// Enrols a new client (its token's hash, and its identity key's hash if it has one).
    public func clientRegistered(id: String, name: String, tokenSHA256: String, identitySHA256: String? = nil)
        async throws
    {
        _ = try await clientsEnrolled([
            .registered(id: id, name: name, tokenSHA256: tokenSHA256, identitySHA256: identitySHA256)
        ])
    }

    /// A client registered again with its identity key (a restarted site): it keeps its id, takes the new token
    /// and name, and is enrolled again if it had left. Its old token stops working. A revoked client stays
    /// revoked.
    public func clientReturned(id: String, name: String, tokenSHA256: String) async throws {
        _ = try await clientsEnrolled([.returned(id: id, name: name, tokenSHA256: tokenSHA256)])
    }

    /// Writes registrations in one transaction: the coordinator's group commit hands it every registration that
    /// arrived while the previous batch was committing, and answers none of them before this returns. All or
    /// none are written. Committed like every write of the store (WAL, `synchronous = NORMAL`): it survives a
    /// crash of the coordinator; a power cut may lose the last commits, as it may a round's.
    /// - Returns: how many clients became enrolled: every new one, and each returning one that had left (a
    ///   returning client that was still enrolled, or was revoked, does not count). The coordinator keeps its
    ///   count of enrolled clients from these figures instead of holding every client in memory.
    @discardableResult
    public func clientsEnrolled(_ enrolments: [ClientEnrolment]) async throws -> Int {
        guard !enrolments.isEmpty else { return 0 }
        let now = clock()
        return try await database.transaction {
            var newlyEnrolled = 0
            for enrolment in enrolments {
                switch enrolment {
                case .registered(let id, let name, let token, let identity):
                    try await database.query(
                        """
                        INSERT INTO clients (client_id, name, token_sha256, first_seen, last_seen, identity_sha256)
                        VALUES (?, ?, ?, ?, ?, ?)
                        """,
                        [
                            .text(id), .text(name), .text(token), .real(now), .real(now),
                            identity.map { .text($0) } ?? .null,
                        ])
                    newlyEnrolled += 1
                case .returned(let id, let name, let token):
                    let hadLeft = try await database.query(
                        "SELECT 1 FROM clients WHERE client_id = ? AND revoked_at IS NULL AND left_at IS NOT NULL",
                        [.text(id)])
                    if !hadLeft.isEmpty { newlyEnrolled += 1 }
                    try await database.query(
                        """
                        UPDATE clients SET name = ?, token_sha256 = ?, last_seen = ?, left_at = NULL
                        WHERE client_id = ? AND revoked_at IS NULL
                        """,
                        [.text(name), .text(token), .real(now), .text(id)])
                }
            }
            return newlyEnrolled
        }
    }

    /// Marks clients as seen now, all in one transaction. `last_seen` is soft state: the coordinator keeps who
    /// it heard from in memory and flushes them about once a second, so no request waits on this write.
    public func clientsSeen(ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        let now = clock()
        try await database.transaction {
            for id in ids {
                try await database.query(
                    "UPDATE clients SET last_seen = ? WHERE client_id = ?", [.real(now), .text(id)])
            }
        }
    }

    /// How many departed clients' rows `clientLeft` keeps: live and revoked clients are always kept (a revoked
    /// token must stay told apart from an unknown one), departures only up to this many, newest first, so a
    /// client that registers and leaves in a loop cannot grow the table without bound.
    public static let departedClientsKept = 1000

    /// Marks a client as departed, then deletes the oldest departed rows beyond `departedClientsKept`.
    /// - Parameter tokenSHA256: when given, only while the client still holds that token: a departure sent with
    ///   a token the client has since replaced (it registered again under its identity key) changes nothing.
    /// - Returns: true when the client was enrolled (neither left nor revoked) and now is not.
    @discardableResult
    public func clientLeft(id: String, tokenSHA256: String? = nil) async throws -> Bool {
        let now = clock()
        return try await database.transaction {
            let wasEnrolled = try await database.query(
                """
                SELECT 1 FROM clients WHERE client_id = ? AND token_sha256 = COALESCE(?, token_sha256)
                AND left_at IS NULL AND revoked_at IS NULL
                """, [.text(id), tokenSHA256.map { .text($0) } ?? .null])
            try await database.query(
                "UPDATE clients SET left_at = ?, last_seen = ? WHERE client_id = ? AND token_sha256 = COALESCE(?, token_sha256)",
                [.real(now), .real(now), .text(id), tokenSHA256.map { .text($0) } ?? .null])
            try await database.query(
                """
                DELETE FROM clients WHERE left_at IS NOT NULL AND revoked_at IS NULL AND client_id NOT IN (
                    SELECT client_id FROM clients WHERE left_at IS NOT NULL AND revoked_at IS NULL
                    ORDER BY left_at DESC, client_id DESC LIMIT ?)
                """, [.integer(Int64(Self.departedClientsKept))])
            return !wasEnrolled.isEmpty
        }
    }

    /// Revokes a client: its token stops working for good and it counts as gone. Revoking twice is harmless;
    /// the audit event is written with the first.
    /// - Returns: what the revocation changed (nothing, for a client never registered).
    /// - Throws: SQLite errors.
    @discardableResult
    public func revokeClient(id: String, reason: String, actor: String, traceID: String? = nil) async throws
        -> ClientRevocation
    {
        let now = clock()
        return try await database.transaction {
            guard
                let row = try await database.query(
                    "SELECT revoked_at, left_at FROM clients WHERE client_id = ?", [.text(id)]
                ).first
            else { return .unknownClient }
            guard row[0].double == nil else { return .alreadyRevoked }
            try await database.query(
                "UPDATE clients SET revoked_at = ?, left_at = COALESCE(left_at, ?) WHERE client_id = ?",
                [.real(now), .real(now), .text(id)])
            try await insertEvent(
                kind: .clientRevoked, actor: actor, round: nil, version: nil,
                detail: ["client_id": id, "reason": reason], traceID: traceID, at: now)
            return .revoked(wasEnrolled: row[1].double == nil)
        }
    }

    /// Clients, most recently seen first. Without `includeLeft`, only those still enrolled (neither left nor
    /// revoked).
    public func clients(includeLeft: Bool = true) async throws -> [ClientRecord] {
        try await database.query(
            """
            \(Self.clientColumns)
            \(includeLeft ? "" : "WHERE left_at IS NULL AND revoked_at IS NULL") ORDER BY last_seen DESC, client_id
            """
        ).map(Self.clientRecord)
    }

    static let clientColumns = """
        SELECT client_id, name, token_sha256, first_seen, last_seen, left_at, revoked_at, identity_sha256
        FROM clients
        """

    static func clientRecord(_ row: [SQLValue]) -> ClientRecord {
        ClientRecord(
            clientID: row[0].string ?? "", name: row[1].string ?? "", tokenSHA256: row[2].string ?? "",
            firstSeen: row[3].double ?? 0, lastSeen: row[4].double ?? 0, leftAt: row[5].double,
            revokedAt: row[6].double, identitySHA256: row[7].string)
    }

    /// The client that registered with the identity key hashing to `identitySHA256`, if any (live, departed or
    /// revoked).
    public func client(identitySHA256: String) async throws -> ClientRecord? {
        try await database.query(
            "\(Self.clientColumns) WHERE identity_sha256 = ?", [.text(identitySHA256)]
        ).first.map(Self.clientRecord)
    }

    /// The client whose current token hashes to `tokenSHA256`, if any (live, departed or revoked). The
    /// coordinator keeps only clients it heard from lately in memory and asks here for the others (one lookup
    /// in the token's unique index).
    public func client(tokenSHA256: String) async throws -> ClientRecord? {
        try await database.query(
            "\(Self.clientColumns) WHERE token_sha256 = ?", [.text(tokenSHA256)]
        ).first.map(Self.clientRecord)
    }

    /// A filter of every token hash the store holds (live, departed and revoked clients'), read row by row
    /// without holding the hashes: the coordinator asks the store only about tokens it may hold.
    public func tokenFilter(bitCount: Int = 1 << 23) async throws -> TokenFilter {
        var filter = TokenFilter(bitCount: bitCount)
        try await database.forEachBlob("SELECT token_sha256 FROM clients", []) {
            filter.insert(hexDigest: $0)
        }
        return filter
    }

    /// How many clients are enrolled: registered, and neither left nor revoked.
    public func enrolledClientCount() async throws -> Int {
        let rows = try await database.query("SELECT COUNT(*) FROM clients WHERE left_at IS NULL AND revoked_at IS NULL")
        return rows.first?[0].int ?? 0
    }
}
