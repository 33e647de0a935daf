import Crypto
import FederationCore
import Foundation

/// Keeping the store honest and bounded: re-hashing every version, pruning old ones, and the audit log.
extension CheckpointStore {
    // MARK: Integrity and retention

    /// Recomputes every checkpoint's hash and runs the engine's integrity check. Versions that fail are marked so
    /// rollback refuses them; versions that pass again are cleared.
    /// - Parameter recording: whether to record each version's finding in `integrity_error` (so rollbacks refuse
    ///   corrupt versions); false reads only, for a store another process writes.
    public func verify(recording: Bool = true) async throws -> VerificationReport {
        var problems: [String] = []
        let records = try await checkpoints()
        for record in records {
            // Hashed chunk by chunk as SQLite hands them over: verifying a store never holds a model whole.
            var hasher = SHA256()
            var count = 0
            try await forEachChunk(record.version) { chunk in
                hasher.update(bufferPointer: chunk)
                count += chunk.count
            }
            let digest = hasher.finalize().hexString
            var error: String?
            if count != record.sizeBytes {
                error = "size \(count) bytes, recorded \(record.sizeBytes)"
            } else if digest != record.sha256 {
                error = "SHA-256 \(digest), recorded \(record.sha256)"
            }
            if let error { problems.append("version \(record.version): \(error)") }
            if recording, error != record.integrityError {
                try await database.transaction {
                    try await database.query(
                        "UPDATE checkpoints SET integrity_error = ? WHERE version = ?",
                        [error.map { .text($0) } ?? .null, .integer(Int64(record.version))])
                }
            }
        }
        let check = try await integrityCheck()
        let dangling = try await database.query(
            "SELECT name FROM refs WHERE version NOT IN (SELECT version FROM checkpoints)")
        problems += dangling.compactMap { $0[0].string }.map { "ref \($0) points at a missing version" }
        return VerificationReport(checkpointsChecked: records.count, problems: problems, integrityCheck: check)
    }

    /// The engine's own check of the whole database: SQLite's `PRAGMA integrity_check`. PostgreSQL has no
    /// such statement; its page checksums (when the cluster has them) are checked as pages are read, and
    /// `verify` has just read every chunk back, so a damaged page has already failed the call.
    private func integrityCheck() async throws -> String {
        switch database.dialect {
        case .sqlite:
            try await database.query("PRAGMA integrity_check").compactMap { $0[0].string }.joined(separator: "; ")
        case .postgres:
            "ok"
        }
    }

    /// Deletes all but the newest `keepLast` checkpoints, always keeping every version a ref names
    /// (`current`, `best`, tags) and open candidates.
    /// - Parameter dryRun: only say what would be deleted.
    /// - Returns: the deleted versions (with `dryRun`, those that would be), newest first.
    public func prune(keepLast: Int, actor: String, dryRun: Bool = false) async throws -> [Int] {
        precondition(keepLast >= 0)
        let now = clock()
        return try await database.transaction {
            let protected = Set(try await refs().values)
            let all = try await database.query("SELECT version, status FROM checkpoints ORDER BY version DESC")
            let doomed = all.dropFirst(keepLast).compactMap { row -> Int? in
                guard let version = row[0].int, row[1].string != CheckpointStatus.candidate.rawValue,
                    !protected.contains(version)
                else { return nil }
                return version
            }
            if dryRun { return doomed }
            for version in doomed {
                try await database.query("DELETE FROM checkpoints WHERE version = ?", [.integer(Int64(version))])
            }
            if !doomed.isEmpty {
                try await insertEvent(
                    kind: .prune, actor: actor, round: nil, version: nil,
                    detail: ["deleted": doomed.map(String.init).joined(separator: ","), "keep_last": String(keepLast)],
                    at: now)
            }
            return doomed
        }
    }

    // MARK: Events

    public func recordEvent(
        kind: EventKind, actor: String, round: Int? = nil, version: Int? = nil, detail: [String: String] = [:],
        traceID: String? = nil
    ) async throws {
        let now = clock()
        try await database.transaction {
            try await insertEvent(
                kind: kind, actor: actor, round: round, version: version, detail: detail, traceID: traceID, at: now)
        }
    }

    /// Audit events, newest first.
    public func events(limit: Int = 100, kind: EventKind? = nil) async throws -> [EventRecord] {
        let filter = kind == nil ? "" : "WHERE kind = ?"
        let parameters: [SQLValue] = (kind.map { [.text($0.rawValue)] } ?? []) + [.integer(Int64(limit))]
        return try await database.query(
            "SELECT id, at, kind, actor, round, version, trace_id, detail_json FROM events \(filter) ORDER BY id DESC LIMIT ?",
            parameters
        ).compactMap { row in
            // Every kind this store writes is an `EventKind`; a row it cannot name is not shown.
            guard let kind = EventKind(rawValue: row[2].string ?? "") else { return nil }
            return EventRecord(
                id: row[0].int ?? 0, at: row[1].double ?? 0, kind: kind, actor: row[3].string ?? "",
                round: row[4].int, version: row[5].int, traceID: row[6].string,
                detail: (try? JSONDecoder().decode([String: String].self, from: Data((row[7].string ?? "{}").utf8)))
                    ?? [:])
        }
    }
}
