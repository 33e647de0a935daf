import CurlHTTP
import FederationCore
import Foundation
import Logging
import PostgresStore
import PostgresTestSupport
import RondoTestSupport
import Testing

@testable import ModelManager

/// High availability on a real PostgreSQL 15: two `rondo serve` replicas on one database, three `rondo client`
/// processes given both URLs.
@Suite(.serialized) struct FailoverDrillTests {
    static let adminToken = CrashDrillTests.adminToken
    static let enrolmentToken = CrashDrillTests.enrolmentToken
    /// Shorter than the default 3 s, to leave a loaded CI machine margin under the 5 s takeover bound
    /// (`RONDO_DRILL_LEASE_TTL` runs the drill with another, e.g. the default, to measure it).
    static let leaseTTL = ProcessInfo.processInfo.environment["RONDO_DRILL_LEASE_TTL"].flatMap { Int($0) } ?? 2

    struct Replica {
        var process: ChildProcess
        let port: Int
        let directory: String
        var url: String { "http://127.0.0.1:\(port)" }
    }

    static func start(port: Int, directory: String, store: String) async throws -> ChildProcess {
        let process = try ChildProcess(
            ChildProcess.rondoBinary,
            [
                "serve", "--port", String(port), "--data-dir", directory, "--store", store, "--lease-ttl",
                String(leaseTTL), "--advertise-url", "http://127.0.0.1:\(port)", "--demo-model", "--admin-token",
                adminToken, "--enrolment-token", enrolmentToken, "--min-available-clients", "3", "--min-fit-clients",
                "3", "--min-fit-results", "2", "--fit-timeout", "20", "--evaluate-timeout", "10",
                "--liveness-timeout", "3", "--log-level", "notice",
            ])
        try await process.waitForOutput("rondo coordinator ")
        return process
    }

    /// Two replicas on `store`, each with its own port and data directory.
    static func startReplicas(store: String) async throws -> [Replica] {
        var replicas: [Replica] = []
        for _ in 0..<2 {
            let port = try ChildProcess.freePort()
            let directory = RunningCoordinator.temporaryDirectory()
            replicas.append(
                Replica(
                    process: try await start(port: port, directory: directory, store: store), port: port,
                    directory: directory))
        }
        return replicas
    }

    /// Three `rondo client` processes given every replica's URL.
    static func startClients(_ replicas: [Replica], taskDelayMs: Int) throws -> [ChildProcess] {
        let urls = replicas.map(\.url).joined(separator: ",")
        return try (0..<3).map { index in
            try ChildProcess(
                ChildProcess.rondoBinary,
                [
                    "client", "--coordinator", urls, "--partition", "\(index)/3", "--task-delay-ms",
                    String(taskDelayMs),
                    "--enrolment-token", enrolmentToken, "--log-level", "error",
                ])
        }
    }

    static func isReady(_ http: CurlHTTPClient, _ url: String) async -> Bool {
        (try? await http.execute(HTTPRequest(url: url + "/readyz", timeout: .seconds(1))))?.status == 200
    }

