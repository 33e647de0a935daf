import Foundation

/// Enrolled clients: token hashes only, revocations, and a bounded record of departures.
extension CheckpointStore {
    public func clientRegistered(id: String, name: String, tokenSHA256: String) throws {
        let now = clock()
        try connection.query(
            "INSERT INTO clients (client_id, name, token_sha256, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)",
            [.text(id), .text(name), .text(tokenSHA256), .real(now), .real(now)])
    }

    public func clientSeen(id: String) throws {
        try connection.query("UPDATE clients SET last_seen = ? WHERE client_id = ?", [.real(clock()), .text(id)])
    }

    /// How many departed clients' rows `clientLeft` keeps: live and revoked clients are always kept (a revoked
    /// token must stay told apart from an unknown one), departures only up to this many, newest first, so a
    /// client that registers and leaves in a loop cannot grow the table without bound.
    public static let departedClientsKept = 1000

    /// Marks a client as departed, then deletes the oldest departed rows beyond `departedClientsKept`.
    public func clientLeft(id: String) throws {
        let now = clock()
        try connection.transaction {
            try connection.query(
                "UPDATE clients SET left_at = ?, last_seen = ? WHERE client_id = ?",
                [.real(now), .real(now), .text(id)])
            try connection.query(
                """
                DELETE FROM clients WHERE left_at IS NOT NULL AND revoked_at IS NULL AND client_id NOT IN (
                    SELECT client_id FROM clients WHERE left_at IS NOT NULL AND revoked_at IS NULL
                    ORDER BY left_at DESC, rowid DESC LIMIT ?)
                """, [.integer(Int64(Self.departedClientsKept))])
        }
    }

    /// Revokes a client: its token stops working for good and it counts as gone. Revoking twice is harmless;
    /// the audit event is written with the first.
    /// - Returns: false when no such client was ever registered.
    /// - Throws: SQLite errors.
    @discardableResult
    public func revokeClient(id: String, reason: String, actor: String, traceID: String? = nil) throws -> Bool {
        let now = clock()
        return try connection.transaction {
            guard
                let row = try connection.query("SELECT revoked_at FROM clients WHERE client_id = ?", [.text(id)]).first
            else { return false }
            guard row[0].double == nil else { return true }
            try connection.query(
                "UPDATE clients SET revoked_at = ?, left_at = COALESCE(left_at, ?) WHERE client_id = ?",
                [.real(now), .real(now), .text(id)])
            try insertEvent(
                kind: .clientRevoked, actor: actor, round: nil, version: nil,
                detail: ["client_id": id, "reason": reason], traceID: traceID, at: now)
            return true
        }
    }

    /// Clients, most recently seen first. Without `includeLeft`, only those still enrolled (neither left nor
    /// revoked).
    public func clients(includeLeft: Bool = true) throws -> [ClientRecord] {
        try connection.query(
            """
            SELECT client_id, name, token_sha256, first_seen, last_seen, left_at, revoked_at FROM clients
            \(includeLeft ? "" : "WHERE left_at IS NULL AND revoked_at IS NULL") ORDER BY last_seen DESC
            """
        ).map { row in
            ClientRecord(
                clientID: row[0].string ?? "", name: row[1].string ?? "", tokenSHA256: row[2].string ?? "",
                firstSeen: row[3].double ?? 0, lastSeen: row[4].double ?? 0, leftAt: row[5].double,
                revokedAt: row[6].double)
        }
    }

    /// Token hashes of revoked clients, by client id (so a running coordinator follows a CLI revocation).
    public func revokedClients() throws -> [(clientID: String, tokenSHA256: String)] {
        try connection.query("SELECT client_id, token_sha256 FROM clients WHERE revoked_at IS NOT NULL").map {
            ($0[0].string ?? "", $0[1].string ?? "")
        }
    }
}
