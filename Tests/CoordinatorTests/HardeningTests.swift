import Coordinator
import CurlHTTP
import FederationCore
import Foundation
import RondoTestSupport
import Testing

/// The attacks outside testing ran against a live coordinator, each answered with its documented status while
/// the coordinator stays up and the round goes on.
@Suite struct HardeningTests {
    static let safetensors = WireProtocol.safetensorsMediaType
    static let json = "application/json"

    static func task(_ coordinator: RunningCoordinator, _ client: (id: String, token: String)) async throws
        -> WireProtocol.TaskMessage
    {
        let response = try await coordinator.request(
            "GET", "/v1/clients/\(client.id)/tasks/next?wait_seconds=5", token: client.token)
        return try JSONDecoder().decode(WireProtocol.TaskMessage.self, from: Data(response.body))
    }

    @Test func hugeExampleCountsAreRefusedAndTheRoundStillCommits() async throws {
        let configuration = RunningCoordinator.configuration(
            clients: 2, minFitResults: 2, fractionEvaluate: 1, maxRounds: 1)
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let a = try await coordinator.register("a")
            let b = try await coordinator.register("b")
            let fitA = try await Self.task(coordinator, a)
            let fitB = try await Self.task(coordinator, b)
            let attack = try await coordinator.request(
                "POST", "/v1/tasks/\(fitA.taskID)/result", token: a.token, contentType: Self.safetensors,
                body: ClientAPITests.fit(ClientAPITests.trained, examples: String(Int.max)))
            #expect(attack.status == 422 && attack.errorCode == "invalid_value", "\(attack.text)")
            for (client, task) in [(b, fitB), (a, fitA)] {
                let normal = try await coordinator.request(
                    "POST", "/v1/tasks/\(task.taskID)/result", token: client.token, contentType: Self.safetensors,
                    body: ClientAPITests.fit(ClientAPITests.trained))
                #expect(normal.status == 202, "\(normal.text)")
            }
            let evalA = try await Self.task(coordinator, a)
            let evalB = try await Self.task(coordinator, b)
            #expect(evalA.kind == .evaluate && evalB.kind == .evaluate)
            let evalAttack = try await coordinator.request(
                "POST", "/v1/tasks/\(evalA.taskID)/result", token: a.token, contentType: Self.json,
                body: Array(#"{"loss":0.1,"num_examples":9223372036854775807}"#.utf8))
            #expect(evalAttack.status == 422 && evalAttack.errorCode == "invalid_value", "\(evalAttack.text)")
            for (client, task) in [(b, evalB), (a, evalA)] {
                let normal = try await coordinator.request(
                    "POST", "/v1/tasks/\(task.taskID)/result", token: client.token, contentType: Self.json,
                    body: Array(#"{"loss":0.5,"num_examples":10}"#.utf8))
                #expect(normal.status == 202, "\(normal.text)")
            }
            let status = try await coordinator.waitForStatus { $0.committedRounds == 1 }
            #expect(status.modelVersion == 2)
            #expect(try await coordinator.request("GET", "/healthz").status == 200)
            #expect(try await coordinator.metricValue(#"rondo_result_rejections_total{reason="invalid_value"}"#) == 2)
        }
    }

    @Test func chunkedBodiesOverTheLimitAre413() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration()) { coordinator in
            let me = try await coordinator.register("me")
            let task = try await Self.task(coordinator, me)
            // Registration: JSON limit 64 KiB; fit result: 1 MiB. Neither body says how long it is. An upload is
            // read as it streams in: its header, describing 1.2 MB of data, is refused before the data comes.
            let header = SafeTensorsFile(
                weights: ModelWeights(["w": .zeros(shape: [300_000])]), metadata: ["num_examples": "1"]
            ).headerBytes()
            let cases: [(String, String, Int, [UInt8])] = [
                ("/v1/clients", "", 40 << 10, []),
                ("/v1/tasks/\(task.taskID)/result", "Authorization: Bearer \(me.token)\r\n", 600 << 10, header),
            ]
            for (path, auth, chunk, prefix) in cases {
                let connection = try RawConnection(port: coordinator.port)
                connection.send(
                    "POST \(path) HTTP/1.1\r\nHost: x\r\n\(auth)Content-Type: \(path == "/v1/clients" ? Self.json : Self.safetensors)\r\n"
                        + "Transfer-Encoding: chunked\r\n\r\n")
                if !prefix.isEmpty {
                    connection.send(String(prefix.count, radix: 16) + "\r\n")
                    connection.send(prefix + Array("\r\n".utf8))
                }
                for _ in 0..<2 {
                    connection.send(String(chunk, radix: 16) + "\r\n")
                    connection.send([UInt8](repeating: 0x20, count: chunk) + Array("\r\n".utf8))
                }
                connection.send("0\r\n\r\n")
                let response = try #require(await connection.readResponse(), "no answer for \(path)")
                #expect(response.status == 413, "\(path): \(response.text.prefix(300))")
                #expect(response.text.contains("payload_too_large"), "\(path): \(response.text.prefix(300))")
            }
            #expect(try await coordinator.status().clientsRegistered == 1)
        }
    }

    @Test func anAnswerBeforeTheBodyClosesTheConnection() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration()) { coordinator in
            let connection = try RawConnection(port: coordinator.port, receiveTimeout: .seconds(8))
            connection.send(
                "POST /v1/tasks/1-fit-1/failure HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + "Content-Length: 1000\r\n\r\n{\"mess")
            let (text, closed) = await connection.readUntilClosed()
            #expect(text.hasPrefix("HTTP/1.1 401"), "\(text)")
            #expect(text.lowercased().contains("connection: close"), "the refusal says the connection ends: \(text)")
            #expect(closed, "the unauthenticated, unfinished upload must not keep its connection")
        }
    }

