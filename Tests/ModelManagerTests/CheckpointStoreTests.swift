import FederationCore
import Foundation
import Logging
import PostgresStore
import PostgresTestSupport
import Testing

@testable import ModelManager

/// The engines the store runs on: every test that takes a `StoreBackend` is the conformance suite, run on both.
enum StoreBackend: String, CaseIterable, Sendable {
    case sqlite
    case postgres
}

/// A store for one test: a SQLite file in a fresh temporary directory (removed afterwards), or a fresh database
/// on the test process's PostgreSQL server. `reopen` opens the same database again, as a restart would.
func withTemporaryStore<R>(
    _ backend: StoreBackend = .sqlite, chunkSize: Int = 1 << 20,
    _ body: (CheckpointStore, _ reopen: () async throws -> CheckpointStore) async throws -> R
) async throws -> R {
    let configuration: CheckpointStore.Configuration
    switch backend {
    case .sqlite:
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "rondo-store-\(UUID().uuidString)"
        ).path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        configuration = .init(path: directory + "/rondo.db", chunkSize: chunkSize)
        let store = try await CheckpointStore(configuration: configuration)
        return try await body(store) { try await CheckpointStore(configuration: configuration) }
    case .postgres:
        let url = try PostgresTestCluster.shared().makeDatabase()
        configuration = .init(chunkSize: chunkSize)
        var opened: [PostgresDatabase] = []
        func open() async throws -> CheckpointStore {
            let database = try await PostgresDatabase(
                configuration: try PostgresStoreConfiguration(url: url), logger: Logger(label: "store-test"))
            opened.append(database)
            return try await CheckpointStore(database: database, configuration: configuration)
        }
        do {
            let result = try await body(try await open(), open)
            for database in opened { await database.close() }
            return result
        } catch {
            for database in opened { await database.close() }
            throw error
        }
    }
}

func modelBytes(_ value: Float, count: Int = 10) -> [UInt8] {
    SafeTensorsFile(
        weights: ModelWeights(["w": Tensor(shape: [count], values: [Float](repeating: value, count: count))])
    )
    .encoded()
}

@Suite struct CheckpointStoreTests {
    @Test(arguments: StoreBackend.allCases) func versionsLineageAndRefs(_ backend: StoreBackend) async throws {
        try await withTemporaryStore(backend) { store, _ in
            let v1 = try await store.insert(
                round: 0, parentVersion: nil, bytes: modelBytes(0), tensorCount: 1, status: .imported, makeCurrent: true
            )
            let v2 = try await store.storeCandidate(round: 1, parentVersion: v1, bytes: modelBytes(1), tensorCount: 1)
                .version
            #expect(try await store.refVersion(.current) == v1, "a candidate does not move current")
            let best2 = try await store.commit(version: v2, metrics: CheckpointMetrics(evalMetrics: ["accuracy": 0.8]))
            let v3 = try await store.storeCandidate(round: 2, parentVersion: v2, bytes: modelBytes(2), tensorCount: 1)
                .version
            let best3 = try await store.commit(version: v3, metrics: CheckpointMetrics(evalMetrics: ["accuracy": 0.7]))
            #expect(best2 && !best3)
            #expect(try await store.refs() == ["current": v3, "best": v2])
            let records = try await store.checkpoints()
            #expect(records.map(\.version) == [v3, v2, v1])
            #expect(records.map(\.parentVersion) == [v2, v1, nil])
            #expect(records.map(\.status) == [.committed, .committed, .imported])
            #expect(records[0].sha256 == CheckpointStore.sha256Hex(modelBytes(2)))
            #expect(try await store.bytes(version: v2) == modelBytes(1))
            #expect(try await store.checkpoint(version: v2)?.metrics.evalMetrics == ["accuracy": 0.8])
        }
    }

    @Test(arguments: StoreBackend.allCases) func largeModelsAreChunkedAndReassembled(_ backend: StoreBackend)
        async throws
    {
        try await withTemporaryStore(backend, chunkSize: 1000) { store, _ in
            let bytes = modelBytes(3.5, count: 2_000)  // ~8 KB: nine chunks of 1,000 bytes
            let version = try await store.insert(
                round: 0, parentVersion: nil, bytes: bytes, tensorCount: 1, status: .imported)
            let chunks = try await store.rawQuery(
                "SELECT COUNT(*) FROM checkpoint_chunks WHERE version = ?", [.integer(Int64(version))])
            #expect(chunks.first?[0].int == (bytes.count + 999) / 1000)
            #expect(try await store.bytes(version: version) == bytes)
        }
    }

