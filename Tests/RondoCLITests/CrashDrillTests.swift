import CurlHTTP
import FederationCore
import Foundation
import ModelManager
import RondoTestSupport
import Testing

/// SIGKILL drills on a real `rondo serve` process with three real `rondo client` processes.
@Suite(.serialized) struct CrashDrillTests {
    static let adminToken = "drill-admin-token-0123456789"
    static let enrolmentToken = "drill-enrolment-token-0123456789"

    struct Server {
        var process: ChildProcess
        var url: String
    }

    static func startServer(directory: String, port: Int) async throws -> Server {
        let process = try ChildProcess(
            ChildProcess.rondoBinary,
            [
                "serve", "--port", String(port), "--data-dir", directory, "--demo-model", "--admin-token", adminToken,
                "--enrolment-token", enrolmentToken,
                "--min-available-clients", "3", "--min-fit-clients", "3", "--min-fit-results", "2",
                "--fit-timeout", "20", "--evaluate-timeout", "10", "--liveness-timeout", "3", "--log-level", "warning",
            ])
        try await process.waitForOutput("listening on")
        return Server(process: process, url: "http://127.0.0.1:\(port)")
    }

    /// Three `rondo client` processes on shares 0/3, 1/3 and 2/3 of the demo data.
    static func startClients(_ server: Server, taskDelayMs: Int) throws -> [ChildProcess] {
        try (0..<3).map { index in
            try ChildProcess(
                ChildProcess.rondoBinary,
                [
                    "client", "--coordinator", server.url, "--partition", "\(index)/3", "--task-delay-ms",
                    String(taskDelayMs), "--enrolment-token", enrolmentToken, "--log-level", "error",
                ])
        }
    }

    static func status(_ http: CurlHTTPClient, _ url: String) async -> WireProtocol.StatusMessage? {
        let request = HTTPRequest(
            url: url + "/v1/status", headers: [("Authorization", "Bearer \(adminToken)")], timeout: .seconds(2))
        guard let response = try? await http.execute(request), response.status == 200 else { return nil }
        return try? JSONDecoder().decode(WireProtocol.StatusMessage.self, from: Data(response.body))
    }

    /// Every finished checkpoint version with its hash.
    static func finishedCheckpoints(_ directory: String) async throws -> [Int: String] {
        let store = try await CheckpointStore(configuration: .init(path: directory + "/rondo.db"))
        var result: [Int: String] = [:]
        for record in try await store.checkpoints() where [.committed, .imported].contains(record.status) {
            result[record.version] = record.sha256
        }
        return result
    }

