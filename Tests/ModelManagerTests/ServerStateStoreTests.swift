import FederationCore
import Testing

@testable import ModelManager

/// The server optimizer's state is stored with its candidate, in the same transaction, checked by its hash and
/// deleted with its version.
@Suite struct ServerStateStoreTests {
    static let state = SafeTensorsFile(
        weights: ModelWeights(["second_moment/w": Tensor(shape: [3], values: [0.5, 0.25, 0.125])]),
        metadata: ["format": "rondo-server-state-1", "strategy": "fedadagrad", "steps": "4"])

    @Test(arguments: StoreBackend.allCases) func aCandidateKeepsItsStrategyAndStateAndLosesThemWithItsVersion(
        _ backend: StoreBackend
    ) async throws {
        try await withTemporaryStore(backend, chunkSize: 16) { store, _ async throws in
            let base = try await store.insert(
                round: 0, parentVersion: nil, bytes: modelBytes(0), tensorCount: 1, status: .imported,
                makeCurrent: true)
            let record = StrategyRecord(name: "fedadagrad", parameters: ["eta": 0.1, "tau": 1e-9])
            let (version, _) = try await store.storeCandidate(
                round: 1, parentVersion: base,
                file: SafeTensorsFile(weights: ModelWeights(["w": Tensor(shape: [3], values: [1, 2, 3])])),
                strategy: record, serverState: Self.state)
            #expect(try await store.checkpoint(version: version)?.strategy == record)
            #expect(try await store.checkpoint(version: base)?.strategy == nil, "an imported version has none")
            let bytes = try #require(try await store.serverState(version: version))
            #expect(try SafeTensorsFile.decode(bytes) == Self.state, "read back whole from 16-byte chunks")
            #expect(try await store.serverState(version: base) == nil)

            try await store.rawQuery(
                "UPDATE server_state_chunks SET data = ? WHERE version = ? AND idx = 0",
                [.blob([0]), .integer(Int64(version))])
            await #expect(throws: CheckpointStoreError.self) { try await store.serverState(version: version) }

            try await store.rawQuery("DELETE FROM checkpoints WHERE version = ?", [.integer(Int64(version))])
            let left = try await store.rawQuery("SELECT COUNT(*) FROM server_state_chunks").first?[0].int
            #expect(left == 0, "the state goes with its version")
        }
    }

    @Test func aFailedStateWriteStoresNoCandidate() async throws {
        try await withTemporaryStore { store, _ async throws in
            let base = try await store.insert(
                round: 0, parentVersion: nil, bytes: modelBytes(0), tensorCount: 1, status: .imported,
                makeCurrent: true)
            // A state row for the next version already exists: the state's insert fails inside the transaction.
            _ = try await store.withConnection {
                try $0.query("PRAGMA foreign_keys = OFF")
                try $0.query(
                    "INSERT INTO server_states (version, sha256, size_bytes) VALUES (?, '', 0)",
                    [
                        .integer(Int64(base + 1))
                    ])
                try $0.query("PRAGMA foreign_keys = ON")
            }
            await #expect(throws: SQLiteError.self) {
                _ = try await store.storeCandidate(
                    round: 1, parentVersion: base,
                    file: SafeTensorsFile(weights: ModelWeights(["w": Tensor(shape: [1], values: [1])])),
                    strategy: StrategyRecord(name: "fedadagrad", parameters: [:]), serverState: Self.state)
            }
            #expect(try await store.checkpoints().map(\.version) == [base], "all or nothing")
        }
    }
}
