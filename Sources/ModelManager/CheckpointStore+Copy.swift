import Foundation

/// What `copy(to:)` moved.
public struct StoreCopyReport: Sendable, Equatable {
    /// Rows copied, by table.
    public var rows: [String: Int]
    /// Chunk bytes copied (checkpoints and server states).
    public var bytes: Int
}

/// Moving a whole federation from one store to another (SQLite to PostgreSQL when a federation goes highly
/// available): every table, with every id kept, so versions, rounds, refs, the audit log and the privacy
/// ledger read the same afterwards.
extension CheckpointStore {
    /// The tables in the order their foreign keys allow, each with its one-column key (rows are read in pages
    /// ordered by it) and its columns.
    static let copiedTables: [(name: String, key: String, columns: [String])] = [
        (
            "checkpoints", "version",
            [
                "version", "round", "parent_version", "created_at", "sha256", "size_bytes", "tensor_count", "format",
                "status", "status_reason", "integrity_error", "metrics_json", "strategy_json",
            ]
        ),
        ("server_states", "version", ["version", "sha256", "size_bytes"]),
        ("refs", "name", ["name", "version", "updated_at"]),
        (
            "rounds", "round",
            [
                "round", "status", "started_at", "finished_at", "base_version", "result_version", "selected",
                "answered", "dropped", "rejected", "reason", "detail", "eval_loss", "eval_metrics_json",
            ]
        ),
        (
            "clients", "client_id",
            [
                "client_id", "name", "token_sha256", "first_seen", "last_seen", "left_at", "revoked_at",
                "identity_sha256",
            ]
        ),
        ("events", "id", ["id", "at", "kind", "actor", "round", "version", "trace_id", "detail_json"]),
        (
            "privacy_ledger", "round",
            [
                "round", "version", "sampling_rate", "noise_multiplier", "clip_norm", "next_clip_norm", "results",
                "unclipped", "recorded_at",
            ]
        ),
    ]

    /// Copies everything in this store into `destination`, in one transaction there, and compares the copy
    /// with this store (record by record, every version's bytes re-hashed) before that transaction commits:
    /// a copy that differs is rolled back, so the destination ends up with the whole federation or nothing.
    /// Chunks move one at a time, so the copy holds one chunk in memory, not a model.
    /// - Throws: `CheckpointStoreError(.invalidState)` when `destination` already holds a federation (any
    ///   checkpoint, round, client or event), or when a coordinator leads it; `.integrity` when the copy
    ///   differs.
    public func copy(to destination: CheckpointStore) async throws -> StoreCopyReport {
        let target = destination.database
        var report = StoreCopyReport(rows: [:], bytes: 0)
        try await target.transaction(fenced: false) {
            for table in ["checkpoints", "rounds", "clients", "events", "privacy_ledger"] {
                let count = try await target.query("SELECT COUNT(*) FROM \(table)").first?[0].int ?? 0
                guard count == 0 else {
                    throw CheckpointStoreError(
                        .invalidState, "the destination already holds a federation (\(count) rows in \(table))")
                }
            }
            if target.dialect == .postgres {
                let live = try await target.query(
                    "SELECT holder FROM leader_lease WHERE expires_at > extract(epoch FROM clock_timestamp())")
                if let holder = live.first?[0].string {
                    throw CheckpointStoreError(
                        .invalidState, "a coordinator (\(holder)) leads the destination; stop it before migrating")
                }
            }
            for table in Self.copiedTables {
                report.rows[table.name] = try await copyRows(of: table, into: target)
                if table.name == "checkpoints" {
                    report.bytes += try await copyChunks(.checkpointChunks, into: target)
                } else if table.name == "server_states" {
                    report.bytes += try await copyChunks(.serverStateChunks, into: target)
                }
            }
            if target.dialect == .postgres {
                // Ids were copied as they were: new rows must number on after them.
                for (table, column) in [("checkpoints", "version"), ("events", "id")] {
                    try await target.query(
                        "SELECT setval(pg_get_serial_sequence('\(table)', '\(column)'), COALESCE(MAX(\(column)), 0) + 1, false) FROM \(table)"
                    )
                }
            }
            // Read back through the destination's own API, inside its transaction (this task holds it).
            let differences = try await differences(from: destination)
            let verification = try await destination.verify(recording: false)
            guard differences.isEmpty, verification.isHealthy else {
                throw CheckpointStoreError(
                    .integrity,
                    "the copy differs from the source, so nothing was kept: "
                        + (differences + verification.problems).joined(separator: "; "))
            }
        }
        return report
    }

