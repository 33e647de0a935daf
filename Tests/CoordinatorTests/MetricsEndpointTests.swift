@testable import Coordinator
import FederationCore
import FederationTelemetry
import Foundation
import RondoTestSupport
import Testing

/// `/metrics` of a live coordinator that ran rounds, checked by Prometheus' own `promtool`.
@Suite struct MetricsEndpointTests {
    static func scrape(_ coordinator: RunningCoordinator) async throws -> String {
        let response = try await coordinator.request("GET", "/metrics")
        #expect(response.status == 200 && response.header("content-type")?.hasPrefix("text/plain") == true)
        return response.text
    }

    /// Series lines (not comments) of an exposition text.
    static func series(_ text: String) -> [Substring] {
        text.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.isEmpty }
    }

    @Test func metricsAfterRoundsPassPromtoolAndCoverTheCatalogue() async throws {
        var configuration = RunningCoordinator.configuration(fractionEvaluate: 1)
        // Goal-count selection (of the one client), so the selection metrics have samples too.
        configuration.rounds.selection.goal = SelectionGoal(count: 1, overSelection: 1)
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let client = try await coordinator.register("site")
            for round in 1...2 {
                try await AdminAPITests.answerNextTask(coordinator, client, with: AdminAPITests.weights(Float(round)))
                try await AdminAPITests.answerEvaluation(coordinator, client, accuracy: 0.5 + Double(round) / 10)
                _ = try await coordinator.waitForStatus { $0.committedRounds == round }
            }
            // A refusal and a rollback, so their counters move.
            _ = try await coordinator.request(
                "POST", "/v1/tasks/r99-f1/result", token: client.token, contentType: WireProtocol.safetensorsMediaType,
                body: [1, 2, 3])
            _ = try await coordinator.request(
                "POST", "/v1/checkpoints/2/rollback", token: RunningCoordinator.adminToken,
                contentType: "application/json",
                body: Array(#"{"reason":"drill"}"#.utf8))
            _ = try await coordinator.request("GET", "/v1/models/current", token: client.token)

            let text = try await Self.scrape(coordinator)
            let file = coordinator.directory + "/metrics.txt"
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            let check = try await ChildProcess.runRondoLike("/bin/sh", ["-c", "promtool check metrics < '\(file)'"])
            #expect(check.status == 0 && check.output.isEmpty, "promtool: \(check.output)")

            for definition in MetricCatalogue.all {
                #expect(
                    text.contains("# TYPE \(definition.name) \(definition.kind.rawValue)"), "\(definition.name) missing"
                )
            }
            #expect(
                text.contains(#"rondo_rounds_total{outcome="committed"} 2"#)
                    || text.contains(#"rondo_rounds_total{outcome="committed"} 3"#))
            #expect(text.contains(#"rondo_rollbacks_total{trigger="manual"} 1"#))
            #expect(text.contains(#"rondo_result_rejections_total{reason="unknown_task"} 1"#))
            #expect(text.contains(#"route="/v1/clients/{id}/tasks/next""#))
            #expect(!text.contains(client.id), "no label holds a client id")
            #expect(text.contains("process_resident_memory_bytes"))
        }
    }

    @Test func seriesDoNotGrowWithClients() async throws {
        let clock = ManualClock()
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration(clients: 5000), clock: clock)
        {
            coordinator in
            // Warm up every route the loop below uses, so only clients could add series afterwards.
            for index in 0..<10 {
                let client = try await coordinator.register("warm-\(index)")
                _ = try await coordinator.request("POST", "/v1/clients/\(client.id)/heartbeat", token: client.token)
            }
            _ = try await Self.scrape(coordinator)
            let beforeSeries = Self.series(try await Self.scrape(coordinator))
            let before = beforeSeries.count
            for index in 0..<1000 {
                let client = try await coordinator.register("site-\(index)")
                if index % 100 == 0 {
                    _ = try await coordinator.request("POST", "/v1/clients/\(client.id)/heartbeat", token: client.token)
                }
            }
            // The client gauges refresh once a second: let a second pass and tick.
            clock.advance(by: .seconds(1))
            await coordinator.driver.tick()
            let after = Self.series(try await Self.scrape(coordinator))
            let names = Set(after.map { $0.split(separator: " ").first ?? "" }).subtracting(
                beforeSeries.map { $0.split(separator: " ").first ?? "" })
            #expect(after.count == before, "series grew from \(before) to \(after.count): \(names.sorted())")
            #expect(after.contains { $0.hasPrefix("rondo_clients_registered 1010") })
        }
    }
}
