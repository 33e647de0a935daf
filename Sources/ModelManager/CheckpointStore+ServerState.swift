import FederationCore

/// The server optimizer's state, stored with the version it belongs to (see `ServerOptimizerState`): chunked
/// like the checkpoint itself, hashed, and deleted with it.
extension CheckpointStore {
    /// Writes `file` as the server state of `version`, inside the caller's transaction.
    func insertServerState(_ file: SafeTensorsFile, version: Int) async throws {
        try await database.query(
            "INSERT INTO server_states (version, sha256, size_bytes) VALUES (?, '', ?)",
            [.integer(Int64(version)), .integer(Int64(file.encodedByteCount))])
        let (sha, _) = try await writeChunks(.file(file), to: .serverStateChunks, version: version)
        try await database.query(
            "UPDATE server_states SET sha256 = ? WHERE version = ?",
            [.text(sha), .integer(Int64(version))])
    }

    /// The server state stored with `version`, checked against its SHA-256; nil when the version has none
    /// (FedAvg, imported, or made before strategies kept state).
    /// - Throws: `CheckpointStoreError(.integrity)` when the stored bytes no longer match their hash.
    public func serverState(version: Int) async throws -> [UInt8]? {
        guard
            let row = try await database.query(
                "SELECT sha256, size_bytes FROM server_states WHERE version = ?", [.integer(Int64(version))]
            ).first
        else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(max(row[1].int ?? 0, 0), Int(UInt32.max)))
        try await database.forEachBlob(
            "SELECT data FROM server_state_chunks WHERE version = ? ORDER BY idx", [.integer(Int64(version))]
        ) { bytes.append(contentsOf: $0) }
        let digest = Self.sha256Hex(bytes)
        guard digest == row[0].string, bytes.count == row[1].int else {
            throw CheckpointStoreError(
                .integrity,
                "the server state of version \(version) hashes to \(digest), recorded \(row[0].string ?? "")")
        }
        return bytes
    }
}
