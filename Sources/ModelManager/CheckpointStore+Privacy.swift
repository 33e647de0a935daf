import FederationCore

/// The privacy ledger: one row per differentially private round whose noised aggregate was stored. Rows are
/// never deleted (not by pruning, not by a rollback), so the accountant rebuilt from them at start-up counts
/// every release.
extension CheckpointStore {
    /// Adds a round's spend, inside the caller's transaction.
    /// - Throws: when the round already has a row (a round's aggregate is stored once).
    func insertPrivacySpend(_ spend: PrivacySpend, version: Int) async throws {
        try await database.query(
            """
            INSERT INTO privacy_ledger (round, version, sampling_rate, noise_multiplier, clip_norm, next_clip_norm,
                results, unclipped, recorded_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .integer(Int64(spend.round)), .integer(Int64(version)), .real(spend.samplingRate),
                .real(spend.noiseMultiplier), .real(spend.clipNorm), .real(spend.nextClipNorm),
                .integer(Int64(spend.results)), .integer(Int64(spend.unclipped)), .real(clock()),
            ])
    }

    /// Every round in the ledger, in round order.
    public func privacyLedger() async throws -> [PrivacySpend] {
        try await database.query(
            """
            SELECT round, sampling_rate, noise_multiplier, clip_norm, next_clip_norm, results, unclipped
            FROM privacy_ledger ORDER BY round
            """
        ).map { row in
            PrivacySpend(
                round: row[0].int ?? 0, samplingRate: row[1].double ?? 1, noiseMultiplier: row[2].double ?? 0,
                clipNorm: row[3].double ?? 0, nextClipNorm: row[4].double ?? 0, results: row[5].int ?? 0,
                unclipped: row[6].int ?? 0)
        }
    }

    /// How much of the federation's history the ledger covers, counted by the database (start-up reads no
    /// rows): rounds in the ledger, and committed rounds missing from it (models released without noise).
    public func privacyCoverage() async throws -> (privateRounds: Int, committedWithoutPrivacy: Int) {
        let row = try await database.query(
            """
            SELECT (SELECT COUNT(*) FROM privacy_ledger),
                (SELECT COUNT(*) FROM rounds WHERE status = 'committed'
                    AND round NOT IN (SELECT round FROM privacy_ledger))
            """
        ).first
        return (row?[0].int ?? 0, row?[1].int ?? 0)
    }
}
