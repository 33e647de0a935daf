import Coordinator
import FederationCore
import Foundation
import RondoTestSupport
import Testing

/// An upload the coordinator cannot spool (full or failing disk) gets 503 `spool_failed`, is counted as an
/// aborted upload for the dashboard, and leaves the round open for the client to send it again.
@Suite struct SpoolFailureTests {
    @Test func anUnspoolableUploadIs503CountedAndLeavesTheRoundOpen() async throws {
        var configuration = RunningCoordinator.configuration(clients: 1, maxRounds: 1)
        configuration.spoolDirectory = "/nonexistent-rondo-spool-\(UUID().uuidString)"
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let client = try await coordinator.register("a")
            let poll = try await coordinator.request(
                "GET", "/v1/clients/\(client.id)/tasks/next?wait_seconds=10", token: client.token)
            let task = try JSONDecoder().decode(WireProtocol.TaskMessage.self, from: Data(poll.body))
            let upload = try await coordinator.request(
                "POST", "/v1/tasks/\(task.taskID)/result", token: client.token,
                contentType: WireProtocol.safetensorsMediaType,
                body: SafeTensorsFile(weights: RunningCoordinator.testModel, metadata: ["num_examples": "3"]).encoded())
            #expect(upload.status == 503 && upload.errorCode == "spool_failed", "\(upload.text)")
            #expect(try await coordinator.metricValue("rondo_uploads_aborted_total") == 1)
            let status = try await coordinator.status()
            #expect(status.committedRounds == 0 && status.modelVersion == 1, "nothing reached the round")
        }
    }
}
