@testable import Coordinator
import FederationCore
import Foundation
import RondoTestSupport
import Testing

/// Big uploads take time, and with `maxConcurrentUploads` some wait for a slot, unread. A client whose upload
/// streams or waits is alive: it is not dropped as silent, and its result counts once it is through.
@Suite struct UploadLivenessTests {
    static let model = ModelWeights(["w": .zeros(shape: [250_000])])

    static func body(_ value: Float) -> [UInt8] {
        SafeTensorsFile(
            weights: ModelWeights(["w": Tensor(shape: [250_000], values: [Float](repeating: value, count: 250_000))]
            ),
            metadata: ["num_examples": "1"]
        ).encoded()
    }

    /// The client's task, long-polling again while none came (a loaded test run may start the round late).
    static func task(_ coordinator: RunningCoordinator, _ client: (id: String, token: String)) async throws
        -> WireProtocol.TaskMessage
    {
        for _ in 0..<6 {
            let response = try await coordinator.request(
                "GET", "/v1/clients/\(client.id)/tasks/next?wait_seconds=10", token: client.token)
            if response.status == 200 {
                return try JSONDecoder().decode(WireProtocol.TaskMessage.self, from: Data(response.body))
            }
        }
        throw NoTask()
    }

    /// Until the coordinator holds `task`'s upload (its head was handled): from then on it counts as liveness.
    static func waitUntilUploading(_ task: TaskID, _ coordinator: RunningCoordinator) async throws {
        let deadline = ContinuousClock.now.advanced(by: .seconds(20))
        while await !coordinator.driver.uploadingTasks.contains(task), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    static func head(_ task: WireProtocol.TaskMessage, token: String, length: Int) -> String {
        "POST /v1/tasks/\(task.taskID)/result HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n"
            + "Content-Type: application/vnd.safetensors\r\nContent-Length: \(length)\r\n\r\n"
    }

    @Test func anUploadWaitingForASlotLongerThanTheLivenessTimeoutStillCounts() async throws {
        var configuration = RunningCoordinator.configuration(
            clients: 2, minFitResults: 2, fitTimeout: .seconds(60), maxRounds: 1, maxUpdateBytes: 2 << 20)
        // Long enough that a loaded machine (tests run in parallel, in this process) never silences a client
        // between its heartbeat and its upload's head reaching the coordinator.
        configuration.rounds.livenessTimeout = .seconds(8)
        configuration.limits.maxConcurrentUploads = 1
        try await RunningCoordinator.with(configuration: configuration, initialWeights: Self.model) { coordinator in
            // Registered at once, so the round that starts with the second cannot find the first already silent.
            async let registeredA = coordinator.register("a")
            async let registeredB = coordinator.register("b")
            let (a, b) = try await (registeredA, registeredB)
            // Both long-poll at once: a client waiting for its task is alive, one that waits its turn is not.
            async let pollA = Self.task(coordinator, a)
            async let pollB = Self.task(coordinator, b)
            let (taskA, taskB) = try await (pollA, pollB)
            for client in [a, b] {
                _ = try await coordinator.request("POST", "/v1/clients/\(client.id)/heartbeat", token: client.token)
            }
            // A takes the only slot and trickles its 1 MB body over about 16 s, two liveness timeouts.
            let bodyA = Self.body(1)
            let slow = try RawConnection(port: coordinator.port)
            slow.send(Self.head(taskA, token: a.token, length: bodyA.count))
            slow.send(Array(bodyA[0..<(16 << 10)]))
            try await Self.waitUntilUploading(TaskID(taskA.taskID), coordinator)
            // B's upload waits for the slot, unread, and B sends nothing else meanwhile.
            let bodyB = Self.body(3)
            let waiting = try RawConnection(port: coordinator.port, receiveTimeout: .seconds(60))
            waiting.send(Self.head(taskB, token: b.token, length: bodyB.count))
            // The send blocks while the coordinator leaves the body unread: keep it off the test's task pool.
            Thread { _ = waiting.send(bodyB) }.start()
            try await Self.waitUntilUploading(TaskID(taskB.taskID), coordinator)
            var sent = 16 << 10
            while sent < bodyA.count {
                let end = min(sent + (16 << 10), bodyA.count)
                slow.send(Array(bodyA[sent..<end]))
                sent = end
                try await Task.sleep(for: .milliseconds(250))
            }
            let answerA = await slow.readResponse()
            #expect(answerA?.status == 202, "\(String(describing: answerA))")
            #expect(await waiting.readResponse()?.status == 202, "B waited past the liveness timeout, not dropped")
            let status = try await coordinator.waitForStatus { $0.committedRounds == 1 }
            #expect(status.committedRounds == 1)
            let round = try #require(try await coordinator.driver.history.round(1))
            #expect(round.answered == 2 && round.dropped == 0)
            // Equal weights: the mean of 1 and 3.
            #expect(await coordinator.driver.currentModel.weights["w"]?.floatValues.allSatisfy { $0 == 2 } == true)
        }
    }

    /// One upload per task at a time: a client cannot hold every upload slot with copies of its own result.
    @Test func aSecondUploadForTheSameTaskIsRefusedWhileTheFirstStreams() async throws {
        var configuration = RunningCoordinator.configuration(
            clients: 1, minFitResults: 1, maxRounds: 1, maxUpdateBytes: 2 << 20)
        configuration.limits.maxConcurrentUploads = 2
        try await RunningCoordinator.with(configuration: configuration, initialWeights: Self.model) { coordinator in
            let a = try await coordinator.register("a")
            let task = try await Self.task(coordinator, a)
            let body = Self.body(1)
            let first = try RawConnection(port: coordinator.port)
            first.send(Self.head(task, token: a.token, length: body.count))
            first.send(Array(body[0..<(16 << 10)]))
            // Until the first upload is under way (a fixed sleep was too short on a loaded machine).
            let streaming = ContinuousClock.now.advanced(by: .seconds(20))
            while await !coordinator.driver.uploadingTasks.contains(TaskID(task.taskID)),
                ContinuousClock.now < streaming
            {
                try await Task.sleep(for: .milliseconds(20))
            }
            let second = try await coordinator.request(
                "POST", "/v1/tasks/\(task.taskID)/result", token: a.token, contentType: "application/vnd.safetensors",
                body: body)
            #expect(second.status == 409 && second.errorCode == "duplicate", "\(second.text)")
            first.send(Array(body[(16 << 10)...]))
            #expect(await first.readResponse()?.status == 202, "the first upload is unaffected")
            #expect(try await coordinator.waitForStatus { $0.committedRounds == 1 }.committedRounds == 1)
        }
    }
}

/// No task came within a minute of long-polls.
struct NoTask: Error {}
