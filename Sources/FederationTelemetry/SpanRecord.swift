/// A finished span, ready for export: the data OTLP carries, independent of any tracing API.
public struct SpanRecord: Sendable, Equatable {
    public enum Kind: UInt64, Sendable {
        case `internal` = 1, server = 2, client = 3, producer = 4, consumer = 5
    }

    public enum StatusCode: UInt64, Sendable {
        case unset = 0, ok = 1, error = 2
    }

    /// An attribute value (OTLP `AnyValue`).
    public enum Value: Sendable, Equatable {
        case string(String)
        case int(Int64)
        case double(Double)
        case bool(Bool)
    }

    public struct Event: Sendable, Equatable {
        public var name: String
        public var timeUnixNano: UInt64
        public var attributes: [(String, Value)]

        public init(name: String, timeUnixNano: UInt64, attributes: [(String, Value)] = []) {
            self.name = name
            self.timeUnixNano = timeUnixNano
            self.attributes = attributes
        }

        public static func == (lhs: Event, rhs: Event) -> Bool {
            lhs.name == rhs.name && lhs.timeUnixNano == rhs.timeUnixNano
                && lhs.attributes.map(\.0) == rhs.attributes.map(\.0)
                && lhs.attributes.map(\.1) == rhs.attributes.map(\.1)
        }
    }

    /// 16 bytes.
    public var traceID: [UInt8]
    /// 8 bytes.
    public var spanID: [UInt8]
    /// 8 bytes, or empty for a root span.
    public var parentSpanID: [UInt8]
    public var name: String
    public var kind: Kind
    public var startUnixNano: UInt64
    public var endUnixNano: UInt64
    public var attributes: [(String, Value)]
    public var events: [Event]
    public var status: StatusCode
    public var statusMessage: String

    public init(
        traceID: [UInt8], spanID: [UInt8], parentSpanID: [UInt8] = [], name: String, kind: Kind = .internal,
        startUnixNano: UInt64, endUnixNano: UInt64, attributes: [(String, Value)] = [], events: [Event] = [],
        status: StatusCode = .unset, statusMessage: String = ""
    ) {
        precondition(traceID.count == 16 && spanID.count == 8 && (parentSpanID.isEmpty || parentSpanID.count == 8))
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.name = name
        self.kind = kind
        self.startUnixNano = startUnixNano
        self.endUnixNano = endUnixNano
        self.attributes = attributes
        self.events = events
        self.status = status
        self.statusMessage = statusMessage
    }

    public static func == (lhs: SpanRecord, rhs: SpanRecord) -> Bool {
        lhs.traceID == rhs.traceID && lhs.spanID == rhs.spanID && lhs.parentSpanID == rhs.parentSpanID
            && lhs.name == rhs.name && lhs.kind == rhs.kind && lhs.startUnixNano == rhs.startUnixNano
            && lhs.endUnixNano == rhs.endUnixNano && lhs.attributes.map(\.0) == rhs.attributes.map(\.0)
            && lhs.attributes.map(\.1) == rhs.attributes.map(\.1) && lhs.events == rhs.events
            && lhs.status == rhs.status && lhs.statusMessage == rhs.statusMessage
    }
}

/// Encodes OTLP `ExportTraceServiceRequest` messages (opentelemetry-proto, trace/v1) as protobuf bytes.
public enum OTLPTraceEncoder {
    /// One request: a single resource (`service.name` plus `resourceAttributes`) and a single scope.
    public static func encode(
        _ spans: [SpanRecord], serviceName: String, resourceAttributes: [(String, SpanRecord.Value)] = [],
        scopeName: String = "rondo", scopeVersion: String = RondoBuild.version
    ) -> [UInt8] {
        var request = ProtobufWriter()
        request.message(1) { resourceSpans in  // ResourceSpans
            resourceSpans.message(1) { resource in  // Resource
                for (key, value) in [("service.name", SpanRecord.Value.string(serviceName))] + resourceAttributes {
                    resource.message(1) { keyValue(&$0, key, value) }
                }
            }
            resourceSpans.message(2) { scopeSpans in  // ScopeSpans
                scopeSpans.message(1) { scope in  // InstrumentationScope
                    scope.string(1, scopeName)
                    scope.string(2, scopeVersion)
                }
                for span in spans {
                    scopeSpans.message(2) { encode(span, into: &$0) }
                }
            }
        }
        return request.bytes
    }

    private static func encode(_ span: SpanRecord, into writer: inout ProtobufWriter) {
        writer.data(1, span.traceID)
        writer.data(2, span.spanID)
        writer.data(4, span.parentSpanID)
        writer.string(5, span.name)
        writer.uint(6, span.kind.rawValue)
        writer.fixed64(7, span.startUnixNano)
        writer.fixed64(8, span.endUnixNano)
        for (key, value) in span.attributes { writer.message(9) { keyValue(&$0, key, value) } }
        for event in span.events {
            writer.message(11) { encoded in
                encoded.fixed64(1, event.timeUnixNano)
                encoded.string(2, event.name)
                for (key, value) in event.attributes { encoded.message(3) { keyValue(&$0, key, value) } }
            }
        }
        if span.status != .unset || !span.statusMessage.isEmpty {
            writer.message(15) { status in
                status.string(2, span.statusMessage)
                status.uint(3, span.status.rawValue)
            }
        }
    }

    private static func keyValue(_ writer: inout ProtobufWriter, _ key: String, _ value: SpanRecord.Value) {
        writer.string(1, key)
        writer.message(2) { any in
            switch value {
            case .string(let string): any.string(1, string)
            case .bool(let bool): any.bool(2, bool)
            case .int(let int): any.int(3, int)
            case .double(let double): any.double(4, double)
            }
        }
    }
}