    @Test(arguments: StoreBackend.allCases) func rollbackMovesCurrentAndWritesAnAuditEvent(_ backend: StoreBackend)
        async throws
    {
        try await withTemporaryStore(backend) { store, _ in
            let v1 = try await store.insert(
                round: 0, parentVersion: nil, bytes: modelBytes(0), tensorCount: 1, status: .imported, makeCurrent: true
            )
            let v2 = try await store.storeCandidate(round: 1, parentVersion: v1, bytes: modelBytes(1), tensorCount: 1)
                .version
            try await store.commit(version: v2, metrics: CheckpointMetrics())
            let previous = try await store.rollback(to: v1, reason: "bad round", actor: "cli:test")
            #expect(previous == v2)
            #expect(try await store.refVersion(.current) == v1)
            let event = try #require(try await store.events(kind: .rollback).first)
            #expect(event.actor == "cli:test" && event.version == v1)
            #expect(event.detail == ["from_version": "\(v2)", "to_version": "\(v1)", "reason": "bad round"])
            await #expect { try await store.rollback(to: 99, reason: "x", actor: "t") } throws: {
                ($0 as? CheckpointStoreError)?.code == .notFound
            }
            let v3 = try await store.storeCandidate(round: 2, parentVersion: v1, bytes: modelBytes(2), tensorCount: 1)
                .version
            await #expect { try await store.rollback(to: v3, reason: "x", actor: "t") } throws: {
                ($0 as? CheckpointStoreError)?.code == .invalidState
            }
        }
    }

    @Test(arguments: StoreBackend.allCases) func rejectedAndAbortedTargetsNeedForceWhichIsRecorded(
        _ backend: StoreBackend
    ) async throws {
        try await withTemporaryStore(backend) { store, _ in
            let v1 = try await store.insert(
                round: 0, parentVersion: nil, bytes: modelBytes(0), tensorCount: 1, status: .imported, makeCurrent: true
            )
            let rejected = try await store.storeCandidate(
                round: 1, parentVersion: v1, bytes: modelBytes(1), tensorCount: 1
            ).version
            try await store.reject(version: rejected, metrics: CheckpointMetrics(), reason: "accuracy fell")
            let aborted = try await store.storeCandidate(
                round: 2, parentVersion: v1, bytes: modelBytes(2), tensorCount: 1
            ).version
            _ = try await store.abortCandidates(reason: "operator abort")
            for target in [rejected, aborted] {
                await #expect { try await store.rollback(to: target, reason: "x", actor: "t") } throws: {
                    ($0 as? CheckpointStoreError)?.code == .forceRequired
                }
                #expect(try await store.refVersion(.current) == v1, "a refused rollback moves nothing")
            }
            try await store.rollback(to: rejected, reason: "drill", actor: "cli:alice@host", force: true)
            #expect(try await store.refVersion(.current) == rejected)
            let event = try #require(try await store.events(kind: .rollback).first)
            #expect(event.detail["forced"] == "true" && event.detail["target_status"] == "rejected")
            try await store.rollback(to: v1, reason: "back", actor: "t", force: true)
            let plain = try #require(try await store.events(kind: .rollback).first)
            #expect(plain.detail["forced"] == nil, "force on a committed target changes nothing and notes nothing")
        }
    }

    @Test(arguments: StoreBackend.allCases) func versionReferencesNameVersionsRefsAndTags(_ backend: StoreBackend)
        async throws
    {
        try await withTemporaryStore(backend) { store, _ in
            let v1 = try await store.insert(
                round: 0, parentVersion: nil, bytes: modelBytes(0), tensorCount: 1, status: .imported, makeCurrent: true
            )
            try await store.tag(version: v1, name: "production", actor: "t")
            for text in ["v1", "V1", "1", "current", "production"] {
                #expect(try await store.resolve(text) == v1, "\(text)")
            }
            for text in ["v2", "2", "best", "staging", "", "-1", "v", "has space", String(repeating: "9", count: 40)] {
                await #expect { try await store.resolve(text) } throws: {
                    ($0 as? CheckpointStoreError)?.code == .notFound
                }
            }
            #expect(try VersionReference(parsing: "v7") == .version(7))
            #expect(try VersionReference(parsing: "best") == .ref(.best))
            #expect(try VersionReference(parsing: "prod-2.1") == .tag("prod-2.1"))
        }
    }

    @Test(arguments: StoreBackend.allCases) func tagsAndReservedNames(_ backend: StoreBackend) async throws {
        try await withTemporaryStore(backend) { store, _ in
            let v1 = try await store.insert(
                round: 0, parentVersion: nil, bytes: modelBytes(0), tensorCount: 1, status: .imported, makeCurrent: true
            )
            try await store.tag(version: v1, name: "production", actor: "t")
            #expect(try await store.refs()["production"] == v1)
            for bad in ["current", "best", "", "has space", "12", "v12", "CURRENT", "Best", ".", "..", "--help", "-1"] {
                await #expect { try await store.tag(version: v1, name: bad, actor: "t") } throws: {
                    ($0 as? CheckpointStoreError)?.code == .invalidTag
                }
            }
        }
    }

    @Test(arguments: StoreBackend.allCases) func pruneKeepsRecentReferencedAndTaggedVersions(_ backend: StoreBackend)
        async throws
    {
        try await withTemporaryStore(backend) { store, _ in
            var versions: [Int] = []
            var parent: Int?
            for round in 0..<8 {
                let version = try await store.insert(
                    round: round, parentVersion: parent, bytes: modelBytes(Float(round)), tensorCount: 1,
                    status: .imported,
                    makeCurrent: true)
                versions.append(version)
                parent = version
            }
            try await store.tag(version: versions[1], name: "production", actor: "t")
            let deleted = try await store.prune(keepLast: 3, actor: "t")
            #expect(deleted == [versions[4], versions[3], versions[2], versions[0]])
            #expect(
                Set(try await store.checkpoints().map(\.version)) == [
                    versions[7], versions[6], versions[5], versions[1],
                ])
            let orphanChunks = try await store.rawQuery(
                "SELECT COUNT(*) FROM checkpoint_chunks WHERE version NOT IN (SELECT version FROM checkpoints)")
            #expect(orphanChunks.first?[0].int == 0)
            #expect(try await store.verify().isHealthy)
        }
    }

    @Test(arguments: StoreBackend.allCases) func verifyFindsACorruptedChunkAndRollbackRefusesIt(_ backend: StoreBackend)
        async throws
    {
        try await withTemporaryStore(backend, chunkSize: 16) { store, _ in
            let v1 = try await store.insert(
                round: 0, parentVersion: nil, bytes: modelBytes(0), tensorCount: 1, status: .imported, makeCurrent: true
            )
            let v2 = try await store.insert(
                round: 1, parentVersion: v1, bytes: modelBytes(1), tensorCount: 1, status: .imported, makeCurrent: true)
            #expect(try await store.verify().isHealthy)
            // Flip bytes of one chunk behind the store's back.
            try await store.rawQuery(
                "UPDATE checkpoint_chunks SET data = ? WHERE version = ? AND idx = 2",
                [.blob([UInt8](repeating: 0xAB, count: 16)), .integer(Int64(v1))])
            let report = try await store.verify()
            #expect(!report.isHealthy)
            #expect(report.problems.count == 1 && report.problems[0].hasPrefix("version \(v1):"))
            await #expect { try await store.rollback(to: v1, reason: "x", actor: "t") } throws: {
                ($0 as? CheckpointStoreError)?.code == .integrity
            }
            await #expect { try await store.bytes(version: v1) } throws: {
                ($0 as? CheckpointStoreError)?.code == .integrity
            }
            #expect(try await store.refVersion(.current) == v2)
        }
    }

    @Test(arguments: StoreBackend.allCases) func roundsClientsAndEventsPersistAcrossReopen(_ backend: StoreBackend)
        async throws
    {
        try await withTemporaryStore(backend) { store, reopen in
            let v1 = try await store.insert(
                round: 0, parentVersion: nil, bytes: modelBytes(0), tensorCount: 1, status: .imported, makeCurrent: true
            )
            try await store.roundStarted(round: 1, baseVersion: v1, selected: 3)
            try await store.roundStarted(round: 2, baseVersion: v1, selected: 3)
            try await store.roundFinished(
                RoundRecord(
                    round: 1, status: .failed, startedAt: 1, baseVersion: v1, selected: 3, answered: 1, dropped: 2,
                    reason: "quorum_not_reached"))
            try await store.clientRegistered(id: "c-1", name: "site", tokenSHA256: "abc")
            let reopened = try await reopen()
            #expect(try await reopened.abortRunningRounds(reason: "coordinator restart") == [2])
            #expect(try await reopened.round(2)?.status == .aborted)
            #expect(try await reopened.round(1)?.reason == "quorum_not_reached")
            #expect(try await reopened.lastRoundNumber() == 2)
            #expect(try await reopened.clients().map(\.clientID) == ["c-1"])
            #expect(try await reopened.events(kind: .roundAborted).first?.round == 2)
            // A coordinator that died after committing round 3's model but before writing the round's row: the
            // round is recorded as committed with that version, not aborted.
            try await reopened.roundStarted(round: 3, baseVersion: v1, selected: 3)
            let (candidate, _) = try await reopened.storeCandidate(
                round: 3, parentVersion: v1, bytes: modelBytes(3), tensorCount: 1)
            try await reopened.commit(version: candidate, metrics: CheckpointMetrics())
            #expect(try await reopened.abortRunningRounds(reason: "leader change").isEmpty)
            #expect(try await reopened.round(3)?.status == .committed)
            #expect(try await reopened.round(3)?.resultVersion == candidate)
            #expect(try await reopened.events(kind: .roundAborted).count == 1, "no aborted event for round 3")
            let migrations = try await reopened.rawQuery("SELECT version FROM schema_migrations")
            #expect(migrations.count == StoreMigrations.all(store.dialect).count)
        }
    }
}
