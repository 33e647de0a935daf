import FederationCore
import Foundation
import Testing

@testable import ModelManager

/// A store in a fresh temporary directory, removed afterwards.
func withTemporaryStore<R>(
    chunkSize: Int = 1 << 20, _ body: (CheckpointStore, String) async throws -> R
) async throws -> R {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rondo-store-\(UUID().uuidString)")
        .path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let store = try CheckpointStore(configuration: .init(path: directory + "/rondo.db", chunkSize: chunkSize))
    return try await body(store, directory)
}

func modelBytes(_ value: Float, count: Int = 10) -> [UInt8] {
    SafeTensorsFile(
        weights: ModelWeights(["w": Tensor(shape: [count], values: [Float](repeating: value, count: count))])
    )
    .encoded()
}

@Suite struct CheckpointStoreTests {
    @Test func versionsLineageAndRefs() async throws {
        try await withTemporaryStore { store, _ in
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

    @Test func largeModelsAreChunkedAndReassembled() async throws {
        try await withTemporaryStore(chunkSize: 1000) { store, _ in
            let bytes = modelBytes(3.5, count: 2_000)  // ~8 KB: nine chunks of 1,000 bytes
            let version = try await store.insert(
                round: 0, parentVersion: nil, bytes: bytes, tensorCount: 1, status: .imported)
            let chunks = try await store.connection.query(
                "SELECT COUNT(*) FROM checkpoint_chunks WHERE version = ?", [.integer(Int64(version))])
            #expect(chunks.first?[0].int == (bytes.count + 999) / 1000)
            #expect(try await store.bytes(version: version) == bytes)
        }
    }

    @Test func rollbackMovesCurrentAndWritesAnAuditEvent() async throws {
        try await withTemporaryStore { store, _ in
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

    @Test func rejectedAndAbortedTargetsNeedForceWhichIsRecorded() async throws {
        try await withTemporaryStore { store, _ in
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

    @Test func versionReferencesNameVersionsRefsAndTags() async throws {
        try await withTemporaryStore { store, _ in
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

    @Test func tagsAndReservedNames() async throws {
        try await withTemporaryStore { store, _ in
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

    @Test func pruneKeepsRecentReferencedAndTaggedVersions() async throws {
        try await withTemporaryStore { store, _ in
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
            let orphanChunks = try await store.connection.query(
                "SELECT COUNT(*) FROM checkpoint_chunks WHERE version NOT IN (SELECT version FROM checkpoints)")
            #expect(orphanChunks.first?[0].int == 0)
            #expect(try await store.verify().isHealthy)
        }
    }

    @Test func verifyFindsACorruptedChunkAndRollbackRefusesIt() async throws {
        try await withTemporaryStore(chunkSize: 16) { store, _ in
            let v1 = try await store.insert(
                round: 0, parentVersion: nil, bytes: modelBytes(0), tensorCount: 1, status: .imported, makeCurrent: true
            )
            let v2 = try await store.insert(
                round: 1, parentVersion: v1, bytes: modelBytes(1), tensorCount: 1, status: .imported, makeCurrent: true)
            #expect(try await store.verify().isHealthy)
            // Flip bytes of one chunk behind the store's back.
            try await store.connection.query(
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

    @Test func roundsClientsAndEventsPersistAcrossReopen() async throws {
        try await withTemporaryStore { store, directory in
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
            let reopened = try CheckpointStore(configuration: .init(path: directory + "/rondo.db"))
            #expect(try await reopened.abortRunningRounds(reason: "coordinator restart") == [2])
            #expect(try await reopened.round(2)?.status == .aborted)
            #expect(try await reopened.round(1)?.reason == "quorum_not_reached")
            #expect(try await reopened.lastRoundNumber() == 2)
            #expect(try await reopened.clients().map(\.clientID) == ["c-1"])
            #expect(try await reopened.events(kind: .roundAborted).first?.round == 2)
            let migrations = try await reopened.connection.query("SELECT version FROM schema_migrations")
            #expect(migrations.count == StoreMigrations.all.count)
        }
    }
}
