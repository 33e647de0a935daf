import Coordinator
import Foundation
import FederationClient
import FederationCore
import Logging
import RondoTestSupport
import Synchronization
import Testing

/// A trainer that moves every weight by +1 and reports how often it ran.
final class IncrementingTrainer: Trainer {
    let fits = Atomic<Int>(0)
    let evaluations = Atomic<Int>(0)

    func fit(model: ModelWeights, task: TaskContext) async throws -> FitResult {
        fits.add(1, ordering: .relaxed)
        let moved = ModelWeights(
            model.tensors.map { named in
                NamedTensor(
                    name: named.name,
                    tensor: Tensor(shape: named.tensor.shape, values: named.tensor.floatValues.map { $0 + 1 }))
            })
        return FitResult(weights: moved, numExamples: 5, metrics: ["train_loss": 0.5])
    }

    func evaluate(model: ModelWeights, task: TaskContext) async throws -> EvaluationReport {
        evaluations.add(1, ordering: .relaxed)
        return EvaluationReport(loss: 1.5, numExamples: 4, metrics: ["accuracy": 0.75])
    }
}

/// A trainer whose fit always fails.
struct FailingTrainer: Trainer {
    struct Broken: Error {}
    func fit(model: ModelWeights, task: TaskContext) async throws -> FitResult { throw Broken() }
    func evaluate(model: ModelWeights, task: TaskContext) async throws -> EvaluationReport { throw Broken() }
}

@Suite struct FederatedClientTests {
    static var logger: Logger {
        var logger = Logger(label: "test-client")
        logger.logLevel = .critical
        return logger
    }

