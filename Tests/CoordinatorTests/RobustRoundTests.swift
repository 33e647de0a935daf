@testable import Coordinator
import FederationCore
import Foundation
import RondoTestSupport
import Testing

/// A robust round end to end: uploads stay in their spool files until training closes, and the median is read
/// back from them block by block (the tensor spans two blocks and two tensors are interleaved in each file).
@Suite struct RobustRoundTests {
    static let count = 70_000

    static func model(_ w: [Float], _ b: [Float]) -> ModelWeights {
        ModelWeights(["w": Tensor(shape: [count], values: w), "b": Tensor(shape: [3], values: b)])
    }

    @Test func theMedianOfSpooledUploadsIsTakenAcrossBlocksAndTensors() async throws {
        var configuration = RunningCoordinator.configuration(clients: 3, minFitResults: 3, maxUpdateBytes: 4 << 20)
        configuration.rounds.strategy = try AggregationStrategy(name: "fedmedian")
        let initial = Self.model([Float](repeating: 0, count: Self.count), [0, 0, 0])
        try await RunningCoordinator.with(configuration: configuration, initialWeights: initial) { coordinator in
            var generator = SeededRandomNumberGenerator(seed: 5)
            let uploads = (0..<3).map { _ in
                Self.model(
                    (0..<Self.count).map { _ in Float.random(in: -1...1, using: &generator) },
                    (0..<3).map { _ in Float.random(in: -1...1, using: &generator) })
            }
            var clients: [(id: String, token: String)] = []
            for index in 0..<3 { clients.append(try await coordinator.register("site-\(index)")) }
            for (client, weights) in zip(clients, uploads) {
                let task = try await coordinator.nextTask(client)
                let answer = try await coordinator.request(
                    "POST", "/v1/tasks/\(task.taskID)/result", token: client.token,
                    contentType: WireProtocol.safetensorsMediaType, body: ClientAPITests.fit(weights))
                #expect(answer.status == 202, "\(answer.text)")
            }
            let status = try await coordinator.waitForStatus { $0.committedRounds == 1 }
            let stored = try SafeTensorsFile.decode(
                try await coordinator.driver.store.bytes(version: status.modelVersion)
            ).weights
            for name in ["w", "b"] {
                let columns = uploads.map { $0[name]!.doubleValues }
                let want = (0..<columns[0].count).map { i in columns.map { $0[i] }.sorted()[1] }
                #expect(stored[name]!.doubleValues == want, "tensor \(name): the middle of three values")
            }
        }
    }
}
