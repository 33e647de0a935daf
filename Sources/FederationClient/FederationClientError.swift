/// Why a call to the coordinator failed.
public struct FederationClientError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// No HTTP answer (connection refused, reset, timed out). Retried.
        public static let transport = Code("transport")
        /// The coordinator answered 5xx or 429. Retried.
        public static let unavailable = Code("unavailable")
        /// 401: the coordinator does not know the token (it restarted, or the client left). The runner
        /// registers again.
        public static let unauthenticated = Code("unauthenticated")
        /// The coordinator's HTTPS certificate was not trusted (unknown CA, wrong host name, expired) or the CA
        /// file is unusable. Not retried: the configuration (`caFile`, the URL) has to change.
        public static let untrustedServer = Code("untrusted_server")
        /// Any other 4xx: the request itself was refused. Not retried.
        public static let refused = Code("refused")
        /// The answer did not have the expected form (bad JSON, hash mismatch).
        public static let invalidResponse = Code("invalid_response")

        public var description: String { name }
    }

    public var code: Code
    /// HTTP status, when there was an answer.
    public var status: Int?
    /// The coordinator's error code (`late`, `duplicate`, `wrong_shape`, …), when it sent one.
    public var apiCode: String?
    public var message: String
    /// The coordinator's `Retry-After` on a 429 or 503: the runner waits at least this long before retrying.
    public var retryAfter: Duration?

    public init(
        _ code: Code, status: Int? = nil, apiCode: String? = nil, _ message: String, retryAfter: Duration? = nil
    ) {
        self.code = code
        self.status = status
        self.apiCode = apiCode
        self.message = message
        self.retryAfter = retryAfter
    }

    /// True when trying the same call again may succeed.
    public var isRetryable: Bool { code == .transport || code == .unavailable }

    public var description: String {
        var text = "\(code)"
        if let status { text += " (HTTP \(status)" + (apiCode.map { " \($0)" } ?? "") + ")" }
        return text + ": \(message)"
    }
}