    /// Runs `client` in the background until `condition` holds for the coordinator's status, then cancels it.
    static func participate<T: Trainer>(
        _ clients: [FederatedClient<T>], on coordinator: RunningCoordinator, within seconds: Int = 20,
        until condition: @escaping (WireProtocol.StatusMessage) -> Bool
    ) async throws -> WireProtocol.StatusMessage {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in clients { group.addTask { try? await client.participate() } }
            defer { group.cancelAll() }
            for _ in 0..<(seconds * 50) {
                let status = try await coordinator.status()
                if condition(status) { return status }
                try await Task.sleep(for: .milliseconds(20))
            }
            Issue.record("condition not reached within \(seconds) s")
            return try await coordinator.status()
        }
    }

    @Test func clientsTrainEvaluateAndTheRoundsCommit() async throws {
        let configuration = RunningCoordinator.configuration(
            clients: 2, minFitResults: 2, fractionEvaluate: 1, maxRounds: 3)
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let trainers = [IncrementingTrainer(), IncrementingTrainer()]
            let clients = trainers.enumerated().map { index, trainer in
                FederatedClient(
                    configuration: .init(coordinatorURL: coordinator.url, name: "site-\(index)"), trainer: trainer,
                    longPoll: .seconds(2), logger: Self.logger)
            }
            let reports = await coordinator.driver.roundReports()
            let status = try await Self.participate(clients, on: coordinator) { $0.phase == .finished }
            #expect(status.committedRounds == 3 && status.modelVersion == 4)
            #expect(trainers.map { $0.fits.load(ordering: .relaxed) } == [3, 3])
            #expect(trainers.map { $0.evaluations.load(ordering: .relaxed) } == [3, 3])
            // Each round moves every weight by +1 from the previous global model.
            let model = await coordinator.driver.currentModel
            #expect(model.weights["bias"]?.floatValues == [3, 3])
            var iterator = reports.makeAsyncIterator()
            let first = try #require(await iterator.next())
            #expect(
                first.evaluation
                    == EvaluationSummary(loss: 1.5, metrics: ["accuracy": 0.75], numExamples: 8, clients: 2))
            #expect(first.fitMetrics == ["train_loss": 0.5])
            // Fit on v1, evaluate candidate v2, fit on v2 (cached), evaluate v3, fit on v3 (cached), evaluate v4:
            // each version crossed the network once.
            #expect(await clients[0].connection.modelDownloads == 4)
        }
    }

    /// The default limits never throttle healthy work: results are bound to tasks, so only refused submissions
    /// spend a client's rate budget. (Before, 3 clients running quick rounds got hundreds of 429s a minute.)
    @Test func aFastHealthyFederationIsNeverThrottled() async throws {
        var configuration = RunningCoordinator.configuration(
            clients: 3, minFitResults: 3, fractionEvaluate: 1, maxRounds: 100)
        configuration.limits = CoordinatorConfiguration.Limits()  // the defaults `rondo serve` runs with
        configuration.limits.registrationsPerSecond = 10_000
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let clients = (0..<3).map { index in
                FederatedClient(
                    configuration: .init(coordinatorURL: coordinator.url, name: "site-\(index)"),
                    trainer: IncrementingTrainer(), longPoll: .seconds(2), logger: Self.logger)
            }
            let status = try await Self.participate(clients, on: coordinator, within: 240) { $0.phase == .finished }
            #expect(status.committedRounds == 100)
            #expect(try await coordinator.metricValue(#"rondo_limit_refusals_total{limit="submit_rate"}"#) ?? 0 == 0)
            let metrics = try await coordinator.request("GET", "/metrics").text
            let throttled = metrics.split(separator: "\n").filter {
                $0.hasPrefix("rondo_http_requests_total{") && $0.contains(#"status="429""#)
            }
            #expect(throttled.isEmpty, "\(throttled)")
        }
    }

    /// Waits (bounded) until `condition` holds for what `recorder` has.
    static func waitFor(_ recorder: LogRecorder, seconds: Int = 20, _ condition: ([LogRecorder.Entry]) -> Bool)
        async throws
    {
        for _ in 0..<(seconds * 50) where !condition(recorder.recorded) { try await Task.sleep(for: .milliseconds(20)) }
    }

    /// `serve --keep-last`: after each commit only the newest versions stay, and never one a ref names.
    @Test func retentionKeepsTheNewestVersionsAndEveryRef() async throws {
        var configuration = RunningCoordinator.configuration(clients: 2, minFitResults: 2, maxRounds: 5)
        configuration.keepLast = 2
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let tag = try await coordinator.request(
                "POST", "/v1/checkpoints/v1/tags", token: RunningCoordinator.adminToken,
                contentType: "application/json", body: Array(#"{"tag":"first"}"#.utf8))
            #expect(tag.status == 200, "\(tag.text)")
            let clients = (0..<2).map { index in
                FederatedClient(
                    configuration: .init(coordinatorURL: coordinator.url, name: "site-\(index)"),
                    trainer: IncrementingTrainer(), longPoll: .seconds(2), logger: Self.logger)
            }
            let status = try await Self.participate(clients, on: coordinator) { $0.phase == .finished }
            #expect(status.committedRounds == 5 && status.modelVersion == 6)
            let list = try await coordinator.request("GET", "/v1/checkpoints", token: RunningCoordinator.adminToken)
            let object = try JSONSerialization.jsonObject(with: Data(list.body)) as? [String: Any]
            let versions = Set((object?["checkpoints"] as? [[String: Any]] ?? []).compactMap { $0["version"] as? Int })
            let refs = object?["refs"] as? [String: Int] ?? [:]
            // v5 and v6 are the newest two; v1 is tagged; `best` has no metric to rank by here (no evaluation).
            #expect(versions == Set([5, 6, 1] + refs.values), "\(versions) \(refs)")
            #expect(versions.count <= 4)
        }
    }

    /// A site's operator learns that the coordinator is unreachable (once, not per retry) and when it is back.
    @Test func anUnreachableCoordinatorIsLoggedOnceAndItsReturnToo() async throws {
        let recorder = LogRecorder()
        let port = try ChildProcess.freePort()
        let client = FederatedClient(
            configuration: .init(coordinatorURL: "http://127.0.0.1:\(port)", name: "patient"),
            trainer: IncrementingTrainer(),
            retry: RetryPolicy(initialDelay: .milliseconds(10), maxDelay: .milliseconds(50)),
            longPoll: .seconds(1), logger: recorder.logger())
        let participation = Task { try? await client.participate() }
        defer { participation.cancel() }
        try await Self.waitFor(recorder) { $0.filter { $0.message == "retrying" }.count >= 20 }
        #expect(recorder.messages(atLeast: .warning) == ["coordinator unreachable"], "one warning, not one per retry")
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration(port: port)) { _ in
            try await Self.waitFor(recorder) { $0.contains { $0.message == "coordinator reachable again" } }
        }
        let back = try #require(recorder.recorded.first { $0.message == "coordinator reachable again" })
        #expect(back.level == .notice && Int(back.metadata["failed_attempts"] ?? "") ?? 0 >= 20, "\(back)")
    }

    /// A throttled client says so, with the coordinator's reason, and says when it is let through.
    @Test func aThrottledClientSaysSo() async throws {
        var configuration = RunningCoordinator.configuration(clients: 2)
        // One registration token every 10 s, bursts of 1: "first" takes it, so the client asking right after is
        // throttled for up to 10 s whatever else loads the machine, then gets through. (Rivals taking each token
        // as it refilled left a race under load: a slow rival let the client through unthrottled.)
        configuration.limits.registrationsPerSecond = 0.1
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            _ = try await coordinator.register("first")
            let recorder = LogRecorder()
            let client = FederatedClient(
                configuration: .init(coordinatorURL: coordinator.url, name: "second"), trainer: IncrementingTrainer(),
                retry: RetryPolicy(initialDelay: .milliseconds(100), maxDelay: .milliseconds(300)),
                longPoll: .seconds(1), logger: recorder.logger())
            let participation = Task { try? await client.participate() }
            defer { participation.cancel() }
            // Generous bounds for a loaded machine; the throttle itself lasts at most 10 s.
            try await Self.waitFor(recorder, seconds: 60) {
                $0.contains { $0.message == "coordinator throttles this client" }
            }
            try await Self.waitFor(recorder, seconds: 60) {
                $0.contains { $0.message == "coordinator no longer throttles this client" }
            }
            let warnings = recorder.recorded.filter { $0.level >= .warning }
            #expect(warnings.map(\.message) == ["coordinator throttles this client"], "\(warnings)")
            #expect(warnings.first?.metadata["error"]?.contains("rate_limited") == true)
        }
    }

    @Test func modelDownloadIsCachedByHash() async throws {
        try await RunningCoordinator.with(configuration: RunningCoordinator.configuration()) { coordinator in
            let connection = CoordinatorConnection(configuration: .init(coordinatorURL: coordinator.url, name: "cache"))
            try await connection.register()
            let current = await coordinator.driver.currentModel
            let first = try await connection.model(version: 1, sha256: current.sha256)
            let second = try await connection.model(version: 1, sha256: current.sha256)
            #expect(first == RunningCoordinator.testModel && second == first)
            #expect(await connection.modelDownloads == 1)
            // A client with nothing cached checks what it downloads against the task's hash.
            let fresh = CoordinatorConnection(configuration: .init(coordinatorURL: coordinator.url, name: "fresh"))
            try await fresh.register()
            await #expect {
                try await fresh.model(version: 1, sha256: String(repeating: "0", count: 64))
            } throws: { ($0 as? FederationClientError)?.code == .invalidResponse }
        }
    }

    @Test func aFailingTrainerIsReportedAsAnErrorDropout() async throws {
        let configuration = RunningCoordinator.configuration(clients: 1, maxRounds: 1)
        try await RunningCoordinator.with(configuration: configuration) { coordinator in
            let reports = await coordinator.driver.roundReports()
            let client = FederatedClient(
                configuration: .init(coordinatorURL: coordinator.url, name: "broken"), trainer: FailingTrainer(),
                longPoll: .seconds(2), logger: Self.logger)
            let status = try await Self.participate([client], on: coordinator) { $0.failedRounds == 1 }
            #expect(status.modelVersion == 1)
            var iterator = reports.makeAsyncIterator()
            let report = try #require(await iterator.next())
            #expect(report.fitDropouts == [.error: 1])
        }
    }

    /// A client that can never succeed ends its service with the reason, instead of retrying forever.
    @Test func aWrongEnrolmentTokenEndsTheServiceAfterOneAttempt() async throws {
        var configuration = RunningCoordinator.configuration(clients: 1, maxRounds: 1)
        configuration.enrolmentToken = "right-enrolment-token-0123456789"
        try await RunningCoordinator.with(configuration: configuration) {
            (coordinator: RunningCoordinator) async throws in
            let client = FederatedClient(
                configuration: .init(
                    coordinatorURL: coordinator.url, name: "wrong-token", enrolmentToken: "wrong-token-0123456789"),
                trainer: IncrementingTrainer(), retry: RetryPolicy(initialDelay: .milliseconds(1), maxAttempts: 20),
                logger: Self.logger)
            await #expect {
                try await client.run()
            } throws: { ($0 as? FederationClientError)?.code == .unauthenticated }
            // One refused registration: twenty retries would have counted twenty.
            #expect(try await coordinator.metricValue("rondo_auth_refusals_total{reason=\"unauthenticated\"}") == 1)
            #expect(try await coordinator.status().clientsRegistered == 0)
        }
    }

    @Test func clientRidesOutACoordinatorRestart() async throws {
        // First coordinator: the client registers there and finishes a round.
        let first = try await RunningCoordinator(configuration: RunningCoordinator.configuration(maxRounds: 1))
        let port = first.port
        let client = FederatedClient(
            configuration: .init(coordinatorURL: first.url, name: "survivor"), trainer: IncrementingTrainer(),
            retry: RetryPolicy(initialDelay: .milliseconds(20), maxDelay: .milliseconds(200)), longPoll: .seconds(1),
            logger: Self.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try? await client.participate() }
            defer { group.cancelAll() }
            while try await first.status().committedRounds < 1 { try await Task.sleep(for: .milliseconds(20)) }
            let oldCredentials = await client.connection.credentials
            await first.stop()
            try? FileManager.default.removeItem(atPath: first.directory)
            try await Task.sleep(for: .milliseconds(300))  // the client now sees refused connections and backs off
            // A new coordinator on the same port knows nothing of the client: it must register again and train.
            try await RunningCoordinator.with(configuration: RunningCoordinator.configuration(port: port, maxRounds: 1))
            { second in
                var status = try await second.status()
                for _ in 0..<500 where status.committedRounds < 1 {
                    try await Task.sleep(for: .milliseconds(20))
                    status = try await second.status()
                }
                #expect(status.committedRounds == 1)
                #expect(await client.connection.credentials != oldCredentials, "registered again")
            }
        }
    }
}
