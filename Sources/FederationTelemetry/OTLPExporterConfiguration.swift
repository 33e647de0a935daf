/// Where and how spans are exported, read from the standard OpenTelemetry environment variables.
public struct OTLPExporterConfiguration: Sendable {
    /// The full traces URL; nil turns export off. `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`. Default nil.
    public var endpoint: String?
    /// Extra request headers (`OTEL_EXPORTER_OTLP_HEADERS`, `key=value,key2=value2`, values URL-decoded).
    public var headers: [(name: String, value: String)]
    /// `service.name` of the resource (`OTEL_SERVICE_NAME`). Default `rondo-coordinator`.
    public var serviceName: String
    /// Spans held while waiting for export; more are dropped and counted. Default 2048.
    public var maxQueueSize: Int
    /// Spans per export request. Default 512.
    public var maxBatchSize: Int
    /// Longest wait before queued spans are sent. Default 1 s.
    public var scheduleDelay: Duration
    /// Limit of one export request. Default 10 s.
    public var exportTimeout: Duration
    /// Retries of a failed export (with doubling backoff from 100 ms) before its spans are dropped. Default 3.
    public var maxRetries: Int

    public init(
        endpoint: String?, headers: [(name: String, value: String)] = [], serviceName: String = "rondo-coordinator",
        maxQueueSize: Int = 2048, maxBatchSize: Int = 512, scheduleDelay: Duration = .seconds(1),
        exportTimeout: Duration = .seconds(10), maxRetries: Int = 3
    ) {
        precondition(maxQueueSize > 0 && maxBatchSize > 0 && maxRetries >= 0)
        self.endpoint = endpoint
        self.headers = headers
        self.serviceName = serviceName
        self.maxQueueSize = maxQueueSize
        self.maxBatchSize = maxBatchSize
        self.scheduleDelay = scheduleDelay
        self.exportTimeout = exportTimeout
        self.maxRetries = maxRetries
    }

    /// The configuration the environment describes (pass `ProcessInfo.processInfo.environment`).
    public static func fromEnvironment(_ environment: [String: String], defaultServiceName: String)
        -> OTLPExporterConfiguration
    {
        var endpoint = environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 }
        if endpoint == nil, var base = environment["OTEL_EXPORTER_OTLP_ENDPOINT"], !base.isEmpty {
            while base.hasSuffix("/") { base.removeLast() }
            endpoint = base + "/v1/traces"
        }
        let headers = (environment["OTEL_EXPORTER_OTLP_HEADERS"] ?? "").split(separator: ",").compactMap {
            pair -> (name: String, value: String)? in
            guard let equals = pair.firstIndex(of: "=") else { return nil }
            let name = pair[..<equals].trimmingWhitespace()
            let value = pair[pair.index(after: equals)...].trimmingWhitespace()
            return name.isEmpty ? nil : (name, value.removingPercentEncodingSafely())
        }
        return OTLPExporterConfiguration(
            endpoint: endpoint, headers: headers,
            serviceName: environment["OTEL_SERVICE_NAME"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultServiceName)
    }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

extension String {
    /// Decodes `%XX` escapes; malformed escapes are kept as written.
    fileprivate func removingPercentEncodingSafely() -> String {
        var bytes: [UInt8] = []
        var iterator = Array(utf8)[...]
        while let byte = iterator.popFirst() {
            if byte == UInt8(ascii: "%"), iterator.count >= 2,
                let value = UInt8(String(decoding: iterator.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                iterator = iterator.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
