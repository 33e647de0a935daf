import Crypto
import FederationCore

/// New versions: a byte array, or a model written chunk by chunk from its tensors (no second copy in memory).
extension CheckpointStore {

    /// Stores new bytes as the next version with `status`. Chunks and row land in one transaction.
    /// - Returns: the new version number.
    @discardableResult
    public func insert(
        round: Int, parentVersion: Int?, bytes: [UInt8], tensorCount: Int, status: CheckpointStatus,
        metrics: CheckpointMetrics = CheckpointMetrics(), makeCurrent: Bool = false, actor: String = "coordinator"
    ) async throws -> Int {
        try await insert(
            round: round, parentVersion: parentVersion, byteCount: bytes.count, tensorCount: tensorCount,
            status: status, metrics: metrics, makeCurrent: makeCurrent, actor: actor, source: .bytes(bytes)
        ).version
    }

    /// Stores an aggregated model that is not current yet, writing its encoding chunk by chunk from the
    /// tensors: no second copy of the model is built in memory.
    /// - Returns: the new version and the SHA-256 it was stored under.
    /// - Parameters:
    ///   - strategy: the aggregation strategy that produced it, recorded with the version.
    ///   - serverState: the strategy's state after this step, stored with the version in the same transaction
    ///     (a restart or a rollback to the version resumes from it).
    ///   - privacySpend: what the round spent under differential privacy, added to the privacy ledger in the
    ///     same transaction (so a noised model is never stored unaccounted for).
    public func storeCandidate(
        round: Int, parentVersion: Int?, file: SafeTensorsFile, strategy: StrategyRecord? = nil,
        serverState: SafeTensorsFile? = nil, privacySpend: PrivacySpend? = nil
    ) async throws -> (version: Int, sha256: String) {
        try await insert(
            round: round, parentVersion: parentVersion, byteCount: file.encodedByteCount,
            tensorCount: file.weights.tensors.count, status: .candidate, strategy: strategy,
            source: .file(file),
            alongside: { version in
                if let serverState { try await insertServerState(serverState, version: version) }
                if let privacySpend { try await insertPrivacySpend(privacySpend, version: version) }
            })
    }

    /// Stores a model as the next version with `status`, writing its encoding chunk by chunk from the tensors.
    /// - Returns: the new version and its SHA-256.
    public func insert(
        round: Int, parentVersion: Int?, file: SafeTensorsFile, status: CheckpointStatus, makeCurrent: Bool = false,
        actor: String = "coordinator"
    ) async throws -> (version: Int, sha256: String) {
        try await insert(
            round: round, parentVersion: parentVersion, byteCount: file.encodedByteCount,
            tensorCount: file.weights.tensors.count, status: status, makeCurrent: makeCurrent, actor: actor,
            source: .file(file))
    }

    /// Writes the row, then the chunks of `source` (hashing them on the way), then the SHA-256 and the
    /// refs: all in one transaction, so a failure anywhere leaves no trace.
    private func insert(
        round: Int, parentVersion: Int?, byteCount: Int, tensorCount: Int, status: CheckpointStatus,
        metrics: CheckpointMetrics = CheckpointMetrics(), makeCurrent: Bool = false, actor: String = "coordinator",
        strategy: StrategyRecord? = nil,
        source: ChunkSource,
        alongside: (_ version: Int) async throws -> Void = { _ in }
    ) async throws -> (version: Int, sha256: String) {
        let now = clock()
        let metricsJSON = try Self.json(metrics)
        let strategyJSON: SQLValue = try strategy.map { .text(try Self.json($0)) } ?? .null
        return try await database.transaction {
            let inserted = try await database.query(
                """
                INSERT INTO checkpoints (round, parent_version, created_at, sha256, size_bytes, tensor_count, status,
                    metrics_json, strategy_json)
                VALUES (?, ?, ?, '', ?, ?, ?, ?, ?) RETURNING version
                """,
                [
                    .integer(Int64(round)), parentVersion.map { .integer(Int64($0)) } ?? .null, .real(now),
                    .integer(Int64(byteCount)), .integer(Int64(tensorCount)), .text(status.rawValue),
                    .text(metricsJSON), strategyJSON,
                ])
            guard let version = inserted.first?[0].int else {
                throw CheckpointStoreError(.database, "inserting a checkpoint returned no version")
            }
            let (sha, written) = try await writeChunks(source, to: .checkpointChunks, version: version)
            guard written == byteCount else {
                throw CheckpointStoreError(
                    .integrity, "wrote \(written) bytes for version \(version), expected \(byteCount)")
            }
            try await database.query(
                "UPDATE checkpoints SET sha256 = ? WHERE version = ?", [.text(sha), .integer(Int64(version))])
            try await alongside(version)
            if makeCurrent {
                let previous = try await refVersion(.current)
                try await setRef(CheckpointRef.current.rawValue, version, at: now)
                try await insertEvent(
                    kind: status == .imported ? .import : .commit, actor: actor, round: round, version: version,
                    detail: ["from_version": previous.map(String.init) ?? "none"], at: now)
            }
            return (version, sha)
        }
    }

    /// Stores an aggregated model that is not current yet.
    /// - Returns: the new version and the SHA-256 it was stored under.
    public func storeCandidate(
        round: Int, parentVersion: Int?, bytes: [UInt8], tensorCount: Int
    ) async throws -> (version: Int, sha256: String) {
        let version = try await insert(
            round: round, parentVersion: parentVersion, bytes: bytes, tensorCount: tensorCount, status: .candidate)
        return (version, try await requireCheckpoint(version).sha256)
    }
}
