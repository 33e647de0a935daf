import Coordinator
import FederationClient
import FederationCore
import FederationTelemetry
import Foundation
import Logging
import RondoTestSupport
import Testing

/// A round as one trace, exported over OTLP/HTTP and decoded by the official opentelemetry-proto package.
@Suite struct RoundTraceTests {
    struct ShiftingTrainer: Trainer {
        func fit(model: ModelWeights, task: TaskContext) async throws -> FitResult {
            FitResult(
                weights: ModelWeights(
                    model.tensors.map {
                        NamedTensor(
                            name: $0.name,
                            tensor: Tensor(shape: $0.tensor.shape, values: $0.tensor.floatValues.map { $0 + 1 }))
                    }),
                numExamples: 4)
        }
        func evaluate(model: ModelWeights, task: TaskContext) async throws -> EvaluationReport {
            EvaluationReport(loss: 1, numExamples: 4, metrics: ["accuracy": 0.5])
        }
    }

    struct BrokenTrainer: Trainer {
        struct Broken: Error {}
        func fit(model: ModelWeights, task: TaskContext) async throws -> FitResult { throw Broken() }
        func evaluate(model: ModelWeights, task: TaskContext) async throws -> EvaluationReport { throw Broken() }
    }

    @Test func aRoundIsOneTraceWithPhaseTaskAndClientSpans() async throws {
        let python = ChildProcess.repositoryRoot + "/.venv/bin/python"
        try #require(
            FileManager.default.isExecutableFile(atPath: python), "run `make venv` (part of `make test`) first")
        let receiver = try ChildProcess(
            python, [ChildProcess.repositoryRoot + "/Tests/Harness/otlp_receiver.py", "ok"])
        defer { receiver.kill() }
        try await receiver.waitForOutput("listening ")
        let port = receiver.collectedOutput.split(separator: "\n").first { $0.hasPrefix("listening ") }!.dropFirst(
            "listening ".count)
        var logger = Logger(label: "trace-test")
        logger.logLevel = .critical
        let exporterMetrics = CatalogueMetricsFactory()
        let exporter = OTLPHTTPExporter(
            configuration: .init(endpoint: "http://127.0.0.1:\(port)/v1/traces", serviceName: "rondo-test"),
            metricsFactory: exporterMetrics, logger: logger)
        let tracer = RondoTracer(sink: exporter.enqueue)

        let configuration = RunningCoordinator.configuration(clients: 2, fractionEvaluate: 1, maxRounds: 1)
        let coordinator = try await RunningCoordinator(configuration: configuration, tracer: tracer)
        let good = FederatedClient(
            configuration: .init(coordinatorURL: coordinator.url, name: "good"), trainer: ShiftingTrainer(),
            longPoll: .seconds(1), logger: logger, tracer: tracer)
        let broken = FederatedClient(
            configuration: .init(coordinatorURL: coordinator.url, name: "broken"), trainer: BrokenTrainer(),
            longPoll: .seconds(1), logger: logger, tracer: tracer)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try? await good.participate() }
            group.addTask { try? await broken.participate() }
            _ = try await coordinator.waitForStatus { $0.phase == .finished }
            group.cancelAll()
        }
        await coordinator.stop()
        try? FileManager.default.removeItem(atPath: coordinator.directory)
        await exporter.flush()
        #expect(exporterMetrics.sampleValue("rondo_trace_spans_dropped_total") == 0)
        try await receiver.waitForOutput(#""name": "rondo.round""#)

        let spans = try receiver.collectedOutput.split(separator: "\n").filter { $0.hasPrefix("{") }.map {
            try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        func named(_ name: String) -> [[String: Any]] { spans.filter { $0["name"] as? String == name } }
        let root = try #require(named("rondo.round").first)
        let traceID = try #require(root["trace_id"] as? String)
        #expect(root["parent_span_id"] as? String == "")
        let rootAttributes = root["attributes"] as? [String: Any]
        #expect(
            rootAttributes?["rondo.round"] as? Int == 1 && rootAttributes?["rondo.outcome"] as? String == "committed")
        #expect(rootAttributes?["rondo.strategy"] as? String == "fedavg", "the round span names its strategy")
        #expect(spans.allSatisfy { $0["trace_id"] as? String == traceID }, "one round, one trace")

        let rootID = root["span_id"] as? String
        let phases = ["round.fit", "round.aggregate", "round.evaluate", "checkpoint.commit"]
        for phase in phases {
            #expect(
                named(phase).count == 1 && named(phase).first?["parent_span_id"] as? String == rootID,
                "\(phase) under the root")
        }
        let phaseIDs = Set(phases.compactMap { named($0).first?["span_id"] as? String })
        let tasks = named("client.task")
        #expect(tasks.count == 4, "two fit and two evaluate tasks")
        #expect(tasks.allSatisfy { phaseIDs.contains($0["parent_span_id"] as? String ?? "") })
        let taskIDs = Set(tasks.compactMap { $0["span_id"] as? String })
        for name in ["client.download", "client.fit", "client.upload"] {
            #expect(
                !named(name).isEmpty
                    && named(name).allSatisfy { taskIDs.contains($0["parent_span_id"] as? String ?? "") },
                "\(name) under a task")
        }
        let failedTasks = tasks.filter { $0["status_code"] as? Int == 2 }
        #expect(!failedTasks.isEmpty, "the broken client's task span is marked failed")
        #expect(
            failedTasks.allSatisfy {
                ($0["attributes"] as? [String: Any])?["rondo.dropout.reason"] as? String == "error"
            })
        #expect(
            named("client.fit").contains { $0["status_code"] as? Int == 2 }, "the failing train span is marked failed")
    }

    @Test func roundsCompleteWhenTheReceiverIsDownAndTheLossIsCounted() async throws {
        var logger = Logger(label: "trace-test")
        logger.logLevel = .critical
        let exporterMetrics = CatalogueMetricsFactory()
        let exporter = OTLPHTTPExporter(
            configuration: .init(
                endpoint: "http://127.0.0.1:\(try ChildProcess.freePort())/v1/traces", maxQueueSize: 10,
                exportTimeout: .milliseconds(200), maxRetries: 1),
            metricsFactory: exporterMetrics, logger: logger)
        let configuration = RunningCoordinator.configuration(clients: 1, fractionEvaluate: 1, maxRounds: 3)
        let coordinator = try await RunningCoordinator(
            configuration: configuration, tracer: RondoTracer(sink: exporter.enqueue))
        defer { try? FileManager.default.removeItem(atPath: coordinator.directory) }
        let client = FederatedClient(
            configuration: .init(coordinatorURL: coordinator.url, name: "site"), trainer: ShiftingTrainer(),
            longPoll: .seconds(1), logger: logger, tracer: RondoTracer(sink: exporter.enqueue))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await exporter.run() }
            group.addTask { try? await client.participate() }
            let status = try await coordinator.waitForStatus { $0.phase == .finished }
            #expect(status.committedRounds == 3, "rounds do not wait for the trace receiver")
            await coordinator.stop()
            group.cancelAll()
        }
        await exporter.flush()
        #expect(exporter.queuedCount == 0)
        let dropped = try #require(exporterMetrics.sampleValue("rondo_trace_spans_dropped_total"))
        #expect(dropped > 10, "the small queue overflowed and failed exports dropped their spans (\(dropped))")
        #expect((exporterMetrics.sampleValue("rondo_trace_export_failures_total") ?? 0) >= 1)
        #expect(exporterMetrics.sampleValue("rondo_trace_spans_exported_total") == 0)
    }
}
