import Foundation
import Synchronization
import Tracing

/// A swift-distributed-tracing `Tracer` whose finished spans go to a sink (normally `OTLPHTTPExporter.enqueue`).
///
/// Spans carry W3C trace context: a span started in a context that holds one becomes its child, and
/// `inject`/`extract` move it through `traceparent`, so a client's spans join the coordinator's round trace.
/// With `sampled: false` (or no sink) spans are still created and propagate context but are not exported.
public struct RondoTracer: Tracer {
    public typealias Span = RondoSpan

    private let sink: (@Sendable (SpanRecord) -> Void)?
    /// Probability that a new trace is recorded (`OTEL_TRACES_SAMPLER=traceidratio`); child spans follow
    /// their parent's decision.
    private let sampleRatio: Double

    public init(sampleRatio: Double = 1, sink: (@Sendable (SpanRecord) -> Void)?) {
        self.sink = sink
        self.sampleRatio = min(max(sampleRatio, 0), 1)
    }

    /// The sampling ratio the standard variables ask for: `OTEL_TRACES_SAMPLER` (`always_on`, `always_off`,
    /// `traceidratio`, and the `parentbased_` forms) with `OTEL_TRACES_SAMPLER_ARG`.
    public static func sampleRatio(environment: [String: String]) -> Double {
        switch environment["OTEL_TRACES_SAMPLER"] ?? "parentbased_always_on" {
        case "always_off", "parentbased_always_off": 0
        case "traceidratio", "parentbased_traceidratio": Double(environment["OTEL_TRACES_SAMPLER_ARG"] ?? "") ?? 1
        default: 1
        }
    }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> RondoSpan {
        var parentContext = context()
        let parent = parentContext.traceContext
        var generator = SystemRandomNumberGenerator()  // stateless and thread-safe
        let spanID = TraceContext.randomSpanID(using: &generator)
        let traceID = parent?.traceID ?? TraceContext.randomTraceID(using: &generator)
        let sampled = parent?.sampled ?? (Double.random(in: 0..<1, using: &generator) < sampleRatio)
        let own = TraceContext(traceID: traceID, spanID: spanID, sampled: sampled)
        parentContext.traceContext = own
        return RondoSpan(
            operationName: operationName, kind: kind, context: parentContext, trace: own,
            parentSpanID: parent?.spanID ?? [],
            start: instant().nanosecondsSinceEpoch, sink: sampled ? sink : nil)
    }

    public func forceFlush() {}

    public func extract<Carrier, Extract>(
        _ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract
    )
    where Extract: Extractor, Extract.Carrier == Carrier {
        if let header = extractor.extract(key: "traceparent", from: carrier),
            let trace = TraceContext(traceparent: header)
        {
            context.traceContext = trace
        }
    }

    public func inject<Carrier, Inject>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject: Injector, Inject.Carrier == Carrier {
        if let trace = context.traceContext {
            injector.inject(trace.traceparent, forKey: "traceparent", into: &carrier)
        }
    }
}

/// A span of `RondoTracer`; thread-safe, ends once.
public final class RondoSpan: Tracing.Span, Sendable {
    private struct State {
        var operationName: String
        var attributes: SpanAttributes = [:]
        var events: [SpanRecord.Event] = []
        var status: SpanStatus?
        var ended = false
    }

    public let context: ServiceContext
    /// This span's own trace context (what `traceparent` carries for its children).
    public let trace: TraceContext
    private let kind: SpanKind
    private let parentSpanID: [UInt8]
    private let start: UInt64
    private let sink: (@Sendable (SpanRecord) -> Void)?
    private let state: Mutex<State>

    init(
        operationName: String, kind: SpanKind, context: ServiceContext, trace: TraceContext, parentSpanID: [UInt8],
        start: UInt64, sink: (@Sendable (SpanRecord) -> Void)?
    ) {
        self.context = context
        self.trace = trace
        self.kind = kind
        self.parentSpanID = parentSpanID
        self.start = start
        self.sink = sink
        self.state = Mutex(State(operationName: operationName))
    }

    public var operationName: String {
        get { state.withLock { $0.operationName } }
        set { state.withLock { $0.operationName = newValue } }
    }

    public var attributes: SpanAttributes {
        get { state.withLock { $0.attributes } }
        set { state.withLock { $0.attributes = newValue } }
    }

    public var isRecording: Bool { sink != nil && !state.withLock { $0.ended } }

    public func setStatus(_ status: SpanStatus) {
        state.withLock { $0.status = status }
    }

    public func addEvent(_ event: SpanEvent) {
        let converted = SpanRecord.Event(
            name: event.name, timeUnixNano: event.nanosecondsSinceEpoch, attributes: Self.convert(event.attributes))
        state.withLock { $0.events.append(converted) }
    }

    public func recordError<Instant: TracerInstant>(
        _ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant
    ) {
        var all = attributes
        all["exception.type"] = "\(type(of: error))"
        all["exception.message"] = "\(error)"
        addEvent(SpanEvent(name: "exception", at: instant(), attributes: all))
    }

    public func addLink(_ link: SpanLink) {}

    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let snapshot = state.withLock { state -> State? in
            guard !state.ended else { return nil }
            state.ended = true
            return state
        }
        guard let snapshot, let sink else { return }
        let status: SpanRecord.StatusCode =
            switch snapshot.status?.code {
            case .ok?: .ok
            case .error?: .error
            case nil: .unset
            }
        sink(
            SpanRecord(
                traceID: trace.traceID, spanID: trace.spanID, parentSpanID: parentSpanID, name: snapshot.operationName,
                kind: Self.kind(kind), startUnixNano: start, endUnixNano: max(start, instant().nanosecondsSinceEpoch),
                attributes: Self.convert(snapshot.attributes), events: snapshot.events, status: status,
                statusMessage: snapshot.status?.message ?? ""))
    }

    private static func kind(_ kind: SpanKind) -> SpanRecord.Kind {
        switch kind {
        case .server: .server
        case .client: .client
        case .producer: .producer
        case .consumer: .consumer
        default: .internal
        }
    }

    static func convert(_ attributes: SpanAttributes) -> [(String, SpanRecord.Value)] {
        var converted: [(String, SpanRecord.Value)] = []
        attributes.forEach { name, attribute in
            let value: SpanRecord.Value
            switch attribute {
            case .int32(let number): value = .int(Int64(number))
            case .int64(let number): value = .int(number)
            case .double(let number): value = .double(number)
            case .bool(let flag): value = .bool(flag)
            case .string(let text): value = .string(text)
            case .stringConvertible(let convertible): value = .string(convertible.description)
            default: value = .string("\(attribute)")
            }
            converted.append((name, value))
        }
        return converted.sorted { $0.0 < $1.0 }
    }
}

extension ServiceContext {
    private enum TraceContextKey: ServiceContextKey {
        typealias Value = TraceContext
        static var nameOverride: String? { "traceparent" }
    }

    /// The W3C trace context this context carries, if any.
    public var traceContext: TraceContext? {
        get { self[TraceContextKey.self] }
        set { self[TraceContextKey.self] = newValue }
    }
}
