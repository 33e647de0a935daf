import Foundation

/// The round history: a row per round, written when it starts and again when it ends.
extension CheckpointStore {
    /// Writes a round's row as `running` (replacing any earlier row with its number).
    public func roundStarted(round: Int, baseVersion: Int, selected: Int) async throws {
        let now = clock()
        try await database.transaction {
            try await database.query("DELETE FROM rounds WHERE round = ?", [.integer(Int64(round))])
            try await database.query(
                "INSERT INTO rounds (round, status, started_at, base_version, selected) VALUES (?, 'running', ?, ?, ?)",
                [.integer(Int64(round)), .real(now), .integer(Int64(baseVersion)), .integer(Int64(selected))])
        }
    }

    /// Writes a round's final row (replacing its `running` row).
    public func roundFinished(_ record: RoundRecord) async throws {
        let finishedAt = record.finishedAt ?? clock()
        try await database.transaction {
            try await database.query("DELETE FROM rounds WHERE round = ?", [.integer(Int64(record.round))])
            try await insertRound(record, finishedAt: finishedAt)
        }
    }

    private func insertRound(_ record: RoundRecord, finishedAt: Double) async throws {
        try await database.query(
            """
            INSERT INTO rounds (round, status, started_at, finished_at, base_version, result_version,
                selected, answered, dropped, rejected, reason, detail, eval_loss, eval_metrics_json)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .integer(Int64(record.round)), .text(record.status.rawValue), .real(record.startedAt),
                .real(finishedAt), .integer(Int64(record.baseVersion)),
                record.resultVersion.map { .integer(Int64($0)) } ?? .null, .integer(Int64(record.selected)),
                .integer(Int64(record.answered)), .integer(Int64(record.dropped)), .integer(Int64(record.rejected)),
                record.reason.map { .text($0) } ?? .null, record.detail.map { .text($0) } ?? .null,
                record.evalLoss.map { .real($0) } ?? .null, .text(try Self.json(record.evalMetrics)),
            ])
    }

    /// Marks rounds still `running` (the coordinator died during them) as aborted, with an event each. A
    /// round whose candidate was committed before the coordinator died (it died between committing the model
    /// and writing the round's row) is recorded as committed with that version instead: its model is `current`
    /// and the next round trains from it.
    /// - Returns: the rounds marked aborted.
    public func abortRunningRounds(reason: String) async throws -> [Int] {
        let now = clock()
        return try await database.transaction {
            let running = try await database.query("SELECT round FROM rounds WHERE status = 'running'").compactMap {
                $0[0].int
            }
            var aborted: [Int] = []
            for round in running {
                if let version = try await database.query(
                    "SELECT version FROM checkpoints WHERE round = ? AND status = 'committed' ORDER BY version DESC",
                    [.integer(Int64(round))]
                ).first?[0].int {
                    try await database.query(
                        """
                        UPDATE rounds SET status = 'committed', finished_at = ?, result_version = ?, detail = ?
                        WHERE round = ?
                        """,
                        [
                            .real(now), .integer(Int64(version)),
                            .text("committed as v\(version); the round's record was completed after: \(reason)"),
                            .integer(Int64(round)),
                        ])
                    continue
                }
                try await database.query(
                    "UPDATE rounds SET status = 'aborted', finished_at = ?, reason = 'aborted', detail = ? WHERE round = ?",
                    [.real(now), .text(reason), .integer(Int64(round))])
                try await insertEvent(
                    kind: .roundAborted, actor: "coordinator", round: round, version: nil, detail: ["reason": reason],
                    at: now)
                aborted.append(round)
            }
            return aborted
        }
    }

    /// The highest round number ever started (0 for a new store); numbering continues after it.
    public func lastRoundNumber() async throws -> Int {
        let fromRounds = try await database.query("SELECT MAX(round) FROM rounds").first?[0].int ?? 0
        let fromCheckpoints = try await database.query("SELECT MAX(round) FROM checkpoints").first?[0].int ?? 0
        return max(fromRounds, fromCheckpoints)
    }

    /// Rounds, newest first.
    public func rounds(limit: Int = 100) async throws -> [RoundRecord] {
        try await database.query("\(Self.roundColumns) ORDER BY round DESC LIMIT ?", [.integer(Int64(limit))]).map(
            Self.round)
    }

    public func round(_ number: Int) async throws -> RoundRecord? {
        try await database.query("\(Self.roundColumns) WHERE round = ?", [.integer(Int64(number))]).first.map(
            Self.round)
    }
}
