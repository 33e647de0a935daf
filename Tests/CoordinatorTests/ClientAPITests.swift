import CurlHTTP
import FederationCore
import Foundation
import RondoTestSupport
import Testing

@testable import Coordinator

/// The client API over real HTTP on 127.0.0.1: the happy path, and every bad input answered with its
/// documented status and code while the round and the model stay as they were.
@Suite struct ClientAPITests {
    static let safetensors = WireProtocol.safetensorsMediaType

    static func fit(_ weights: ModelWeights, examples: String? = "10") -> [UInt8] {
        var metadata: [String: String] = [:]
        if let examples { metadata[WireProtocol.numExamplesKey] = examples }
        return SafeTensorsFile(weights: weights, metadata: metadata).encoded()
    }

    static let trained = ModelWeights([
        "weight": Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]), "bias": Tensor(shape: [2], values: [0.5, -0.5]),
    ])

    @Test func registerPullTaskDownloadModelSubmitAndCommit() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration(maxRounds: 1)) {
            coordinator in
            let client = try await coordinator.register("site-a")

            let taskResponse = try await coordinator.request(
                "GET", "/v1/clients/\(client.id)/tasks/next?wait_seconds=5", token: client.token)
            #expect(taskResponse.status == 200)
            let task = try JSONDecoder().decode(WireProtocol.TaskMessage.self, from: Data(taskResponse.body))
            #expect(task.kind == .fit && task.round == 1 && task.modelVersion == 1 && task.deadlineSeconds > 25)

            let model = try await coordinator.request("GET", "/v1/models/1", token: client.token)
            #expect(model.status == 200)
            #expect(model.header("etag") == "\"\(task.modelSHA256)\"")
            #expect(try SafeTensorsFile.decode(model.body).weights == RunningCoordinator.testModel)
            let cached = try await coordinator.request(
                "GET", "/v1/models/1", token: client.token, headers: [("If-None-Match", "\"\(task.modelSHA256)\"")])
            #expect(cached.status == 304 && cached.body.isEmpty)
            let weak = try await coordinator.request(
                "GET", "/v1/models/1", token: client.token, headers: [("If-None-Match", "W/\"\(task.modelSHA256)\"")])
            #expect(weak.status == 304, "If-None-Match compares weakly")

            let submitted = try await coordinator.request(
                "POST", "/v1/tasks/\(task.taskID)/result", token: client.token, contentType: Self.safetensors,
                body: Self.fit(Self.trained))
            #expect(submitted.status == 202)

            let status = try await coordinator.waitForStatus { $0.committedRounds == 1 }
            #expect(status.modelVersion == 2 && status.phase == .finished)
            let committed = try await coordinator.request("GET", "/v1/models/current", token: client.token)
            #expect(
                try SafeTensorsFile.decode(committed.body).weights == Self.trained,
                "FedAvg of one update is that update")

            let duplicate = try await coordinator.request(
                "POST", "/v1/tasks/\(task.taskID)/result", token: client.token, contentType: Self.safetensors,
                body: Self.fit(Self.trained))
            #expect(duplicate.status == 409 && duplicate.errorCode == "duplicate")
        }
    }

    /// (name, request builder, expected status, expected code)
    struct BadInput: Sendable, CustomTestStringConvertible {
        var name: String
        var status: Int
        var code: String
        var send:
            @Sendable (RunningCoordinator, (id: String, token: String), String, (id: String, token: String))
                async throws -> HTTPResponse
        var testDescription: String { name }
    }

    static let badInputs: [BadInput] = [
        BadInput(name: "malformed registration JSON", status: 400, code: "malformed_body") { c, _, _, _ in
            try await c.request("POST", "/v1/clients", contentType: "application/json", body: Array("{\"name\":".utf8))
        },
        BadInput(name: "registration without a name", status: 400, code: "malformed_body") { c, _, _, _ in
            try await c.request("POST", "/v1/clients", contentType: "application/json", body: Array("{}".utf8))
        },
        BadInput(name: "no token", status: 401, code: "unauthenticated") { c, me, _, _ in
            try await c.request("GET", "/v1/clients/\(me.id)/tasks/next")
        },
        BadInput(name: "unknown token", status: 401, code: "unauthenticated") { c, me, _, _ in
            try await c.request("POST", "/v1/clients/\(me.id)/heartbeat", token: String(repeating: "0", count: 64))
        },
        BadInput(name: "another client's task queue", status: 403, code: "forbidden") { c, me, _, other in
            try await c.request("GET", "/v1/clients/\(other.id)/tasks/next", token: me.token)
        },
        BadInput(name: "result for another client's task", status: 403, code: "not_your_task") { c, _, task, other in
            try await c.request(
                "POST", "/v1/tasks/\(task)/result", token: other.token, contentType: safetensors, body: fit(trained))
        },
        BadInput(name: "unknown task", status: 404, code: "unknown_task") { c, me, _, _ in
            try await c.request(
                "POST", "/v1/tasks/r99-f1/result", token: me.token, contentType: safetensors, body: fit(trained))
        },
        BadInput(name: "wrong content type", status: 415, code: "unsupported_media_type") { c, me, task, _ in
            try await c.request(
                "POST", "/v1/tasks/\(task)/result", token: me.token, contentType: "application/json",
                body: Array("{}".utf8))
        },
        BadInput(name: "truncated safetensors", status: 400, code: "invalid_safetensors") { c, me, task, _ in
            try await c.request(
                "POST", "/v1/tasks/\(task)/result", token: me.token, contentType: safetensors,
                body: Array(fit(trained).dropLast(5)))
        },
        BadInput(name: "lying header length", status: 400, code: "invalid_safetensors") { c, me, task, _ in
            var bytes = fit(trained)
            bytes[0] = 0xFF
            bytes[1] = 0xFF
            return try await c.request(
                "POST", "/v1/tasks/\(task)/result", token: me.token, contentType: safetensors, body: bytes)
        },
        BadInput(name: "missing num_examples", status: 400, code: "malformed") { c, me, task, _ in
            try await c.request(
                "POST", "/v1/tasks/\(task)/result", token: me.token, contentType: safetensors,
                body: fit(trained, examples: nil))
        },
        BadInput(name: "wrong shape", status: 422, code: "wrong_shape") { c, me, task, _ in
            let weights = ModelWeights([
                "weight": Tensor(shape: [3, 2], values: [1, 2, 3, 4, 5, 6]),
                "bias": Tensor(shape: [2], values: [0, 0]),
            ])
            return try await c.request(
                "POST", "/v1/tasks/\(task)/result", token: me.token, contentType: safetensors, body: fit(weights))
        },
        BadInput(name: "wrong names", status: 422, code: "wrong_names") { c, me, task, _ in
            let weights = ModelWeights([
                "weight": Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]), "b": Tensor(shape: [2], values: [0, 0]),
            ])
            return try await c.request(
                "POST", "/v1/tasks/\(task)/result", token: me.token, contentType: safetensors, body: fit(weights))
        },
        BadInput(name: "NaN", status: 422, code: "non_finite") { c, me, task, _ in
            let weights = ModelWeights([
                "weight": Tensor(shape: [2, 3], values: [1, .nan, 3, 4, 5, 6]),
                "bias": Tensor(shape: [2], values: [0, 0]),
            ])
            return try await c.request(
                "POST", "/v1/tasks/\(task)/result", token: me.token, contentType: safetensors, body: fit(weights))
        },
        BadInput(name: "infinity", status: 422, code: "non_finite") { c, me, task, _ in
            let weights = ModelWeights([
                "weight": Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]),
                "bias": Tensor(shape: [2], values: [.infinity, 0]),
            ])
            return try await c.request(
                "POST", "/v1/tasks/\(task)/result", token: me.token, contentType: safetensors, body: fit(weights))
        },
        BadInput(name: "body over the limit", status: 413, code: "payload_too_large") { c, me, task, _ in
            try await c.request(
                "POST", "/v1/tasks/\(task)/result", token: me.token, contentType: safetensors,
                body: [UInt8](repeating: 7, count: 2 << 20))
        },
        BadInput(name: "negative wait", status: 400, code: "invalid_parameter") { c, me, _, _ in
            try await c.request("GET", "/v1/clients/\(me.id)/tasks/next?wait_seconds=-1", token: me.token)
        },
        BadInput(name: "unknown model version", status: 404, code: "unknown_model_version") { c, me, _, _ in
            try await c.request("GET", "/v1/models/77", token: me.token)
        },
        BadInput(name: "unknown route", status: 404, code: "not_found") { c, _, _, _ in
            try await c.request("GET", "/v1/nothing-here")
        },
        BadInput(name: "num_examples Int.max", status: 422, code: "invalid_value") { c, me, task, _ in
            try await c.request(
                "POST", "/v1/tasks/\(task)/result", token: me.token, contentType: safetensors,
                body: fit(trained, examples: String(Int.max)))
        },
        BadInput(name: "num_examples above the limit", status: 422, code: "invalid_value") { c, me, task, _ in
            try await c.request(
                "POST", "/v1/tasks/\(task)/result", token: me.token, contentType: safetensors,
                body: fit(trained, examples: "100000001"))
        },
        BadInput(name: "num_examples beyond Int64", status: 400, code: "malformed") { c, me, task, _ in
            try await c.request(
                "POST", "/v1/tasks/\(task)/result", token: me.token, contentType: safetensors,
                body: fit(trained, examples: "9223372036854775808"))
        },
        BadInput(name: "num_examples zero", status: 400, code: "malformed") { c, me, task, _ in
            try await c.request(
                "POST", "/v1/tasks/\(task)/result", token: me.token, contentType: safetensors,
                body: fit(trained, examples: "0"))
        },
        BadInput(name: "name of 201 bytes in 2 characters", status: 422, code: "invalid_name") { c, _, _, _ in
            let name = "a" + String(repeating: "\u{301}", count: 100)  // one character, 201 bytes of UTF-8
            return try await c.request(
                "POST", "/v1/clients", contentType: "application/json",
                body: Array(#"{"name":"\#(name)"}"#.utf8))
        },
        BadInput(name: "newline in a name", status: 422, code: "invalid_name") { c, _, _, _ in
            try await c.request(
                "POST", "/v1/clients", contentType: "application/json",
                body: Array(#"{"name":"site\n[critical] forged"}"#.utf8))
        },
        BadInput(name: "NUL in a name", status: 422, code: "invalid_name") { c, _, _, _ in
            try await c.request(
                "POST", "/v1/clients", contentType: "application/json", body: Array(#"{"name":"a\u0000HIDDEN"}"#.utf8))
        },
        BadInput(name: "right-to-left override in a name", status: 422, code: "invalid_name") { c, _, _, _ in
            try await c.request(
                "POST", "/v1/clients", contentType: "application/json",
                body: Array(#"{"name":"admin\u202egnp.exe"}"#.utf8))
        },
        BadInput(name: "name of only a zero-width space", status: 422, code: "invalid_name") { c, _, _, _ in
            try await c.request(
                "POST", "/v1/clients", contentType: "application/json", body: Array(#"{"name":"\u200b"}"#.utf8))
        },
        BadInput(name: "evaluation-style metric name with a newline", status: 422, code: "invalid_value") {
            c, me, task, _ in
            var file = SafeTensorsFile(weights: trained, metadata: [WireProtocol.numExamplesKey: "10"])
            file.metadata[WireProtocol.metricsKey] = #"{"acc\nFORGED":1}"#
            return try await c.request(
                "POST", "/v1/tasks/\(task)/result", token: me.token, contentType: safetensors, body: file.encoded())
        },
        BadInput(name: "failure message over 4 KiB", status: 422, code: "invalid_message") { c, me, task, _ in
            let message = String(repeating: "x", count: 4097)
            return try await c.request(
                "POST", "/v1/tasks/\(task)/failure", token: me.token, contentType: "application/json",
                body: Array(#"{"message":"\#(message)"}"#.utf8))
        },
        BadInput(name: "control character in a failure message", status: 422, code: "invalid_message") {
            c, me, task, _ in
            try await c.request(
                "POST", "/v1/tasks/\(task)/failure", token: me.token, contentType: "application/json",
                body: Array(#"{"message":"oops\u001b[2J"}"#.utf8))
        },
    ]

    @Test(arguments: badInputs)
    func badInputIsRefusedAndChangesNothing(_ input: BadInput) async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration(clients: 2)) { coordinator in
            let me = try await coordinator.register("me")
            let other = try await coordinator.register("other")
            let taskResponse = try await coordinator.request(
                "GET", "/v1/clients/\(me.id)/tasks/next?wait_seconds=5", token: me.token)
            let task = try JSONDecoder().decode(WireProtocol.TaskMessage.self, from: Data(taskResponse.body))
            let before = try await coordinator.status()

            let response = try await input.send(coordinator, me, task.taskID, other)
            #expect(response.status == input.status, "\(input.name): \(response.text)")
            #expect(response.errorCode == input.code, "\(input.name): \(response.text)")
            #expect(response.header("content-type") == "application/json")

            let after = try await coordinator.status()
            #expect(after == before, "\(input.name) changed the federation")
            // The task is still open: a valid result is still accepted and the round commits.
            let valid = try await coordinator.request(
                "POST", "/v1/tasks/\(task.taskID)/result", token: me.token, contentType: Self.safetensors,
                body: Self.fit(Self.trained))
            #expect(valid.status == 202, "\(valid.text)")
        }
    }

    @Test func resultAfterTheRoundClosedIsLate() async throws {
        let configuration = RunningCoordinator.configuration(clients: 2, fitTimeout: .seconds(5), maxRounds: 1)
        let clock = ManualClock()
        try await RunningCoordinator.with(configuration: configuration, clock: clock) { coordinator in
            let fast = try await coordinator.register("fast")
            let slow = try await coordinator.register("slow")
            var tasks: [String] = []
            for client in [fast, slow] {
                let response = try await coordinator.request(
                    "GET", "/v1/clients/\(client.id)/tasks/next?wait_seconds=5", token: client.token)
                tasks.append(try JSONDecoder().decode(WireProtocol.TaskMessage.self, from: Data(response.body)).taskID)
            }
            let accepted = try await coordinator.request(
                "POST", "/v1/tasks/\(tasks[0])/result", token: fast.token, contentType: Self.safetensors,
                body: Self.fit(Self.trained))
            #expect(accepted.status == 202)
            // `slow` stays within the liveness timeout but misses the 5 s deadline. The deadline passes on the
            // manual clock, only after `fast` answered, however loaded the machine is.
            clock.advance(by: .seconds(5))
            await coordinator.driver.tick()
            _ = try await coordinator.waitForStatus { $0.committedRounds == 1 }
            let late = try await coordinator.request(
                "POST", "/v1/tasks/\(tasks[1])/result", token: slow.token, contentType: Self.safetensors,
                body: Self.fit(Self.trained))
            #expect(late.status == 409 && late.errorCode == "late", "\(late.text)")
            #expect(try await coordinator.status().modelVersion == 2)
        }
    }

    @Test func longPollAnswersNoContentWhenNothingArrives() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration(clients: 2)) { coordinator in
            let lonely = try await coordinator.register("lonely")
            let start = ContinuousClock.now
            let response = try await coordinator.request(
                "GET", "/v1/clients/\(lonely.id)/tasks/next?wait_seconds=0.3", token: lonely.token)
            #expect(response.status == 204)
            #expect(start.duration(to: .now) >= .milliseconds(250), "the poll parked until its wait ran out")
            #expect(try await coordinator.status().clientsConnected == 1)
        }
    }

    @Test func absurdWaitIsClampedToTheLongestPoll() async throws {
        var configuration = RunningCoordinator.configuration(clients: 2)
        configuration.maxLongPoll = .milliseconds(300)
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let lonely = try await coordinator.register("lonely")
            let response = try await coordinator.request(
                "GET", "/v1/clients/\(lonely.id)/tasks/next?wait_seconds=1e300", token: lonely.token)
            #expect(response.status == 204)
        }
    }

    @Test func healthAndReadiness() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration()) { coordinator in
            let health = try await coordinator.request("GET", "/healthz")
            let readiness = try await coordinator.request("GET", "/readyz")
            #expect(health.status == 200 && readiness.status == 200)
        }
    }

}
