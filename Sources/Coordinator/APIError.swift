import FederationCore
import Foundation
import ModelManager
import HTTPTypes
import Hummingbird
import NIOCore

/// An error answer of the HTTP API: a status, a stable code and a message, rendered as
/// `{"error": {"code": …, "message": …}}`.
///
/// This is the one place that maps failures to HTTP: handlers throw `APIError`, and `APIErrorMiddleware`
/// converts anything else (Hummingbird's own 404/413, decoding errors) into one.
public struct APIError: HTTPResponseError, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    /// Seconds after which a retry may succeed (429), sent as `Retry-After`.
    public var retryAfterSeconds: Int?

    public init(_ status: HTTPResponse.Status, code: String, _ message: String, retryAfterSeconds: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = try JSONEncoder().encode(WireProtocol.ErrorMessage(code: code, message: message))
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfterSeconds { headers[.retryAfter] = String(retryAfterSeconds) }
        return Response(
            status: status,
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func malformed(_ message: String) -> APIError { APIError(.badRequest, code: "malformed_body", message) }
    static let unauthenticated = APIError(
        .unauthorized, code: "unauthenticated", "missing or unknown bearer token")
    static func forbidden(_ message: String) -> APIError { APIError(.forbidden, code: "forbidden", message) }
    static func payloadTooLarge(limit: Int) -> APIError {
        APIError(.contentTooLarge, code: "payload_too_large", "body exceeds the limit of \(limit) bytes")
    }

    /// The answer for a store refusal: 404 unknown version, 409 corrupt or wrong state, 422 bad tag; nil for
    /// failures of the database itself (they stay 500).
    static func store(_ error: CheckpointStoreError) -> APIError? {
        switch error.code {
        case .notFound: APIError(.notFound, code: "unknown_checkpoint", error.message)
        case .integrity: APIError(.conflict, code: "checkpoint_corrupt", error.message)
        case .invalidState: APIError(.conflict, code: "invalid_state", error.message)
        case .invalidTag: APIError(.unprocessableContent, code: "invalid_tag", error.message)
        default: nil
        }
    }

    /// The answer for a request refused by a limit: 409 when the federation is full, 429 with `Retry-After`
    /// for rates and parked polls.
    static func limited(_ error: LimitError) -> APIError {
        let retry = error.retryAfter.map { max(1, Int($0.seconds.rounded(.up))) }
        return switch error.limit {
        case .clients: APIError(.conflict, code: "client_limit_reached", error.message)
        case .registerRate, .submitRate:
            APIError(.tooManyRequests, code: "rate_limited", error.message, retryAfterSeconds: retry)
        case .longPolls, .clientLongPolls:
            APIError(.tooManyRequests, code: "too_many_polls", error.message, retryAfterSeconds: retry)
        case .connections:
            APIError(.serviceUnavailable, code: "too_many_connections", error.message, retryAfterSeconds: retry)
        case .slowBody: APIError(.requestTimeout, code: "body_too_slow", error.message)
        }
    }

    /// The answer for a refused result: 404 unknown task, 403 another client's, 409 late or duplicate,
    /// 400 malformed, 422 for anything well-formed but invalid.
    static func rejected(_ rejection: UpdateRejection) -> APIError {
        let status: HTTPResponse.Status =
            switch rejection.reason {
            case .unknownTask: .notFound
            case .notYourTask: .forbidden
            case .late, .duplicate: .conflict
            case .malformed: .badRequest
            case .wrongNames, .wrongShape, .wrongDType, .nonFinite, .normTooLarge, .invalidValue: .unprocessableContent
            }
        return APIError(status, code: rejection.reason.rawValue, rejection.message)
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
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            throw Self.translate(error)
        } catch let error as DecodingError {
            throw APIError.malformed("request body does not match the expected JSON: \(Self.describe(error))")
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, code: "payload_too_large", "request body exceeds the limit")
        } catch is ConnectionGuardError {
            // The connection guard already answered and is closing the connection; this answer is not sent.
            throw APIError(.requestTimeout, code: "request_cut_off", "the request was cut off")
        } catch let error as CheckpointStoreError where APIError.store(error) != nil {
            throw APIError.store(error)!
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(error)"])
            throw APIError(.internalServerError, code: "internal", "internal error")
        }
    }

    static func translate(_ error: HTTPError) -> APIError {
        switch error.status {
        case .notFound: APIError(.notFound, code: "not_found", error.body ?? "no such route")
        case .contentTooLarge: APIError(.contentTooLarge, code: "payload_too_large", "request body exceeds the limit")
        case .methodNotAllowed: APIError(.methodNotAllowed, code: "method_not_allowed", "method not allowed here")
        default: APIError(error.status, code: "http_\(error.status.code)", error.body ?? error.status.reasonPhrase)
        }
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): "missing field \"\(key.stringValue)\""
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            "wrong type at \"\(context.codingPath.map(\.stringValue).joined(separator: "."))\""
        case .dataCorrupted(let context):
            context.codingPath.isEmpty
                ? "not valid JSON"
                : "invalid value at \"\(context.codingPath.map(\.stringValue).joined(separator: "."))\""
        @unknown default: "invalid JSON"
        }
    }
}