    /// Twenty kills at seeded random moments (0.1–2.5 s after a start, every fourth only after a commit in
    /// that run), with three clients running throughout: after each, `verify` passes and every checkpoint
    /// committed so far is still there with its hash; the federation keeps committing across the drill.
    @Test func sigkillAtTwentyRandomMomentsLosesNothing() async throws {
        let directory = RunningCoordinator.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try ChildProcess.freePort()
        let http = CurlHTTPClient()
        defer { http.shutdown() }
        var server = try await Self.startServer(directory: directory, port: port)
        let clients = try Self.startClients(server, taskDelayMs: 100)
        defer { clients.forEach { $0.terminate() } }
        var generator = SeededRandomNumberGenerator(seed: 20)
        var committed: [Int: String] = [:]
        var phases: [String: Int] = [:]
        for kill in 1...20 {
            if kill % 4 == 0 {
                let deadline = ContinuousClock.now.advanced(by: .seconds(60))
                while (await Self.status(http, server.url)?.committedRounds ?? 0) < 1, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            try await Task.sleep(for: .milliseconds(Int.random(in: 100...2500, using: &generator)))
            if let phase = await Self.status(http, server.url)?.phase { phases[phase.rawValue, default: 0] += 1 }
            server.process.kill()

            let verify = try await ChildProcess.runRondo(["checkpoints", "verify", "--data-dir", directory])
            #expect(verify.status == 0, "verify after kill \(kill): \(verify.output)")
            let now = try await Self.finishedCheckpoints(directory)
            for (version, sha) in committed { #expect(now[version] == sha, "kill \(kill): version \(version) lost") }
            committed.merge(now) { old, _ in old }
            server = try await Self.startServer(directory: directory, port: port)
        }
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while (await Self.status(http, server.url)?.committedRounds ?? 0) < 1, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect((await Self.status(http, server.url)?.committedRounds ?? 0) >= 1, "commits after the last restart")
        let versions = try await Self.finishedCheckpoints(directory)
        #expect(versions.count >= 6, "the federation advanced across the drill: \(versions.count - 1) commits")
        print("crash drill: 20 kills in phases \(phases), \(versions.count - 1) committed versions, none lost")
        server.process.terminate()
    }

    @Test func sigkillInDifferentPhasesLosesNoCommittedCheckpoint() async throws {
        let directory = RunningCoordinator.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try ChildProcess.freePort()
        let http = CurlHTTPClient()
        defer { http.shutdown() }
        var server = try await Self.startServer(directory: directory, port: port)
        let clients = try Self.startClients(server, taskDelayMs: 300)
        defer { clients.forEach { $0.terminate() } }

        var lastRoundBefore = 0
        for target in ["training", "evaluating", "selecting", "training", "evaluating"] {
            // Wait for a committed round in this run, then for the target phase, and kill there.
            if target == "selecting" {
                // With every client connected the next round starts the moment one ends, so `selecting` may last
                // no time at all: pause, and the federation waits in it once the open round ends. (A pause does
                // not survive the restart.)
                let pause = HTTPRequest(
                    method: "POST", url: server.url + "/v1/federation/pause",
                    headers: [("Authorization", "Bearer \(Self.adminToken)")], body: nil, timeout: .seconds(5))
                let paused = try? await http.execute(pause)
                #expect(paused?.status == 200, "pause: \(paused?.status ?? 0)")
            }
            var killedIn: String?
            let deadline = ContinuousClock.now.advanced(by: .seconds(60))
            while killedIn == nil, ContinuousClock.now < deadline {
                if let status = await Self.status(http, server.url) {
                    // The round's row is written just after its phase shows in /v1/status: kill only once it
                    // is there, so the restart has a round to mark aborted.
                    var recorded = target == "selecting"
                    if !recorded,
                        let reader = try? await CheckpointStore(configuration: .init(path: directory + "/rondo.db"))
                    {
                        recorded = (try? await reader.round(status.round)) != nil
                    }
                    let ready = target == "selecting" || status.committedRounds >= 1
                    if ready && recorded && status.phase.rawValue == target {
                        server.process.kill()
                        killedIn = status.phase.rawValue
                    }
                }
                if killedIn == nil { try await Task.sleep(for: .milliseconds(10)) }
            }
            #expect(
                killedIn == target, "never saw phase \(target) (output: \(server.process.collectedOutput.suffix(2000)))"
            )
            if killedIn == nil { server.process.kill() }

            // Everything committed before the kill is intact and verifies.
            let before = try await Self.finishedCheckpoints(directory)
            let verify = try await ChildProcess.runRondo(["checkpoints", "verify", "--data-dir", directory])
            #expect(verify.status == 0, "verify after SIGKILL in \(target): \(verify.output)")
            let store = try await CheckpointStore(configuration: .init(path: directory + "/rondo.db"))
            let lastRound = try await store.lastRoundNumber()
            #expect(lastRound >= lastRoundBefore)

            server = try await Self.startServer(directory: directory, port: port)
            let after = try await Self.finishedCheckpoints(directory)
            for (version, sha) in before { #expect(after[version] == sha, "version \(version) changed or vanished") }
            // The round open at the kill is marked aborted; numbering continues after it.
            if target != "selecting" {
                #expect(
                    try await store.round(lastRound)?.status == .aborted, "round \(lastRound) after a kill in \(target)"
                )
            }
            lastRoundBefore = lastRound
        }

        // The federation keeps going after the last restart.
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        var final = await Self.status(http, server.url)
        while (final?.committedRounds ?? 0) < 2, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            final = await Self.status(http, server.url)
        }
        #expect((final?.committedRounds ?? 0) >= 2, "rounds committed after the last restart")
        #expect((final?.round ?? 0) > lastRoundBefore)
        server.process.terminate()
        #expect(try await ChildProcess.runRondo(["checkpoints", "verify", "--data-dir", directory]).status == 0)
    }
}
