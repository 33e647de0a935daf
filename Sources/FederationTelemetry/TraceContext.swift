import FederationCore

/// A W3C trace context: trace id, parent span id and the sampled flag, as carried in `traceparent`
/// (`00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`).
public struct TraceContext: Sendable, Hashable {
    /// 16 bytes, not all zero.
    public var traceID: [UInt8]
    /// 8 bytes, not all zero.
    public var spanID: [UInt8]
    public var sampled: Bool

    public init(traceID: [UInt8], spanID: [UInt8], sampled: Bool = true) {
        precondition(traceID.count == 16 && spanID.count == 8)
        self.traceID = traceID
        self.spanID = spanID
        self.sampled = sampled
    }

    /// Parses a `traceparent` header; nil for anything malformed (version `ff`, zero ids, wrong lengths).
    public init?(traceparent: String) {
        let parts = traceparent.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[0].count == 2, parts[0] != "ff", parts[1].count == 32, parts[2].count == 16,
            parts[3].count == 2, let trace = Self.bytes(parts[1]), let span = Self.bytes(parts[2]),
            let flags = UInt8(parts[3], radix: 16), trace.contains(where: { $0 != 0 }),
            span.contains(where: { $0 != 0 })
        else { return nil }
        if parts[0] == "00" && parts.count != 4 { return nil }
        self.init(traceID: trace, spanID: span, sampled: flags & 1 == 1)
    }

    /// The `traceparent` header value.
    public var traceparent: String {
        "00-\(traceID.hexString)-\(spanID.hexString)-\(sampled ? "01" : "00")"
    }

    public var traceIDHex: String { traceID.hexString }
    public var spanIDHex: String { spanID.hexString }

    /// Random ids from `generator` (never all zero).
    public static func randomTraceID(using generator: inout some RandomNumberGenerator) -> [UInt8] {
        randomBytes(16, using: &generator)
    }

    public static func randomSpanID(using generator: inout some RandomNumberGenerator) -> [UInt8] {
        randomBytes(8, using: &generator)
    }

    private static func randomBytes(_ count: Int, using generator: inout some RandomNumberGenerator) -> [UInt8] {
        var bytes: [UInt8]
        repeat {
            bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
        } while bytes.allSatisfy { $0 == 0 }
        return bytes
    }

    private static func bytes(_ hex: Substring) -> [UInt8]? {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16),
                hex[index..<next].allSatisfy({ $0.isHexDigit && !$0.isUppercase })
            else {
                return nil
            }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}
