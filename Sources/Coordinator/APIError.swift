import FederationCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An error answer of the HTTP API: a status, a stable code and a message, rendered as
/// `{"error": {"code": …, "message": …}}`.
///
/// `init(from:)` is the one place that maps failures to HTTP: handlers throw domain errors (`UpdateRejection`,
/// `LimitError`, `CheckpointStoreError`, …) or an `APIError` for a request they refuse themselves, and
/// `APIErrorMiddleware` turns whatever arrives into one.
public struct APIError: HTTPResponseError, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var code: Code
    public var message: String
    /// Seconds after which a retry may succeed (429), sent as `Retry-After`.
    public var retryAfterSeconds: Int?
    /// The representation's length for a 416, sent as `Content-Range: bytes */N`.
    public var contentRangeTotal: Int?
    /// The leading coordinator's URL, when a standby answers (sent as `Rondo-Leader`).
    public var leader: String?

    public init(
        _ status: HTTPResponse.Status, code: Code, _ message: String, retryAfterSeconds: Int? = nil,
        contentRangeTotal: Int? = nil
    ) {
        self.status = status
        self.code = code
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
        self.contentRangeTotal = contentRangeTotal
    }

    public var description: String { "\(status.code) \(code.rawValue): \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = try JSONEncoder().encode(WireProtocol.ErrorMessage(code: code.rawValue, message: message))
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfterSeconds { headers[.retryAfter] = String(retryAfterSeconds) }
        if let contentRangeTotal { headers[.contentRange] = "bytes */\(contentRangeTotal)" }
        if let leader, let name = HTTPField.Name("Rondo-Leader") { headers[name] = leader }
        return Response(
            status: status,
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func malformed(_ message: String) -> APIError { APIError(.badRequest, code: .malformedBody, message) }
    static func forbidden(_ message: String) -> APIError { APIError(.forbidden, code: .forbidden, message) }
    static func invalidParameter(_ message: String) -> APIError {
        APIError(.badRequest, code: .invalidParameter, message)
    }
    static func payloadTooLarge(limit: Int) -> APIError {
        APIError(.contentTooLarge, code: .payloadTooLarge, "body exceeds the limit of \(limit) bytes")
    }
}

/// Turns every error a handler throws into a JSON `APIError` answer, so no client ever sees a bare status
/// or an HTML page.
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch {
            let answer = APIError(from: error)
            if answer.code == .internal {
                context.logger.error("unhandled error", metadata: ["error": "\(error)"])
            }
            throw answer
        }
    }
}