    private func copyRows(
        of table: (name: String, key: String, columns: [String]), into target: StoreSession
    ) async throws -> Int {
        let columns = table.columns.joined(separator: ", ")
        let insert =
            "INSERT INTO \(table.name) (\(columns)) VALUES (\(Array(repeating: "?", count: table.columns.count).joined(separator: ", ")))"
        let keyIndex = table.columns.firstIndex(of: table.key) ?? 0
        var after: SQLValue?
        var copied = 0
        while true {
            let page = try await database.query(
                "SELECT \(columns) FROM \(table.name)\(after == nil ? "" : " WHERE \(table.key) > ?") ORDER BY \(table.key) LIMIT 500",
                after.map { [$0] } ?? [])
            for row in page { try await target.query(insert, row) }
            copied += page.count
            guard page.count == 500, let last = page.last else { return copied }
            after = last[keyIndex]
        }
    }

    /// Copies every chunk of `table`, one chunk in memory at a time.
    private func copyChunks(_ table: ChunkTable, into target: StoreSession) async throws -> Int {
        var bytes = 0
        let owners = try await database.query("SELECT DISTINCT version FROM \(table.rawValue) ORDER BY version")
        for owner in owners {
            var index: Int64 = 0
            while let row = try await database.query(
                "SELECT data FROM \(table.rawValue) WHERE version = ? AND idx = ?", [owner[0], .integer(index)]
            ).first {
                let data = row[0].bytes ?? Array((row[0].string ?? "").utf8)
                try await target.query(
                    "INSERT INTO \(table.rawValue) (version, idx, data) VALUES (?, ?, ?)",
                    [owner[0], .integer(index), .blob(data)])
                bytes += data.count
                index += 1
            }
        }
        return bytes
    }
}

extension CheckpointStore {
    /// Where this store and `other` differ, read through the store's own API: every checkpoint record and its
    /// bytes, refs, rounds, clients, events and the privacy ledger. Empty when they hold the same federation.
    public func differences(from other: CheckpointStore) async throws -> [String] {
        var differences: [String] = []
        let mine = try await checkpoints()
        let theirs = try await other.checkpoints()
        if mine != theirs { differences.append("checkpoint records differ (\(mine.count) vs \(theirs.count))") }
        for record in mine where [.committed, .imported].contains(record.status) {
            if try await bytes(version: record.version) != (try await other.bytes(version: record.version)) {
                differences.append("version \(record.version): bytes differ")
            }
            if try await serverState(version: record.version) != (try await other.serverState(version: record.version))
            {
                differences.append("version \(record.version): server state differs")
            }
        }
        if try await refs() != (try await other.refs()) { differences.append("refs differ") }
        if try await rounds(limit: Int(Int32.max)) != (try await other.rounds(limit: Int(Int32.max))) {
            differences.append("rounds differ")
        }
        if try await clients() != (try await other.clients()) { differences.append("clients differ") }
        if try await events(limit: Int(Int32.max)) != (try await other.events(limit: Int(Int32.max))) {
            differences.append("events differ")
        }
        if try await privacyLedger() != (try await other.privacyLedger()) {
            differences.append("privacy ledgers differ")
        }
        return differences
    }
}
