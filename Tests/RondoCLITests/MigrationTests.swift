import FederationCore
import Foundation
import Logging
import ModelManager
import PostgresStore
import PostgresTestSupport
import RondoTestSupport
import Testing

/// `rondo checkpoints migrate`: a SQLite federation moved into PostgreSQL reads the same afterwards.
@Suite struct MigrationTests {
    static func model(_ value: Float) -> SafeTensorsFile {
        SafeTensorsFile(
            weights: ModelWeights([
                "w": Tensor(shape: [64], values: (0..<64).map { value + Float($0) / 64 }),
                "step": Tensor(shape: [1], values: [value]),
            ]))
    }

    /// A SQLite store with 30 versions and everything else a federation leaves behind: rounds (committed,
    /// failed, aborted), candidates with server state and privacy spends, tags, a rollback, clients that
    /// left or were revoked, and audit events.
    static func makeFederation(at path: String) async throws {
        let store = try await CheckpointStore(configuration: .init(path: path, chunkSize: 100))
        var parent = try await store.insert(
            round: 0, parentVersion: nil, file: model(0), status: .imported, makeCurrent: true
        ).version
        for round in 1...29 {
            try await store.roundStarted(round: round, baseVersion: parent, selected: 3)
            let (version, _) = try await store.storeCandidate(
                round: round, parentVersion: parent, file: model(Float(round)),
                strategy: StrategyRecord(name: "fedadam", parameters: ["eta": 0.01]),
                serverState: round.isMultiple(of: 2) ? model(Float(-round)) : nil,
                privacySpend: PrivacySpend(
                    round: round, samplingRate: 1, noiseMultiplier: 1.1, clipNorm: 0.5, nextClipNorm: 0.5,
                    results: 3, unclipped: 2))
            try await store.commit(
                version: version,
                metrics: CheckpointMetrics(evalLoss: 1 / Double(round), evalMetrics: ["accuracy": Double(round) / 30]))
            try await store.roundFinished(
                RoundRecord(
                    round: round, status: .committed, startedAt: Double(round), baseVersion: parent,
                    resultVersion: version, selected: 3, answered: 3, evalLoss: 1 / Double(round)))
            parent = version
        }
        try await store.roundStarted(round: 30, baseVersion: parent, selected: 3)
        _ = try await store.abortRunningRounds(reason: "coordinator restart")
        try await store.tag(version: 10, name: "production", actor: "cli:test")
        try await store.rollback(to: 20, reason: "drill", actor: "cli:test")
        // Registered at one instant (as a demo's sites are), in an order unlike their ids: lists of them must
        // not depend on the engine's row order.
        let sameInstant = try await CheckpointStore(configuration: .init(path: path), clock: { 1_000 })
        for index in (0..<5).reversed() {
            try await sameInstant.clientRegistered(
                id: "c-\(index)", name: "site-\(index)", tokenSHA256: String(repeating: "\(index)", count: 64),
                identitySHA256: index == 0 ? String(repeating: "f", count: 64) : nil)
        }
        try await store.clientLeft(id: "c-1")
        try await store.clientsSeen(ids: ["c-3"])
        try await store.revokeClient(id: "c-2", reason: "compromised", actor: "cli:test")
    }

    @Test func aThirtyVersionFederationMovesIntoPostgreSQLWhole() async throws {
        let directory = RunningCoordinator.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/rondo.db"
        try await Self.makeFederation(at: path)
        let url = try PostgresTestCluster.shared().makeDatabase()

        let migrated = try await ChildProcess.runRondo([
            "checkpoints", "migrate", "--from", "sqlite:\(path)", "--to", url,
        ])
        #expect(migrated.status == 0, "\(migrated.output)")
        #expect(migrated.output.contains("checkpoints: 30 rows"), "\(migrated.output)")
        #expect(migrated.output.contains("every record and hash matches"))

        // Read back here too, through the API, against the untouched source.
        let source = try await CheckpointStore(configuration: .init(path: path))
        let target = try await CheckpointStore.open(
            postgres: try PostgresStoreConfiguration(url: url), configuration: .init(),
            logger: Logger(label: "migration-test"))
        #expect(try await source.differences(from: target).isEmpty)
        #expect(try await target.checkpoints().count == 30)
        #expect(try await target.refVersion(.current) == 20)
        #expect(try await target.refVersion(named: "production") == 10)
        #expect(try await target.privacyLedger().count == 29)
        #expect(try await target.serverState(version: 3) != nil)
        #expect(try await target.client(tokenSHA256: String(repeating: "2", count: 64))?.revokedAt != nil)
        #expect(try await target.verify(recording: false).isHealthy)
        let verify = try await ChildProcess.runRondo(["checkpoints", "verify", "--store", url])
        #expect(verify.status == 0, "\(verify.output)")

        // New rows number on after the copied ones.
        let next = try await target.insert(
            round: 31, parentVersion: 20, file: Self.model(31), status: .imported
        ).version
        #expect(next == 31)
        try await target.recordEvent(kind: .tag, actor: "test")
        let events = try await target.events(limit: 2)
        #expect(events[0].id > events[1].id)

        // A destination that already holds a federation is refused, and keeps what it has.
        let again = try await ChildProcess.runRondo(["checkpoints", "migrate", "--from", directory, "--to", url])
        #expect(again.status != 0)
        #expect(again.output.contains("already holds a federation"), "\(again.output)")
        #expect(try await target.checkpoints().count == 31)
    }
}
