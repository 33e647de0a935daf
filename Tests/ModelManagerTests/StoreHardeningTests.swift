import FederationCore
import Foundation
import Testing

@testable import ModelManager

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct StoreHardeningTests {
    @Test(arguments: StoreBackend.allCases) func rollbackRehashesItsTargetInsideTheTransaction(_ backend: StoreBackend)
        async throws
    {
        try await withTemporaryStore(backend) { store, _ in
            let v1 = try await store.insert(
                round: 0, parentVersion: nil, bytes: modelBytes(1), tensorCount: 1, status: .imported,
                makeCurrent: true)
            let v2 = try await store.insert(
                round: 1, parentVersion: v1, bytes: modelBytes(2), tensorCount: 1, status: .imported,
                makeCurrent: true)
            // Damaged after the last verify: verify has not flagged it.
            try await store.rawQuery(
                "UPDATE checkpoint_chunks SET data = ? WHERE version = ?", [.blob(modelBytes(9)), .integer(Int64(v1))])
            await #expect { try await store.rollback(to: v1, reason: "drill", actor: "t") } throws: {
                ($0 as? CheckpointStoreError)?.code == .integrity
            }
            #expect(try await store.refVersion(.current) == v2)
            #expect(try await store.events(kind: .rollback).isEmpty, "no audit event for a refused rollback")
        }
    }

    /// Tag names are `[A-Za-z0-9._-]{1,64}` in bytes: no look-alike letters from other scripts, no combining
    /// marks that make one "character" kilobytes long.
    @Test(arguments: [
        "productіon", "½", "прод", "a" + String(repeating: "\u{301}", count: 1000), String(repeating: "a", count: 65),
        "",
        "a b", "current", "best",
    ])
    func hostileTagNamesAreRefused(name: String) async throws {
        try await withTemporaryStore { store, _ in
            let version = try await store.insert(
                round: 0, parentVersion: nil, bytes: modelBytes(1), tensorCount: 1, status: .imported,
                makeCurrent: true)
            await #expect { try await store.tag(version: version, name: name, actor: "t") } throws: {
                ($0 as? CheckpointStoreError)?.code == .invalidTag
            }
            try await store.tag(version: version, name: "release-1.2_rc", actor: "t")
            #expect(try await store.refs().keys.sorted() == ["current", "release-1.2_rc"])
        }
    }

    @Test(arguments: StoreBackend.allCases) func departedClientRowsAreBounded(_ backend: StoreBackend) async throws {
        try await withTemporaryStore(backend) { store, _ in
            try await store.clientRegistered(id: "live", name: "live", tokenSHA256: "h-live")
            try await store.clientRegistered(id: "revoked", name: "revoked", tokenSHA256: "h-revoked")
            _ = try await store.revokeClient(id: "revoked", reason: "x", actor: "t")
            try await store.clientLeft(id: "revoked")
            let churn = CheckpointStore.departedClientsKept + 25
            for index in 0..<churn {
                try await store.clientRegistered(id: "c\(index)", name: "churn", tokenSHA256: "h\(index)")
                try await store.clientLeft(id: "c\(index)")
            }
            let clients = try await store.clients()
            let ids = Set(clients.map(\.clientID))
            #expect(ids.contains("live") && ids.contains("revoked"), "live and revoked clients are kept")
            #expect(clients.count == CheckpointStore.departedClientsKept + 2)
            #expect(ids.contains("c\(churn - 1)") && !ids.contains("c0"), "the newest departures are kept")
        }
    }

    @Test func theDatabaseIsNotOpenedThroughASymlink() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rondo-link-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        symlink(directory + "/target.db", directory + "/rondo.db")
        await #expect(throws: (any Error).self) {
            try await CheckpointStore(configuration: .init(path: directory + "/rondo.db"))
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/target.db"))
    }
}
