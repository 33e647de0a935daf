import FederationTelemetry
import Foundation
import Logging
import RondoTestSupport
import ServiceLifecycle
import Testing

/// The exporter against a real receiver that decodes with the official `opentelemetry-proto` package.
@Suite struct OTLPHTTPExporterTests {
    static let python = ChildProcess.repositoryRoot + "/.venv/bin/python"
    static let receiverScript = ChildProcess.repositoryRoot + "/Tests/Harness/otlp_receiver.py"

    /// Starts the receiver in `mode`; returns it and its traces URL.
    static func receiver(_ mode: String) async throws -> (ChildProcess, String) {
        try #require(
            FileManager.default.isExecutableFile(atPath: python), "run `make venv` (part of `make test`) first")
        let process = try ChildProcess(python, [receiverScript, mode])
        try await process.waitForOutput("listening ")
        let line = process.collectedOutput.split(separator: "\n").first { $0.hasPrefix("listening ") } ?? ""
        return (process, "http://127.0.0.1:\(line.dropFirst("listening ".count))/v1/traces")
    }

    static var logger: Logger {
        var logger = Logger(label: "otlp-test")
        logger.logLevel = .critical
        return logger
    }

    static func id(_ byte: UInt8, _ count: Int) -> [UInt8] { [UInt8](repeating: byte, count: count) }

    @Test func exportsDecodeWithTheOfficialProto() async throws {
        let (receiver, url) = try await Self.receiver("ok")
        defer { receiver.kill() }
        let factory = CatalogueMetricsFactory()
        let exporter = OTLPHTTPExporter(
            configuration: .init(endpoint: url, headers: [("Authorization", "Bearer abc")], serviceName: "rondo-test"),
            metricsFactory: factory, logger: Self.logger)
        let trace = Self.id(0xAB, 16)
        exporter.enqueue(
            SpanRecord(
                traceID: trace, spanID: Self.id(1, 8), name: "rondo.round", kind: .server, startUnixNano: 1_000,
                endUnixNano: 9_000,
                attributes: [("rondo.round", .int(7)), ("rondo.base_version", .int(3))]))
        exporter.enqueue(
            SpanRecord(
                traceID: trace, spanID: Self.id(2, 8), parentSpanID: Self.id(1, 8), name: "fit", startUnixNano: 2_000,
                endUnixNano: 5_000,
                attributes: [("ok", .bool(true)), ("share", .double(0.25)), ("phase", .string("training"))]))
        exporter.enqueue(
            SpanRecord(
                traceID: trace, spanID: Self.id(3, 8), parentSpanID: Self.id(2, 8), name: "client.task", kind: .client,
                startUnixNano: 3_000, endUnixNano: 4_000,
                events: [.init(name: "dropout", timeUnixNano: 3_500, attributes: [("reason", .string("timeout"))])],
                status: .error, statusMessage: "client timed out"))
        await exporter.flush()
        try await receiver.waitForOutput("client.task")
        let spans = try receiver.collectedOutput.split(separator: "\n").filter { $0.hasPrefix("{") }.map {
            try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(spans.count == 3)
        #expect(spans.allSatisfy { $0["trace_id"] as? String == String(repeating: "ab", count: 16) })
        #expect(spans.allSatisfy { ($0["resource"] as? [String: Any])?["service.name"] as? String == "rondo-test" })
        #expect(
            spans[0]["content_type"] as? String == "application/x-protobuf"
                && spans[0]["auth"] as? String == "Bearer abc")
        let byName = Dictionary(uniqueKeysWithValues: spans.map { ($0["name"] as! String, $0) })
        #expect(byName["rondo.round"]?["parent_span_id"] as? String == "")
        #expect(byName["rondo.round"]?["kind"] as? Int == 2 && byName["rondo.round"]?["start"] as? Int == 1_000)
        #expect((byName["rondo.round"]?["attributes"] as? [String: Any])?["rondo.round"] as? Int == 7)
        #expect(byName["fit"]?["parent_span_id"] as? String == "0101010101010101")
        let fitAttributes = byName["fit"]?["attributes"] as? [String: Any]
        #expect(fitAttributes?["ok"] as? Bool == true && fitAttributes?["share"] as? Double == 0.25)
        #expect(fitAttributes?["phase"] as? String == "training")
        let task = try #require(byName["client.task"])
        #expect(task["status_code"] as? Int == 2 && task["status_message"] as? String == "client timed out")
        #expect((task["events"] as? [[String: Any]])?.first?["name"] as? String == "dropout")
        #expect(factory.sampleValue("rondo_trace_spans_exported_total") == 3)
        #expect(factory.sampleValue("rondo_trace_spans_dropped_total") == 0)
    }

    /// Proto3 leaves zero scalars off the wire, but an `AnyValue` is a oneof: its case must be sent even when the
    /// value is 0, false or "", or the backend gets an attribute with no value at all.
    @Test func zeroFalseAndEmptyAttributeValuesArriveWithTheirType() async throws {
        let (receiver, url) = try await Self.receiver("ok")
        defer { receiver.kill() }
        let exporter = OTLPHTTPExporter(
            configuration: .init(endpoint: url, serviceName: "rondo-test"), metricsFactory: CatalogueMetricsFactory(),
            logger: Self.logger)
        let zeros: [(String, SpanRecord.Value)] = [
            ("rondo.dropouts", .int(0)), ("rondo.accepted", .bool(false)), ("rondo.reason", .string("")),
            ("rondo.loss", .double(0)),
        ]
        exporter.enqueue(
            SpanRecord(
                traceID: Self.id(0xCD, 16), spanID: Self.id(9, 8), name: "zeros", startUnixNano: 1_000,
                endUnixNano: 2_000, attributes: zeros,
                events: [.init(name: "zeros.event", timeUnixNano: 1_500, attributes: zeros)]))
        await exporter.flush()
        try await receiver.waitForOutput(#""name": "zeros""#)
        let line = try #require(receiver.collectedOutput.split(separator: "\n").first { $0.hasPrefix("{") })
        let span = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let event = try #require((span["events"] as? [[String: Any]])?.first)
        let expectedCases = [
            "rondo.dropouts": "int_value", "rondo.accepted": "bool_value", "rondo.reason": "string_value",
            "rondo.loss": "double_value",
        ]
        for (owner, carrier) in [("span", span), ("event", event)] {
            let cases = carrier["attribute_cases"] as? [String: Any]
            let values = carrier["attributes"] as? [String: Any]
            for (key, expected) in expectedCases.sorted(by: { $0.key < $1.key }) {
                #expect(cases?[key] as? String == expected, "\(owner) attribute \(key): case \(cases?[key] ?? "none")")
            }
            #expect(values?["rondo.dropouts"] as? Int == 0, "\(owner): \(values?["rondo.dropouts"] ?? "none")")
            #expect(values?["rondo.accepted"] as? Bool == false, "\(owner): \(values?["rondo.accepted"] ?? "none")")
            #expect(values?["rondo.reason"] as? String == "", "\(owner): \(values?["rondo.reason"] ?? "none")")
            #expect(values?["rondo.loss"] as? Double == 0, "\(owner): \(values?["rondo.loss"] ?? "none")")
        }
    }

    @Test func receiverDownOrFailingCountsFailuresAndDrops() async throws {
        let factory = CatalogueMetricsFactory()
        let down = OTLPHTTPExporter(
            configuration: .init(endpoint: "http://127.0.0.1:\(try ChildProcess.freePort())/v1/traces", maxRetries: 1),
            metricsFactory: factory, logger: Self.logger)
        for index in 0..<10 {
            down.enqueue(
                SpanRecord(
                    traceID: Self.id(1, 16), spanID: Self.id(UInt8(index + 1), 8), name: "s", startUnixNano: 1,
                    endUnixNano: 2))
        }
        #expect(down.queuedCount == 10, "enqueue returns at once, export happens later")
        await down.flush()
        #expect(factory.sampleValue("rondo_trace_export_failures_total") == 1)
        #expect(factory.sampleValue("rondo_trace_spans_dropped_total") == 10)

        let (failing, url) = try await Self.receiver("fail")
        defer { failing.kill() }
        let refused = OTLPHTTPExporter(
            configuration: .init(endpoint: url, maxRetries: 2), metricsFactory: factory, logger: Self.logger)
        refused.enqueue(
            SpanRecord(traceID: Self.id(1, 16), spanID: Self.id(1, 8), name: "s", startUnixNano: 1, endUnixNano: 2))
        await refused.flush()
        #expect(factory.sampleValue("rondo_trace_export_failures_total") == 2)
    }

    @Test func hangingReceiverTimesOutAndAFullQueueDrops() async throws {
        let (hanging, url) = try await Self.receiver("hang")
        defer { hanging.kill() }
        let factory = CatalogueMetricsFactory()
        let exporter = OTLPHTTPExporter(
            configuration: .init(endpoint: url, maxQueueSize: 5, exportTimeout: .milliseconds(300), maxRetries: 0),
            metricsFactory: factory, logger: Self.logger)
        for index in 0..<8 {
            exporter.enqueue(
                SpanRecord(
                    traceID: Self.id(1, 16), spanID: Self.id(UInt8(index + 1), 8), name: "s", startUnixNano: 1,
                    endUnixNano: 2))
        }
        #expect(exporter.queuedCount == 5)
        #expect(factory.sampleValue("rondo_trace_spans_dropped_total") == 3, "three spans found the queue full")
        await exporter.flush()
        #expect(factory.sampleValue("rondo_trace_export_failures_total") == 1)
        #expect(factory.sampleValue("rondo_trace_spans_dropped_total") == 8)
    }

    @Test func gracefulShutdownFlushesWhatIsQueued() async throws {
        let (receiver, url) = try await Self.receiver("ok")
        defer { receiver.kill() }
        let factory = CatalogueMetricsFactory()
        let exporter = OTLPHTTPExporter(
            configuration: .init(endpoint: url, scheduleDelay: .seconds(3600)), metricsFactory: factory,
            logger: Self.logger)
        let group = ServiceGroup(services: [exporter], logger: Self.logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for index in 0..<3 {
                exporter.enqueue(
                    SpanRecord(
                        traceID: Self.id(7, 16), spanID: Self.id(UInt8(index + 1), 8), name: "queued-\(index)",
                        startUnixNano: 1, endUnixNano: 2))
            }
            try await Task.sleep(for: .milliseconds(200))
            #expect(exporter.queuedCount == 3, "the hour-long schedule delay has not passed")
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        try await receiver.waitForOutput("queued-2")
        #expect(factory.sampleValue("rondo_trace_spans_exported_total") == 3)
    }

    @Test func configurationComesFromTheStandardEnvironment() {
        let base = OTLPExporterConfiguration.fromEnvironment(
            [
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
                "OTEL_EXPORTER_OTLP_HEADERS": "api-key=a%20b, x=1", "OTEL_SERVICE_NAME": "fl",
            ],
            defaultServiceName: "rondo-coordinator")
        #expect(base.endpoint == "http://collector:4318/v1/traces" && base.serviceName == "fl")
        #expect(base.headers.map(\.name) == ["api-key", "x"] && base.headers.map(\.value) == ["a b", "1"])
        let specific = OTLPExporterConfiguration.fromEnvironment(
            ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://a", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b/traces"],
            defaultServiceName: "x")
        #expect(specific.endpoint == "http://b/traces" && specific.serviceName == "x")
        #expect(OTLPExporterConfiguration.fromEnvironment([:], defaultServiceName: "x").endpoint == nil)
    }
}