    /// The index of the replica that answers `/readyz` 200 first, polling every 20 ms.
    static func leader(_ http: CurlHTTPClient, _ replicas: [Replica], timeout: Duration) async throws -> Int? {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            for (index, replica) in replicas.enumerated() where await isReady(http, replica.url) { return index }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    static func openStore(_ url: String) async throws -> CheckpointStore {
        try await CheckpointStore.open(
            postgres: try PostgresStoreConfiguration(url: url), configuration: .init(),
            logger: Logger(label: "drill-reader"))
    }

    /// Finished versions with their hashes, and every way the history could show two leaders: a round
    /// committed twice, or a committed version whose parent is not the version committed before it (a fork).
    static func history(_ store: CheckpointStore) async throws -> (finished: [Int: String], problems: [String]) {
        var finished: [Int: String] = [:]
        var problems: [String] = []
        var previous: Int?
        var committedRounds: [Int: Int] = [:]
        for record in try await store.checkpoints().sorted(by: { $0.version < $1.version })
        where [.committed, .imported].contains(record.status) {
            finished[record.version] = record.sha256
            if record.status == .committed {
                if record.parentVersion != previous {
                    problems.append(
                        "version \(record.version) has parent \(record.parentVersion ?? -1), not \(previous ?? -1)")
                }
                committedRounds[record.round, default: 0] += 1
            }
            previous = record.version
        }
        problems += committedRounds.filter { $0.value > 1 }.map { "round \($0.key) committed \($0.value) times" }
        return (finished, problems)
    }

    /// Ten SIGKILLs of the leader at seeded random moments: each time the standby leads within 5 s, nothing
    /// committed is lost, no round is committed twice, `verify` passes, and the federation keeps committing.
    @Test func theStandbyTakesOverAfterEachOfTenKillsAndNothingIsLostOrDoubled() async throws {
        let store = try PostgresTestCluster.shared().makeDatabase()
        let reader = try await Self.openStore(store)
        let http = CurlHTTPClient()
        defer { http.shutdown() }
        var replicas = try await Self.startReplicas(store: store)
        defer {
            for replica in replicas {
                replica.process.kill()
                try? FileManager.default.removeItem(atPath: replica.directory)
            }
        }
        let clients = try Self.startClients(replicas, taskDelayMs: 100)
        defer { clients.forEach { $0.terminate() } }

        var generator = SeededRandomNumberGenerator(seed: 2020)
        var committed: [Int: String] = [:]
        var takeovers: [Double] = []
        var phases: [String: Int] = [:]
        guard var leader = try await Self.leader(http, replicas, timeout: .seconds(20)) else {
            Issue.record("no replica became leader")
            return
        }
        for kill in 1...10 {
            if kill % 3 == 1 {
                // Every third kill waits for a commit under the current leader, so the drill also kills leaders
                // that have committed, not only ones still starting.
                let before = try await Self.history(reader).finished.count
                let deadline = ContinuousClock.now.advanced(by: .seconds(60))
                while try await Self.history(reader).finished.count == before, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            // Kill inside a round (training, evaluating or committing), not while the new leader still waits
            // for its clients to find it.
            let roundDeadline = ContinuousClock.now.advanced(by: .seconds(30))
            while ContinuousClock.now < roundDeadline,
                [nil, .selecting].contains(await CrashDrillTests.status(http, replicas[leader].url)?.phase)
            {
                try await Task.sleep(for: .milliseconds(20))
            }
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...1500, using: &generator)))
            if let phase = await CrashDrillTests.status(http, replicas[leader].url)?.phase {
                phases[phase.rawValue, default: 0] += 1
            }
            replicas[leader].process.kill()
            let killedAt = ContinuousClock.now
            let standby = 1 - leader
            guard let next = try await Self.leader(http, [replicas[standby]], timeout: .seconds(10)) else {
                Issue.record("kill \(kill): the standby did not take over within 10 s")
                return
            }
            _ = next
            let takeover = killedAt.duration(to: .now)
            takeovers.append(Double(takeover.components.attoseconds) / 1e18 + Double(takeover.components.seconds))
            #expect(takeover <= .seconds(5), "kill \(kill): takeover took \(takeover)")

            let (finished, problems) = try await Self.history(reader)
            #expect(problems.isEmpty, "kill \(kill): \(problems)")
            for (version, sha) in committed {
                #expect(finished[version] == sha, "kill \(kill): version \(version) lost")
            }
            committed.merge(finished) { old, _ in old }
            #expect(try await reader.verify(recording: false).isHealthy, "kill \(kill): verify")

            // The killed replica comes back, as a standby.
            replicas[leader].process = try await Self.start(
                port: replicas[leader].port, directory: replicas[leader].directory, store: store)
            #expect(replicas[leader].process.collectedOutput.contains("standing by"))
            leader = standby
        }
        let before = try await Self.history(reader).finished.count
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while try await Self.history(reader).finished.count <= before, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let (finished, problems) = try await Self.history(reader)
        #expect(finished.count > before, "the federation commits after the last takeover")
        #expect(problems.isEmpty, "\(problems)")
        #expect(finished.count >= 5, "the federation advanced across the drill: \(finished.count - 1) commits")
        let aborted = try await reader.events(limit: 1000, kind: .roundAborted).filter {
            $0.detail["reason"] == "leader change"
        }
        #expect(!aborted.isEmpty, "rounds interrupted by a takeover are aborted as a leader change")
        let sorted = takeovers.sorted()
        print(
            "failover drill: 10 kills in phases \(phases), takeover p50 \(sorted[sorted.count / 2]) s, max "
                + "\(sorted.last ?? 0) s (lease TTL \(Self.leaseTTL) s; all: "
                + sorted.map { String(format: "%.2f", $0) }.joined(separator: " ")
                + "), \(finished.count - 1) commits, none lost or doubled")
    }

    /// A leader paused (SIGSTOP) past its lease: the standby takes over, and when the old leader resumes it
    /// exits (status 75) without committing anything.
    @Test func aPausedLeaderStepsDownWithoutCommittingWhenItResumes() async throws {
        let store = try PostgresTestCluster.shared().makeDatabase()
        let reader = try await Self.openStore(store)
        let http = CurlHTTPClient()
        defer { http.shutdown() }
        let replicas = try await Self.startReplicas(store: store)
        defer {
            for replica in replicas {
                replica.process.kill()
                try? FileManager.default.removeItem(atPath: replica.directory)
            }
        }
        let clients = try Self.startClients(replicas, taskDelayMs: 50)
        defer { clients.forEach { $0.terminate() } }
        guard let leader = try await Self.leader(http, replicas, timeout: .seconds(20)) else {
            Issue.record("no replica became leader")
            return
        }
        // Pause it while it is training (its clients' results will be waiting for it when it resumes).
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while ContinuousClock.now < deadline {
            let status = await CrashDrillTests.status(http, replicas[leader].url)
            if (status?.committedRounds ?? 0) >= 2, status?.phase == .training { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        replicas[leader].process.send(signal: SIGSTOP)
        let standby = 1 - leader
        #expect(try await Self.leader(http, [replicas[standby]], timeout: .seconds(10)) != nil, "the standby leads")
        // Wake the old leader up: the results its clients sent before the pause are waiting for it, and it
        // goes on with its round as if nothing happened, until the fence and its lease keeper stop it.
        let takenOver = try await Self.history(reader).finished.count
        let epochBefore = try await reader.rawQuery("SELECT epoch, holder FROM leader_lease").first
        replicas[leader].process.send(signal: SIGCONT)
        #expect(try await replicas[leader].process.waitForExit(timeout: .seconds(15)), "the old leader stepped down")
        #expect(replicas[leader].process.exitStatus == 75, "\(replicas[leader].process.collectedOutput.suffix(2000))")
        #expect(replicas[leader].process.collectedOutput.contains("lost the leader lease"))
        #expect(try await reader.rawQuery("SELECT epoch, holder FROM leader_lease").first == epochBefore)
        // The clients follow the new leader, which commits.
        let commitDeadline = ContinuousClock.now.advanced(by: .seconds(60))
        while try await Self.history(reader).finished.count == takenOver, ContinuousClock.now < commitDeadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let (finished, problems) = try await Self.history(reader)
        #expect(problems.isEmpty, "split-brain: \(problems)")
        #expect(finished.count > takenOver, "the new leader commits")
        #expect(try await reader.verify(recording: false).isHealthy)
        #expect(await Self.isReady(http, replicas[standby].url))
    }
}
