import CurlHTTP
import FederationCore
import Foundation
import ModelManager
import RondoTestSupport
import Synchronization
import Testing

/// A real `rondo serve` process and 200 simulated clients in this process over HTTP on 127.0.0.1: in every
/// round 30 % of the selected clients vanish mid-task and 10 % answer after the deadline. Fifty rounds must
/// each end committed or failed with a recorded reason, none may hang, and the coordinator's resident memory
/// must stay flat between rounds 10 and 50.
@Suite(.serialized) struct DropoutSoakTests {
    static let admin = "soak-admin-token-0123456789abcdef"
    static let clientCount = 200
    static let rounds = 50

    /// How a simulated client treats one fit task.
    enum Behaviour { case answer, vanish, late }

    static func rss(of pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    @Test func twoHundredFlakyClientsForFiftyRounds() async throws {
        let directory = RunningCoordinator.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try ChildProcess.freePort()
        let url = "http://127.0.0.1:\(port)"
        let server = try ChildProcess(
            ChildProcess.rondoBinary,
            [
                "serve", "--port", String(port), "--data-dir", directory, "--demo-model", "--admin-token", Self.admin,
                "--open-enrolment", "--registrations-per-second", "1000", "--min-available-clients", "150",
                "--min-fit-clients", "60", "--fraction-fit", "0.5", "--min-fit-results", "40",
                "--fraction-evaluate", "0.1", "--fit-timeout", "1.5", "--evaluate-timeout", "1.5",
                "--liveness-timeout", "1", "--rounds", String(Self.rounds), "--log-level", "error",
            ])
        defer { server.terminate() }
        try await server.waitForOutput("listening on")
        let http = CurlHTTPClient()
        defer { http.shutdown() }

        let call: @Sendable (String, String, String?, String?, [UInt8]?) async -> HTTPResponse? = {
            method, path, token, type, body in
            var headers: [(name: String, value: String)] = []
            if let token { headers.append(("Authorization", "Bearer \(token)")) }
            if let type { headers.append(("Content-Type", type)) }
            return try? await http.execute(
                HTTPRequest(method: method, url: url + path, headers: headers, body: body, timeout: .seconds(30)))
        }

        let stop = StopFlag()
        var rssAt: [Int: Int] = [:]
        var lateRefusals = 0
        try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<Self.clientCount {
                group.addTask {
                    var generator = SeededRandomNumberGenerator(seed: UInt64(index) &+ 1000)
                    let registration = await call(
                        "POST", "/v1/clients", nil, "application/json", Array(#"{"name":"soak-\#(index)"}"#.utf8))
                    guard let registration, registration.status == 201,
                        let answer = try? JSONDecoder().decode(
                            WireProtocol.RegistrationResponse.self, from: Data(registration.body))
                    else { return 0 }
                    let (id, token) = (answer.clientID, answer.token)
                    var late = 0
                    while !stop.value.load(ordering: .relaxed) {
                        guard
                            let polled = await call(
                                "GET", "/v1/clients/\(id)/tasks/next?wait_seconds=2", token, nil, nil),
                            polled.status == 200,
                            let task = try? JSONDecoder().decode(WireProtocol.TaskMessage.self, from: Data(polled.body))
                        else { continue }
                        if task.kind == .evaluate {
                            _ = await call(
                                "POST", "/v1/tasks/\(task.taskID)/result", token, "application/json",
                                Array(#"{"loss":0.5,"num_examples":10,"metrics":{"accuracy":0.9}}"#.utf8))
                            continue
                        }
                        let roll = Double.random(in: 0..<1, using: &generator)
                        let behaviour: Behaviour = roll < 0.3 ? .vanish : roll < 0.4 ? .late : .answer
                        if behaviour != .answer {
                            // Silent past the deadline: no polls, no heartbeats (a crashed or stalled site).
                            try? await Task.sleep(for: .seconds(task.deadlineSeconds + 0.3))
                            if behaviour == .vanish { continue }
                        }
                        guard let model = await call("GET", "/v1/models/\(task.modelVersion)", token, nil, nil),
                            model.status == 200, let weights = try? SafeTensorsFile.decode(model.body).weights
                        else { continue }
                        let submitted = await call(
                            "POST", "/v1/tasks/\(task.taskID)/result", token, WireProtocol.safetensorsMediaType,
                            FitResult(weights: weights, numExamples: 10).file.encoded())
                        if behaviour == .late, submitted?.status == 409 { late += 1 }
                    }
                    return late
                }
            }
            // Watch the rounds; note the coordinator's RSS after rounds 10 and 50.
            let deadline = ContinuousClock.now.advanced(by: .seconds(600))
            while ContinuousClock.now < deadline {
                if let response = await call("GET", "/v1/status", Self.admin, nil, nil),
                    let status = try? JSONDecoder().decode(WireProtocol.StatusMessage.self, from: Data(response.body))
                {
                    let finished = status.committedRounds + status.failedRounds
                    for mark in [10, Self.rounds] where finished >= mark && rssAt[mark] == nil {
                        rssAt[mark] = Self.rss(of: server.pid)
                    }
                    if finished >= Self.rounds { break }
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            stop.value.store(true, ordering: .relaxed)
            for try await late in group { lateRefusals += late }
        }

        let store = try await CheckpointStore(configuration: .init(path: directory + "/rondo.db"))
        let history = try await store.rounds(limit: 1000)
        #expect(history.count == Self.rounds, "all \(Self.rounds) rounds finished; none stuck")
        for round in history {
            #expect(
                round.status == .committed || (round.reason != nil && round.status != .running),
                "round \(round.round) is \(round.status) with reason \(round.reason ?? "none")")
        }
        let committed = history.filter { $0.status == .committed }.count
        let dropped = history.reduce(0) { $0 + $1.dropped }
        #expect(committed >= Self.rounds / 2, "most rounds reach quorum despite the dropouts")
        #expect(dropped > 0 && lateRefusals > 0, "dropouts and late answers happened")
        let (rss10, rss50) = (rssAt[10] ?? 0, rssAt[Self.rounds] ?? 0)
        #expect(rss10 > 0 && rss50 > 0)
        #expect(Double(rss50) <= Double(rss10) * 1.25 + 8 * 1_048_576, "RSS flat: \(rss10) → \(rss50)")
        print(
            "soak: \(Self.clientCount) clients, \(history.count) rounds (\(committed) committed, \(history.count - committed) failed), \(dropped) dropouts, \(lateRefusals) late results refused; coordinator RSS \(rss10 / 1024) KiB at round 10, \(rss50 / 1024) KiB at round \(Self.rounds)"
        )
        let verify = try await ChildProcess.runRondo(["checkpoints", "verify", "--data-dir", directory])
        #expect(verify.status == 0, "\(verify.output)")
    }
}

/// Tells the simulated clients to stop.
final class StopFlag: Sendable {
    let value = Atomic<Bool>(false)
}
