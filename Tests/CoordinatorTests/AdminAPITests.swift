import Coordinator
import CurlHTTP
import FederationCore
import Foundation
import ModelManager
import RondoTestSupport
import Testing

/// Admin endpoints, rollback and crash-safe resume on a live coordinator with a real SQLite file.
@Suite struct AdminAPITests {
    static let admin = RunningCoordinator.adminToken

    static func weights(_ value: Float) -> ModelWeights {
        ModelWeights([
            "weight": Tensor(shape: [2, 3], values: [Float](repeating: value, count: 6)),
            "bias": Tensor(shape: [2], values: [value, value]),
        ])
    }

    /// Pulls the client's next task and answers it with `weights`; returns the task.
    @discardableResult
    static func answerNextTask(
        _ coordinator: RunningCoordinator, _ client: (id: String, token: String), with weights: ModelWeights
    ) async throws -> WireProtocol.TaskMessage {
        let response = try await coordinator.request(
            "GET", "/v1/clients/\(client.id)/tasks/next?wait_seconds=10", token: client.token)
        let task = try JSONDecoder().decode(WireProtocol.TaskMessage.self, from: Data(response.body))
        let body = FitResult(weights: weights, numExamples: 3).file.encoded()
        let submitted = try await coordinator.request(
            "POST", "/v1/tasks/\(task.taskID)/result", token: client.token,
            contentType: WireProtocol.safetensorsMediaType, body: body)
        #expect(submitted.status == 202, "\(submitted.text)")
        return task
    }

    static let adminPaths = [
        ("GET", "/v1/status"), ("GET", "/v1/rounds"), ("GET", "/v1/rounds/1"), ("GET", "/v1/clients"),
        ("GET", "/v1/checkpoints"), ("GET", "/v1/checkpoints/1"), ("GET", "/v1/checkpoints/1/weights"),
        ("GET", "/v1/events"), ("POST", "/v1/checkpoints/1/rollback"), ("POST", "/v1/checkpoints/1/tags"),
    ]