    /// Sends one space every 100 ms (10 B/s) while reading the answer; returns what `readUntilClosed` saw.
    static func trickle(_ connection: RawConnection) async -> (text: String, closed: Bool) {
        let sender = Task.detached {
            for _ in 0..<80 {
                guard connection.send(" ") else { return }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        defer { sender.cancel() }
        return await connection.readUntilClosed()
    }

    @Test func aTrickledBodyIsCutOff() async throws {
        var configuration = RunningCoordinator.configuration()
        configuration.limits.minimumBodyBytesPerSecond = 100
        configuration.limits.bodyRateWindow = .milliseconds(500)
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let me = try await coordinator.register("me")
            let connection = try RawConnection(port: coordinator.port, receiveTimeout: .seconds(8))
            connection.send(
                "POST /v1/tasks/1-fit-1/failure HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(me.token)\r\n"
                    + "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
            let (text, closed) = await Self.trickle(connection)
            #expect(text.hasPrefix("HTTP/1.1 408") && text.contains("body_too_slow"), "\(text)")
            #expect(closed)
            #expect(try await coordinator.metricValue(#"rondo_limit_refusals_total{limit="slow_body"}"#) == 1)

            // A body cut off for being slow is not taken for a complete one: this JSON prefix parses, but the
            // registration it starts must not happen.
            let registration = try RawConnection(port: coordinator.port, receiveTimeout: .seconds(8))
            registration.send(
                "POST /v1/clients HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + "Content-Length: 1000\r\n\r\n{\"name\":\"sneaky\"}")
            let cut = await Self.trickle(registration)
            #expect(cut.text.hasPrefix("HTTP/1.1 408"), "\(cut.text)")
            #expect(try await coordinator.status().clientsRegistered == 1, "the cut-off registration did not happen")
        }
    }

    @Test func connectionsBeyondTheCapAreRefused() async throws {
        var configuration = RunningCoordinator.configuration()
        configuration.limits.maxConnections = 2
        configuration.limits.keepAliveTimeout = .seconds(60)  // the held connections stay however slow the test
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let held = try (0..<2).map { _ in try RawConnection(port: coordinator.port) }
            for connection in held {
                connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(await connection.readResponse()?.status == 200, "the first two connections are served")
            }
            let extra = try RawConnection(port: coordinator.port)
            extra.send("GET /v1/openapi.yaml HTTP/1.1\r\nHost: x\r\n\r\n")
            let (text, closed) = await extra.readUntilClosed()
            #expect(text.hasPrefix("HTTP/1.1 503") && text.contains("too_many_connections"), "\(text)")
            #expect(closed)
            // Probes are still answered over the cap (so a busy coordinator is not restarted), then closed.
            let probe = try RawConnection(port: coordinator.port)
            probe.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            let (probeText, probeClosed) = await probe.readUntilClosed()
            #expect(probeText.hasPrefix("HTTP/1.1 200") && probeText.lowercased().contains("connection: close"))
            #expect(probeClosed)
            // An idle connection over the cap does not hold its descriptor for long.
            let idle = try RawConnection(port: coordinator.port, receiveTimeout: .seconds(8))
            let idleEnd = await idle.readUntilClosed()
            #expect(idleEnd.closed, "an idle connection over the cap is closed within seconds")
            held.forEach { $0.close() }
            var served = false
            for _ in 0..<100 where !served {
                let fresh = try RawConnection(port: coordinator.port)
                fresh.send("GET /v1/openapi.yaml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                served = await fresh.readResponse()?.status == 200
                if !served { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(served, "once the held connections closed, a new one is served again")
            #expect(try await coordinator.metricValue(#"rondo_limit_refusals_total{limit="connections"}"#) ?? 0 >= 1)
        }
    }

    @Test func oneClientCannotTakeEveryLongPollSlot() async throws {
        var configuration = RunningCoordinator.configuration(clients: 5)
        configuration.limits.maxParkedPolls = 3
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let greedy = try await coordinator.register("greedy")
            let polite = try await coordinator.register("polite")
            // Three polls at once from one client: whichever comes third is refused, the other two park.
            let path = "/v1/clients/\(greedy.id)/tasks/next?wait_seconds=6"
            async let first = coordinator.request("GET", path, token: greedy.token)
            async let second = coordinator.request("GET", path, token: greedy.token)
            async let third = coordinator.request("GET", path, token: greedy.token)
            async let other = coordinator.request(
                "GET", "/v1/clients/\(polite.id)/tasks/next?wait_seconds=1", token: polite.token)
            let responses = [try await first, try await second, try await third]
            #expect(responses.map(\.status).sorted() == [204, 204, 429], "\(responses.map(\.text))")
            #expect(responses.contains { $0.errorCode == "too_many_polls" })
            let politeResponse = try await other
            #expect(politeResponse.status == 204, "another client still gets a slot: \(politeResponse.text)")
            #expect(try await coordinator.metricValue(#"rondo_limit_refusals_total{limit="client_long_polls"}"#) == 1)
        }
    }

    @Test func anOversizedHeaderGetsAJSONError() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration()) { coordinator in
            let connection = try RawConnection(port: coordinator.port)
            connection.send(
                "GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(String(repeating: "A", count: 90_000))\r\n\r\n"
            )
            let response = try #require(await connection.readResponse())
            #expect(response.status == 431, "\(response.text.prefix(300))")
            #expect(response.text.contains("application/json") && response.text.contains("headers_too_large"))
            #expect(try await coordinator.request("GET", "/healthz").status == 200)
        }
    }

    @Test func clientsDownloadOnlyTheCurrentModelOrTheirTasksModel() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration(maxRounds: 1)) {
            coordinator in
            let me = try await coordinator.register("me")
            let task = try await Self.task(coordinator, me)
            #expect(try await coordinator.request("GET", "/v1/models/1", token: me.token).status == 200)
            _ = try await coordinator.request(
                "POST", "/v1/tasks/\(task.taskID)/result", token: me.token, contentType: Self.safetensors,
                body: ClientAPITests.fit(ClientAPITests.trained))
            _ = try await coordinator.waitForStatus { $0.committedRounds == 1 }
            let old = try await coordinator.request("GET", "/v1/models/1", token: me.token)
            #expect(old.status == 403 && old.errorCode == "forbidden", "\(old.text)")
            #expect(try await coordinator.request("GET", "/v1/models/2", token: me.token).status == 200)
            let operatorCopy = try await coordinator.request(
                "GET", "/v1/checkpoints/1/weights", token: RunningCoordinator.adminToken)
            #expect(operatorCopy.status == 200, "operators still read every version")
        }
    }
}
