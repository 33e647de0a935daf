import FederationClient
import FederationCore
import Foundation
import Logging
import RondoTestSupport
import Testing

@testable import Coordinator
@testable import ModelManager

/// A client whose task's model cannot be downloaded answers the task as failed. Left unanswered, the task is
/// handed out again at once and the client would poll and download in a tight loop until the deadline.
@Suite struct RefusedModelDownloadTests {
    /// Answers with the model it got; never reached here, since the model cannot be downloaded.
    struct EchoTrainer: Trainer {
        func fit(model: ModelWeights, task: TaskContext) async throws -> FitResult {
            FitResult(weights: model, numExamples: 1)
        }

        func evaluate(model: ModelWeights, task: TaskContext) async throws -> EvaluationReport {
            EvaluationReport(loss: 0, numExamples: 1)
        }
    }

    @Test func aTaskWhoseModelIsRefusedIsReportedFailed() async throws {
        let configuration = RunningCoordinator.configuration(clients: 1, fitTimeout: .seconds(60), maxRounds: 1)
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            // The stored bytes of the model no longer match its SHA-256: downloads answer 409 checkpoint_corrupt.
            _ = try await coordinator.driver.store.withConnection {
                try $0.query("UPDATE checkpoint_chunks SET data = ? WHERE version = 1", [.blob([1, 2, 3])])
            }
            // Downloads come from memory while the engine holds the version; make them read the damaged store.
            await coordinator.driver.forgetServedModels()
            var logger = Logger(label: "refused-model-client")
            logger.logLevel = .critical
            let client = FederatedClient(
                configuration: .init(coordinatorURL: coordinator.url, name: "site"), trainer: EchoTrainer(),
                longPoll: .seconds(2), logger: logger)
            let status = try await withThrowingTaskGroup(of: WireProtocol.StatusMessage?.self) { group in
                group.addTask {
                    try? await client.participate()
                    return nil
                }
                group.addTask { try await coordinator.waitForStatus { $0.failedRounds == 1 } }
                defer { group.cancelAll() }
                while let next = try await group.next() {
                    if let status = next { return status }
                }
                return try await coordinator.status()
            }
            #expect(status.failedRounds == 1, "the round ended long before its 60 s deadline")
            let round = try #require(try await coordinator.driver.history.round(1))
            #expect(round.status == .failed && round.dropped == 1)
            #expect(
                try await coordinator.metricValue(#"rondo_dropouts_total{kind="fit",reason="error"}"#) == 1,
                "the client reported the task failed")
        }
    }
}
