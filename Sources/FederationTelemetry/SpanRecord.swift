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
