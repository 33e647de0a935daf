import FederationCore
import Foundation
import Logging
import PostgresStore
import PostgresTestSupport
import Testing

@testable import ModelManager

/// The leader lease and its fence, on a real PostgreSQL: two coordinators' leases and stores on one database.
@Suite struct LeaderLeaseTests {
    struct Replica {
        let lease: LeaderLease
        let store: CheckpointStore
    }

    static func replica(_ name: String, url: String) async throws -> Replica {
        let configuration = try PostgresStoreConfiguration(url: url)
        let logger = Logger(label: "lease-\(name)")
        let lease = LeaderLease(
            database: try await PostgresDatabase(configuration: configuration, logger: logger), holder: name,
            address: "http://\(name):8470", ttl: .seconds(30), logger: logger)
        let store = try await CheckpointStore.open(
            postgres: configuration, configuration: .init(), fence: lease, logger: logger)
        return Replica(lease: lease, store: store)
    }

    static func isFenced(_ error: any Error) -> Bool { (error as? CheckpointStoreError)?.code == .fenced }

    @Test func aCoordinatorThatLostTheLeaseCommitsNothing() async throws {
        let url = try PostgresTestCluster.shared().makeDatabase()
        let a = try await Self.replica("a", url: url)
        let b = try await Self.replica("b", url: url)

        #expect(try await a.lease.tryAcquire() == 1)
        #expect(try await b.lease.tryAcquire() == nil, "a live lease is not taken")
        #expect(try await b.lease.current()?.address == "http://a:8470")
        let v1 = try await a.store.insert(
            round: 0, parentVersion: nil, bytes: modelBytes(1), tensorCount: 1, status: .imported, makeCurrent: true)
        await #expect(performing: { try await b.store.recordEvent(kind: .tag, actor: "b") }, throws: Self.isFenced)

        // A is paused past its lease (here: the lease is made to expire), and B takes over with the next epoch.
        try await a.store.rawQuery("UPDATE leader_lease SET expires_at = 0")
        #expect(try await b.lease.tryAcquire() == 2)

        // A wakes up and commits what it had: the fence refuses, and the store is as B left it.
        let (candidate, _) = try await b.store.storeCandidate(
            round: 1, parentVersion: v1, bytes: modelBytes(2), tensorCount: 1)
        let eventsBefore = try await b.store.events().count
        await #expect(
            performing: {
                try await a.store.insert(
                    round: 1, parentVersion: v1, bytes: modelBytes(3), tensorCount: 1, status: .imported,
                    makeCurrent: true)
            }, throws: Self.isFenced)
        await #expect(
            performing: { try await a.store.commit(version: candidate, metrics: CheckpointMetrics()) },
            throws: Self.isFenced)
        await #expect(
            performing: { try await a.store.roundStarted(round: 2, baseVersion: v1, selected: 3) },
            throws: Self.isFenced)
        #expect(try await b.store.checkpoint(version: candidate)?.status == .candidate, "A's commit rolled back")
        #expect(try await b.store.refVersion(.current) == v1)
        #expect(try await b.store.checkpoints().count == 2)
        #expect(try await b.store.events().count == eventsBefore)
        #expect(try await b.store.round(2) == nil)
        #expect(try await a.lease.renew() == false, "A learns it lost the lease")
        #expect(a.lease.epoch == nil)

        // B leads: it commits and renews.
        #expect(try await b.store.commit(version: candidate, metrics: CheckpointMetrics()) == false)
        #expect(try await b.store.refVersion(.current) == candidate)
        #expect(try await b.lease.renew())
        #expect(try await a.lease.current()?.holder == "b")

        // A clean stop hands the lease over without waiting for it to expire.
        await b.lease.release()
        #expect(try await a.lease.tryAcquire() == 3)
        await #expect(performing: { try await b.store.recordEvent(kind: .tag, actor: "b") }, throws: Self.isFenced)
        try await a.store.recordEvent(kind: .tag, actor: "a")
    }

    /// A lease that ran out is not renewed even when no standby took it: a leader paused past its TTL steps
    /// down rather than racing a standby for the row lock when it resumes.
    @Test func anExpiredLeaseIsNotRenewed() async throws {
        let url = try PostgresTestCluster.shared().makeDatabase()
        let a = try await Self.replica("a", url: url)
        #expect(try await a.lease.tryAcquire() == 1)
        #expect(try await a.lease.renew())
        try await a.store.rawQuery("UPDATE leader_lease SET expires_at = 0")
        #expect(try await a.lease.renew() == false)
        #expect(a.lease.epoch == nil)
        await #expect(performing: { try await a.store.recordEvent(kind: .tag, actor: "a") }, throws: Self.isFenced)
        #expect(try await a.lease.tryAcquire() == 2, "it may take the lease again, under a new epoch")
    }

    /// A takeover that races a commit in flight waits for it (the fence holds the lease row `FOR SHARE` until
    /// the commit ends), so the commit is either fully before the new epoch or refused.
    @Test func aTakeoverAndACommitNeverInterleave() async throws {
        let url = try PostgresTestCluster.shared().makeDatabase()
        let a = try await Self.replica("a", url: url)
        let b = try await Self.replica("b", url: url)
        #expect(try await a.lease.tryAcquire() == 1)
        var versions: [Int] = []
        var parent: Int?
        for round in 0..<40 {
            if round == 20 {
                try await a.store.rawQuery("UPDATE leader_lease SET expires_at = 0")
                async let takeover = b.lease.tryAcquire()
                let attempt = try? await a.store.insert(
                    round: round, parentVersion: parent, bytes: modelBytes(Float(round)), tensorCount: 1,
                    status: .imported, makeCurrent: true)
                #expect(try await takeover == 2)
                if let attempt { versions.append(attempt) }
                break
            }
            let version = try await a.store.insert(
                round: round, parentVersion: parent, bytes: modelBytes(Float(round)), tensorCount: 1,
                status: .imported, makeCurrent: true)
            versions.append(version)
            parent = version
        }
        // Whatever A managed before the takeover is there whole; nothing A tries afterwards is.
        #expect(try await b.store.checkpoints().map(\.version).sorted() == versions)
        await #expect(
            performing: {
                try await a.store.insert(
                    round: 99, parentVersion: nil, bytes: modelBytes(9), tensorCount: 1, status: .imported)
            }, throws: Self.isFenced)
        #expect(try await b.store.verify(recording: false).isHealthy)
    }
}
