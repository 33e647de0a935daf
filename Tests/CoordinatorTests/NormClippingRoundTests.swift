@testable import Coordinator
import FederationCore
import Foundation
import RondoTestSupport
import Testing

/// `--clip-update-norm`: a far update is accepted, scaled down to the clip norm before it is averaged, and
/// counted; `--max-update-norm` still refuses what lies beyond it.
@Suite struct NormClippingRoundTests {
    /// The test model with every weight set to `value` (the base has them at 0) and the bias unchanged.
    static func weights(all value: Float) -> [UInt8] {
        ClientAPITests.fit(
            ModelWeights([
                "weight": Tensor(shape: [2, 3], values: [Float](repeating: value, count: 6)),
                "bias": Tensor(shape: [2], values: [0, 0]),
            ]))
    }

    @Test func aFarUpdateIsClippedCountedAndCommitted() async throws {
        var configuration = RunningCoordinator.configuration()
        configuration.rounds.clipNorm = 1
        configuration.rounds.validator = UpdateValidator(maxUpdateNorm: 100)
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let client = try await coordinator.register("far")
            let refused = try await coordinator.nextTask(client)
            let refusal = try await coordinator.request(
                "POST", "/v1/tasks/\(refused.taskID)/result", token: client.token,
                contentType: WireProtocol.safetensorsMediaType, body: Self.weights(all: 50))
            #expect(refusal.status == 422 && refusal.errorCode == "norm_too_large", "\(refusal.text)")

            // Δ = 3 in each of six weights: norm √54 ≈ 7.35, scaled down to 1.
            let answer = try await coordinator.request(
                "POST", "/v1/tasks/\(refused.taskID)/result", token: client.token,
                contentType: WireProtocol.safetensorsMediaType, body: Self.weights(all: 3))
            #expect(answer.status == 202, "\(answer.text)")
            let status = try await coordinator.waitForStatus { $0.committedRounds == 1 }
            let model = try SafeTensorsFile.decode(
                try await coordinator.driver.store.bytes(version: status.modelVersion)
            ).weights
            let expected = 3 / 54.0.squareRoot()
            #expect(model["weight"]!.doubleValues.allSatisfy { abs($0 - expected) < 1e-6 }, "\(model["weight"]!)")
            #expect(try await coordinator.metricValue("rondo_updates_clipped_total") == 1)
            let view = try await coordinator.request("GET", "/v1/status", token: RunningCoordinator.adminToken)
            #expect(view.text.contains(#""clip_update_norm":1"#), "\(view.text)")
        }
    }
}
