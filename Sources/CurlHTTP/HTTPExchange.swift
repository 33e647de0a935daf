/// An HTTP request for `CurlHTTPClient`.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]?
    /// Whole-transfer limit, including any long-poll wait on the server. Default 30 s.
    public var timeout: Duration

    public init(
        method: String = "GET", url: String, headers: [(name: String, value: String)] = [], body: [UInt8]? = nil,
        timeout: Duration = .seconds(30)
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

/// A complete HTTP response.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header fields with lower-cased names; a repeated field keeps its last value.
    public var headers: [String: String]
    public var body: [UInt8]

    public init(status: Int, headers: [String: String], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The value of a header field, by case-insensitive name.
    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// The body as UTF-8 text.
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// A transfer that produced no HTTP response: refused connection, time-out, TLS failure, bad URL.
public struct CurlTransferError: Error, Sendable, CustomStringConvertible {
    /// libcurl's `CURLcode`.
    public var code: Int
    public var message: String
    /// What arrived before the transfer broke, when a response had started (its status line was read): a
    /// client resumes a cut download from `partial.body.count` with a `Range` request.
    public var partial: HTTPResponse?

    public init(code: Int, message: String, partial: HTTPResponse? = nil) {
        self.code = code
        self.message = message
        self.partial = partial
    }

    /// True when TLS verification failed or could not be set up: the peer's certificate is not trusted
    /// (CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
    /// CURLE_SSL_INVALIDCERTSTATUS) or the CA file cannot be used (CURLE_SSL_CACERT_BADFILE,
    /// CURLE_SSL_CERTPROBLEM). Trying again does not help; the configuration has to change.
    public var isCertificateFailure: Bool { [58, 60, 77, 83, 90, 91].contains(code) }

    public var description: String { "libcurl error \(code): \(message)" }
}
