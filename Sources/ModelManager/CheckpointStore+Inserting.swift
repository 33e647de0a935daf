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
    ) throws -> Int {
        try insert(
            round: round, parentVersion: parentVersion, byteCount: bytes.count, tensorCount: tensorCount,
            status: status, metrics: metrics, makeCurrent: makeCurrent, actor: actor
        ) { sink in
            try bytes.withUnsafeBytes { raw in
                var offset = 0
                repeat {
                    let end = min(offset + configuration.chunkSize, raw.count)
                    try sink(UnsafeRawBufferPointer(rebasing: raw[offset..<end]))
                    offset = end
                } while offset < raw.count
            }
        }.version
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
    ) throws -> (version: Int, sha256: String) {
        try insert(
            round: round, parentVersion: parentVersion, byteCount: file.encodedByteCount,
            tensorCount: file.weights.tensors.count, status: .candidate, strategy: strategy,
            write: { sink in try file.forEachEncodedChunk(chunkSize: configuration.chunkSize, sink) },
            alongside: { version in
                if let serverState { try insertServerState(serverState, version: version) }
                if let privacySpend { try insertPrivacySpend(privacySpend, version: version) }
            })
    }

    /// Stores a model as the next version with `status`, writing its encoding chunk by chunk from the tensors.
    /// - Returns: the new version and its SHA-256.
    public func insert(
        round: Int, parentVersion: Int?, file: SafeTensorsFile, status: CheckpointStatus, makeCurrent: Bool = false,
        actor: String = "coordinator"
    ) throws -> (version: Int, sha256: String) {
        try insert(
            round: round, parentVersion: parentVersion, byteCount: file.encodedByteCount,
            tensorCount: file.weights.tensors.count, status: status, makeCurrent: makeCurrent, actor: actor
        ) { sink in
            try file.forEachEncodedChunk(chunkSize: configuration.chunkSize, sink)
        }
    }

    /// Writes the row, then the chunks `write` hands over (hashing them on the way), then the SHA-256 and the
    /// refs: all in one transaction, so a failure anywhere leaves no trace.
    private func insert(
        round: Int, parentVersion: Int?, byteCount: Int, tensorCount: Int, status: CheckpointStatus,
        metrics: CheckpointMetrics = CheckpointMetrics(), makeCurrent: Bool = false, actor: String = "coordinator",
        strategy: StrategyRecord? = nil,
        write: (_ sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Void,
        alongside: (_ version: Int) throws -> Void = { _ in }
    ) throws -> (version: Int, sha256: String) {
        let now = clock()
        return try connection.transaction {
            try connection.query(
                """
                INSERT INTO checkpoints (round, parent_version, created_at, sha256, size_bytes, tensor_count, status,
                    metrics_json, strategy_json)
                VALUES (?, ?, ?, '', ?, ?, ?, ?, ?)
                """,
                [
                    .integer(Int64(round)), parentVersion.map { .integer(Int64($0)) } ?? .null, .real(now),
                    .integer(Int64(byteCount)), .integer(Int64(tensorCount)), .text(status.rawValue),
                    .text(try Self.json(metrics)), try strategy.map { .text(try Self.json($0)) } ?? .null,
                ])
            let version = connection.lastInsertRowID
            var hasher = SHA256()
            var index = 0
            var written = 0
            try write { chunk in
                hasher.update(bufferPointer: chunk)
                try connection.insertChunk(version: version, index: index, data: chunk)
                index += 1
                written += chunk.count
            }
            guard written == byteCount else {
                throw CheckpointStoreError(
                    .integrity, "wrote \(written) bytes for version \(version), expected \(byteCount)")
            }
            let sha = hasher.finalize().hexString
            try connection.query(
                "UPDATE checkpoints SET sha256 = ? WHERE version = ?", [.text(sha), .integer(Int64(version))])
            try alongside(version)
            if makeCurrent {
                let previous = try refVersion(.current)
                try setRef(CheckpointRef.current.rawValue, version, at: now)
                try insertEvent(
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
    ) throws -> (version: Int, sha256: String) {
        let version = try insert(
            round: round, parentVersion: parentVersion, bytes: bytes, tensorCount: tensorCount, status: .candidate)
        return (version, try requireCheckpoint(version).sha256)
    }
}