    @Test func adminEndpointsRefuseMissingAndWrongTokens() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration(clients: 2)) { coordinator in
            let client = try await coordinator.register("not-an-admin")
            for (method, path) in Self.adminPaths {
                for token in [nil, "wrong-token-wrong-token", client.token] {
                    let response = try await coordinator.request(
                        method, path, token: token, contentType: "application/json",
                        body: Array(#"{"reason":"x","tag":"t"}"#.utf8))
                    #expect(
                        response.status == 401 && response.errorCode == "unauthenticated",
                        "\(method) \(path) with \(token ?? "no token")")
                }
            }
            let events = try await coordinator.request("GET", "/v1/events", token: Self.admin)
            #expect(events.status == 200)
        }
    }

    @Test func rollbackThroughTheAPIMovesTheNextRoundsBase() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration()) { coordinator in
            let client = try await coordinator.register("site")
            try await Self.answerNextTask(coordinator, client, with: Self.weights(1))
            _ = try await coordinator.waitForStatus { $0.committedRounds == 1 }
            try await Self.answerNextTask(coordinator, client, with: Self.weights(2))
            _ = try await coordinator.waitForStatus { $0.committedRounds == 2 && $0.modelVersion == 3 }

            // Round 3 is now open on version 3; roll back to version 2.
            let rollback = try await coordinator.request(
                "POST", "/v1/checkpoints/2/rollback", token: Self.admin, contentType: "application/json",
                body: Array(#"{"reason":"round 2 looked wrong"}"#.utf8))
            #expect(rollback.status == 200, "\(rollback.text)")
            #expect(rollback.text.contains(#""from_version":3"#) && rollback.text.contains(#""to_version":2"#))

            let next = try await Self.answerNextTask(coordinator, client, with: Self.weights(9))
            #expect(next.modelVersion == 2, "the round after the rollback trains from version 2")
            let status = try await coordinator.waitForStatus { $0.committedRounds == 3 }
            let round = try await coordinator.request("GET", "/v1/rounds/\(next.round)", token: Self.admin)
            let record = try JSONDecoder().decode(RoundView.self, from: Data(round.body))
            #expect(
                record.baseVersion == 2 && record.status == .committed && record.resultVersion == status.modelVersion)
            let aborted = try JSONDecoder().decode(
                RoundView.self,
                from: Data(try await coordinator.request("GET", "/v1/rounds/3", token: Self.admin).body))
            #expect(aborted.status == .aborted, "the round open during the rollback was aborted")

            let events = try await coordinator.request("GET", "/v1/events?kind=rollback", token: Self.admin)
            #expect(events.text.contains(#""actor":"admin:admin""#) && events.text.contains("round 2 looked wrong"))

            let unknown = try await coordinator.request(
                "POST", "/v1/checkpoints/99/rollback", token: Self.admin, contentType: "application/json",
                body: Array(#"{"reason":"x"}"#.utf8))
            #expect(unknown.status == 404 && unknown.errorCode == "unknown_checkpoint")
            let noReason = try await coordinator.request(
                "POST", "/v1/checkpoints/2/rollback", token: Self.admin, contentType: "application/json",
                body: Array(#"{"reason":" "}"#.utf8))
            #expect(noReason.status == 422)
        }
    }

    @Test func aPoisonedRoundIsRejectedByTheGuardAndCurrentStays() async throws {
        let configuration = RunningCoordinator.configuration(
            fractionEvaluate: 1, regressionGuard: RegressionGuard(metric: "accuracy", maxRegression: 0.05))
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let client = try await coordinator.register("site")
            // Round 1: a good model, evaluated at 0.9 accuracy, becomes current and best.
            try await Self.answerNextTask(coordinator, client, with: Self.weights(1))
            try await Self.answerEvaluation(coordinator, client, accuracy: 0.9)
            _ = try await coordinator.waitForStatus { $0.committedRounds == 1 }
            // Round 2: a poisoned update whose model evaluates at 0.5.
            try await Self.answerNextTask(coordinator, client, with: Self.weights(-50))
            try await Self.answerEvaluation(coordinator, client, accuracy: 0.5)
            let status = try await coordinator.waitForStatus { $0.failedRounds == 1 }
            #expect(status.modelVersion == 2, "current stays on the last good version")
            let store = try await CheckpointStore(configuration: .init(path: coordinator.directory + "/rondo.db"))
            #expect(try await store.checkpoint(version: 3)?.status == .rejected)
            let refs = try await store.refs()
            #expect(refs["best"] == 2 && refs["current"] == 2)
            #expect(try await store.round(2)?.status == .rejected)
            let event = try #require(try await store.events(kind: .guardRejected).first)
            #expect(event.version == 3 && event.detail["reason"]?.contains("accuracy 0.5") == true)
            #expect(try await store.checkpoint(version: 2)?.metrics.clients == 1)
        }
    }

    static func answerEvaluation(
        _ coordinator: RunningCoordinator, _ client: (id: String, token: String), accuracy: Double
    ) async throws {
        let response = try await coordinator.request(
            "GET", "/v1/clients/\(client.id)/tasks/next?wait_seconds=10", token: client.token)
        let task = try JSONDecoder().decode(WireProtocol.TaskMessage.self, from: Data(response.body))
        #expect(task.kind == .evaluate)
        let body = #"{"loss": 1.0, "num_examples": 20, "metrics": {"accuracy": \#(accuracy)}}"#
        let submitted = try await coordinator.request(
            "POST", "/v1/tasks/\(task.taskID)/result", token: client.token, contentType: "application/json",
            body: Array(body.utf8))
        #expect(submitted.status == 202, "\(submitted.text)")
    }

    @Test func checkpointsClientsAndWeightsAreReadable() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration()) { coordinator in
            let client = try await coordinator.register("site")
            try await Self.answerNextTask(coordinator, client, with: Self.weights(4))
            _ = try await coordinator.waitForStatus { $0.committedRounds == 1 }
            let list = try await coordinator.request("GET", "/v1/checkpoints", token: Self.admin)
            #expect(list.text.contains(#""current":2"#), "\(list.text)")
            let weights = try await coordinator.request("GET", "/v1/checkpoints/2/weights", token: Self.admin)
            #expect(try SafeTensorsFile.decode(weights.body).weights == Self.weights(4))
            let tag = try await coordinator.request(
                "POST", "/v1/checkpoints/2/tags", token: Self.admin, contentType: "application/json",
                body: Array(#"{"tag":"production"}"#.utf8))
            #expect(tag.status == 200)
            let detail = try await coordinator.request("GET", "/v1/checkpoints/2", token: Self.admin)
            #expect(detail.text.contains(#""production""#))
            let clients = try await coordinator.request("GET", "/v1/clients", token: Self.admin)
            #expect(clients.text.contains(client.id) && !clients.text.contains("token"), "no token hash is exposed")
        }
    }

    @Test func aRestartResumesFromCurrentAndContinuesNumbering() async throws {
        let directory = RunningCoordinator.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = RunningCoordinator.configuration()
        let first = try await RunningCoordinator(configuration: configuration, in: directory)
        let client = try await first.register("site")
        try await Self.answerNextTask(first, client, with: Self.weights(3))
        _ = try await first.waitForStatus { $0.committedRounds == 1 && $0.round == 2 }  // round 2 is open
        await first.stop()

        let second = try await RunningCoordinator(configuration: configuration, in: directory)
        let status = try await second.status()
        #expect(status.modelVersion == 2, "resumes from current")
        let heartbeat = try await second.request("POST", "/v1/clients/\(client.id)/heartbeat", token: client.token)
        #expect(heartbeat.status == 204, "the client's token survives the restart")
        let task = try await Self.answerNextTask(second, client, with: Self.weights(5))
        #expect(task.round == 3 && task.modelVersion == 2, "numbering continues after the interrupted round 2")
        _ = try await second.waitForStatus { $0.committedRounds == 1 }
        let interrupted = try JSONDecoder().decode(
            RoundView.self, from: Data(try await second.request("GET", "/v1/rounds/2", token: Self.admin).body))
        // A graceful stop with a zero drain timeout aborts the open round itself and says so (SIGKILL leaves
        // it to the restart: see the crash drill).
        #expect(interrupted.status == .aborted && interrupted.detail == "coordinator shutting down (drain timeout)")
        await second.stop()
    }
}
