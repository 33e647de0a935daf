import FederationTelemetry
import Synchronization
import Testing
import Tracing

@Suite struct RondoTracerTests {
    final class Sink: Sendable {
        let spans = Mutex<[SpanRecord]>([])
        func add(_ span: SpanRecord) { spans.withLock { $0.append(span) } }
    }

    @Test func childrenShareTheTraceAndPointAtTheirParent() throws {
        let sink = Sink()
        let tracer = RondoTracer(sink: sink.add)
        let root = tracer.startSpan("root", context: .topLevel, ofKind: .server)
        root.attributes["rondo.round"] = 3
        let child = tracer.startSpan("child", context: root.context)
        child.setStatus(SpanStatus(code: .error, message: "boom"))
        child.end()
        root.end()
        root.end()  // a second end is ignored
        let spans = sink.spans.withLock { $0 }
        #expect(spans.map(\.name) == ["child", "root"])
        #expect(spans[0].traceID == spans[1].traceID && spans[0].parentSpanID == spans[1].spanID)
        #expect(spans[1].parentSpanID.isEmpty && spans[1].kind == .server)
        #expect(spans[0].status == .error && spans[0].statusMessage == "boom")
        #expect(spans[1].attributes.first?.0 == "rondo.round" && spans[1].attributes.first?.1 == .int(3))
    }

    @Test func traceparentRoundTripsThroughInjectAndExtract() throws {
        let tracer = RondoTracer(sink: nil)
        let span = tracer.startSpan("task", context: .topLevel)
        var headers: [String: String] = [:]
        tracer.inject(span.context, into: &headers, using: DictionaryInjector())
        let header = try #require(headers["traceparent"])
        #expect(header == span.trace.traceparent && header.hasPrefix("00-") && header.hasSuffix("-01"))
        var extracted = ServiceContext.topLevel
        tracer.extract(headers, into: &extracted, using: DictionaryExtractor())
        #expect(extracted.traceContext == span.trace)
        #expect(TraceContext(traceparent: "00-00000000000000000000000000000000-0000000000000001-01") == nil)
        #expect(TraceContext(traceparent: "garbage") == nil)
        #expect(TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")?.sampled == false)
    }

    @Test func samplingFollowsTheStandardVariables() {
        #expect(RondoTracer.sampleRatio(environment: [:]) == 1)
        #expect(RondoTracer.sampleRatio(environment: ["OTEL_TRACES_SAMPLER": "always_off"]) == 0)
        #expect(
            RondoTracer.sampleRatio(environment: [
                "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25",
            ]) == 0.25)
        let sink = Sink()
        let off = RondoTracer(sampleRatio: 0, sink: sink.add)
        off.startSpan("dropped", context: .topLevel).end()
        #expect(sink.spans.withLock { $0 }.isEmpty)
    }

    struct DictionaryInjector: Injector {
        func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
    }

    struct DictionaryExtractor: Extractor {
        func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
    }
}
