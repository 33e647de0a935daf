import FederationCore
import Testing

@testable import ModelManager

/// The privacy ledger: written with its candidate in one transaction, once per round, and kept when versions go.
@Suite struct PrivacyLedgerStoreTests {
    static func spend(round: Int) -> PrivacySpend {
        PrivacySpend(
            round: round, samplingRate: 0.25, noiseMultiplier: 1.1, clipNorm: 0.5 * Double(round),
            nextClipNorm: 0.5 * Double(round + 1), results: 8, unclipped: 3)
    }

    static let file = SafeTensorsFile(weights: ModelWeights(["w": Tensor(shape: [3], values: [1, 2, 3])]))

    @Test(arguments: StoreBackend.allCases) func spendsAreKeptInRoundOrderAndOutliveTheirVersions(
        _ backend: StoreBackend
    ) async throws {
        try await withTemporaryStore(backend) { store, _ async throws in
            let base = try await store.insert(
                round: 0, parentVersion: nil, bytes: modelBytes(0), tensorCount: 1, status: .imported,
                makeCurrent: true)
            let (second, _) = try await store.storeCandidate(
                round: 2, parentVersion: base, file: Self.file, privacySpend: Self.spend(round: 2))
            let (first, _) = try await store.storeCandidate(
                round: 1, parentVersion: base, file: Self.file, privacySpend: Self.spend(round: 1))
            let (third, _) = try await store.storeCandidate(round: 3, parentVersion: base, file: Self.file)
            #expect(try await store.privacyLedger() == [Self.spend(round: 1), Self.spend(round: 2)])

            // The store's own retention deletes the older versions: their spend stays.
            for version in [second, first, third] {
                try await store.commit(version: version, metrics: CheckpointMetrics())
            }
            let pruned = try await store.prune(keepLast: 1, actor: "test")
            #expect(Set(pruned).isSuperset(of: [second, first]), "\(pruned)")
            #expect(try await store.privacyLedger() == [Self.spend(round: 1), Self.spend(round: 2)])
        }
    }

    @Test(arguments: StoreBackend.allCases) func aRoundSpentTwiceStoresNothing(_ backend: StoreBackend) async throws {
        try await withTemporaryStore(backend) { store, _ async throws in
            let base = try await store.insert(
                round: 0, parentVersion: nil, bytes: modelBytes(0), tensorCount: 1, status: .imported,
                makeCurrent: true)
            _ = try await store.storeCandidate(
                round: 1, parentVersion: base, file: Self.file, privacySpend: Self.spend(round: 1))
            let before = try await store.checkpoints().count
            await #expect(throws: (any Error).self) {
                try await store.storeCandidate(
                    round: 1, parentVersion: base, file: Self.file, privacySpend: Self.spend(round: 1))
            }
            #expect(try await store.checkpoints().count == before, "the candidate went with the failed ledger row")
            #expect(try await store.privacyLedger() == [Self.spend(round: 1)])
        }
    }

    @Test(arguments: StoreBackend.allCases) func coverageCountsCommittedRoundsMissingFromTheLedger(
        _ backend: StoreBackend
    ) async throws {
        try await withTemporaryStore(backend) { store, _ async throws in
            let base = try await store.insert(
                round: 0, parentVersion: nil, bytes: modelBytes(0), tensorCount: 1, status: .imported,
                makeCurrent: true)
            #expect(try await store.privacyCoverage() == (0, 0))
            _ = try await store.storeCandidate(
                round: 1, parentVersion: base, file: Self.file, privacySpend: Self.spend(round: 1))
            // Round 1 private and committed, 2 committed without privacy, 3 failed (released nothing).
            for (round, status) in [(1, RoundStatus.committed), (2, .committed), (3, .failed)] {
                try await store.roundFinished(
                    RoundRecord(round: round, status: status, startedAt: 0, baseVersion: base, selected: 2))
            }
            #expect(try await store.privacyCoverage() == (1, 1))
        }
    }
}
