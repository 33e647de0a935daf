import FederationCore
import HTTPTypes
import Hummingbird
import ModelManager
import NIOCore

extension APIError {
    /// Every error code the API answers with; the raw value is the `error.code` on the wire.
    public enum Code: String, Sendable, CaseIterable {
        // The request itself
        case malformedBody = "malformed_body"
        case malformedRequest = "malformed_request"
        case invalidParameter = "invalid_parameter"
        case invalidIdentityKey = "invalid_identity_key"
        case notFound = "not_found"
        case methodNotAllowed = "method_not_allowed"
        case payloadTooLarge = "payload_too_large"
        case headersTooLarge = "headers_too_large"
        case unsupportedMediaType = "unsupported_media_type"
        case requestCutOff = "request_cut_off"
        case httpError = "http_error"
        // Who is asking
        case unauthenticated
        case forbidden
        case revoked
        // Client-sent text and files
        case invalidName = "invalid_name"
        case invalidMessage = "invalid_message"
        case invalidReason = "invalid_reason"
        case invalidSafetensors = "invalid_safetensors"
        case unsupportedDType = "unsupported_dtype"
        // Results refused by the round (`UpdateRejection.Reason`, same raw values)
        case malformed
        case unknownTask = "unknown_task"
        case notYourTask = "not_your_task"
        case duplicate
        case late
        case wrongNames = "wrong_names"
        case wrongShape = "wrong_shape"
        case wrongDType = "wrong_dtype"
        case nonFinite = "non_finite"
        case normTooLarge = "norm_too_large"
        case invalidValue = "invalid_value"
        // Limits
        case clientLimitReached = "client_limit_reached"
        case rateLimited = "rate_limited"
        case tooManyPolls = "too_many_polls"
        case tooManyConnections = "too_many_connections"
        case bodyTooSlow = "body_too_slow"
        /// 503: this coordinator is a standby, or lost the leader lease; retry, at the leader if one is named.
        case notLeader = "not_leader"
        case tooManyRollbacks = "too_many_rollbacks"
        // Models, checkpoints, history and operator actions
        case unknownModelVersion = "unknown_model_version"
        case rangeNotSatisfiable = "range_not_satisfiable"
        case unknownCheckpoint = "unknown_checkpoint"
        case unknownRound = "unknown_round"
        case unknownClient = "unknown_client"
        case checkpointCorrupt = "checkpoint_corrupt"
        case invalidState = "invalid_state"
        case forceRequired = "force_required"
        case invalidTag = "invalid_tag"
        case noOpenRound = "no_open_round"
        case roundsKeepCommitting = "rounds_keep_committing"
        case draining
        // Readiness and the rest
        case notReady = "not_ready"
        case storeFailing = "store_failing"
        /// An upload could not be spooled to the data directory (a full or failing disk).
        case spoolFailed = "spool_failed"
        case `internal`
    }

    /// The answer for any error a handler or the framework throws: the one mapping from domain errors to HTTP.
    public init(from error: any Error) {
        switch error {
        case let error as APIError: self = error
        case let error as UpdateRejection: self.init(error)
        case let error as LimitError: self.init(error)
        case let error as CheckpointStoreError: self.init(error)
        case let error as OperatorActionError: self.init(error)
        case let error as AuthRefusal: self.init(error)
        case let error as NotReadyReason: self.init(error.status, code: error.code, error.message)
        case let error as SafeTensorsError where error.code == .unsupportedDType:
            // A well-formed file with a dtype Rondo does not average (8-bit floats): the message names the tensor.
            self.init(.unprocessableContent, code: .unsupportedDType, error.message)
        case let error as SafeTensorsError:
            self.init(.badRequest, code: .invalidSafetensors, "\(error.code): \(error.message)")
        case let error as HTTPError: self.init(error)
        case let error as DecodingError:
            self = .malformed("request body does not match the expected JSON: \(Self.describe(error))")
        case is NIOTooManyBytesError:
            // A chunked body has no Content-Length to check up front; NIO stops collecting at the limit.
            self.init(.contentTooLarge, code: .payloadTooLarge, "request body exceeds the limit")
        case let error as UploadReceiver.Aborted:
            // The client is gone or stalled; the answer is for the log, and the round is untouched.
            self.init(.badRequest, code: .requestCutOff, error.description)
        // Store failures answer 503 without their cause: a driver's error names the database (its host, its
        // URL), which is the operator's business (the log has it), not a client's.
        case is EnrolmentNotStored:
            self.init(
                .serviceUnavailable, code: .storeFailing, "the registration could not be stored; retry shortly",
                retryAfterSeconds: 1)
        case is ClientLookupFailed:
            self.init(
                .serviceUnavailable, code: .storeFailing, "the client token could not be checked; retry shortly",
                retryAfterSeconds: 1)
        case is any DatabaseFailure:
            self.init(
                .serviceUnavailable, code: .storeFailing, "the store is unavailable; retry shortly",
                retryAfterSeconds: 1)
        case let error as SpoolError:
            self.init(.serviceUnavailable, code: .spoolFailed, "the upload could not be spooled: \(error)")
        case is ConnectionGuardError:
            // The connection guard already answered and is closing the connection; this answer is not sent.
            self.init(.requestTimeout, code: .requestCutOff, "the request was cut off")
        default:
            self.init(.internalServerError, code: .internal, "internal error")
        }
    }

    /// 404 unknown task, 403 another client's, 409 late or duplicate, 400 malformed, 422 for anything
    /// well-formed but invalid.
    init(_ rejection: UpdateRejection) {
        let status: HTTPResponse.Status =
            switch rejection.reason {
            case .unknownTask: .notFound
            case .notYourTask: .forbidden
            case .late, .duplicate: .conflict
            case .malformed: .badRequest
            case .wrongNames, .wrongShape, .wrongDType, .nonFinite, .normTooLarge, .invalidValue: .unprocessableContent
            }
        self.init(status, code: Code(rawValue: rejection.reason.rawValue)!, rejection.message)
    }

    /// 409 when the federation is full, 429 with `Retry-After` for rates and parked polls.
    init(_ error: LimitError) {
        let retry = error.retryAfter.map { max(1, Int($0.seconds.rounded(.up))) }
        switch error.limit {
        case .clients: self.init(.conflict, code: .clientLimitReached, error.message)
        case .registerRate, .submitRate:
            self.init(.tooManyRequests, code: .rateLimited, error.message, retryAfterSeconds: retry)
        case .longPolls, .clientLongPolls:
            self.init(.tooManyRequests, code: .tooManyPolls, error.message, retryAfterSeconds: retry)
        case .connections:
            self.init(.serviceUnavailable, code: .tooManyConnections, error.message, retryAfterSeconds: retry)
        case .slowBody: self.init(.requestTimeout, code: .bodyTooSlow, error.message)
        case .queuedRollbacks:
            self.init(.tooManyRequests, code: .tooManyRollbacks, error.message, retryAfterSeconds: retry)
        }
    }

    /// 404 unknown version, 409 corrupt or wrong state, 422 bad tag; failures of the database itself are 500.
    init(_ error: CheckpointStoreError) {
        switch error.code {
        case .notFound: self.init(.notFound, code: .unknownCheckpoint, error.message)
        case .integrity: self.init(.conflict, code: .checkpointCorrupt, error.message)
        case .invalidState: self.init(.conflict, code: .invalidState, error.message)
        case .forceRequired: self.init(.conflict, code: .forceRequired, error.message)
        case .invalidTag: self.init(.unprocessableContent, code: .invalidTag, error.message)
        case .fenced: self.init(.serviceUnavailable, code: .notLeader, error.message, retryAfterSeconds: 1)
        case .database:
            self.init(
                .serviceUnavailable, code: .storeFailing, "the store is unavailable; retry shortly",
                retryAfterSeconds: 1)
        default: self.init(.internalServerError, code: .internal, "internal error")
        }
    }

    /// 409 when there is no round to act on or rounds outran a rollback, 404 for an unknown client.
    init(_ error: OperatorActionError) {
        switch error.code {
        case .noOpenRound: self.init(.conflict, code: .noOpenRound, error.message)
        case .unknownClient: self.init(.notFound, code: .unknownClient, error.message)
        case .roundsKeepCommitting: self.init(.conflict, code: .roundsKeepCommitting, error.message)
        case .draining: self.init(.conflict, code: .draining, error.message)
        }
    }

    /// 401 without a known token, 403 when the token may not do this or was revoked.
    init(_ refusal: AuthRefusal) {
        switch refusal {
        case .unauthenticated(let message): self.init(.unauthorized, code: .unauthenticated, message)
        case .forbidden(let message): self.init(.forbidden, code: .forbidden, message)
        case .revoked: self.init(.forbidden, code: .revoked, "this client's token was revoked")
        }
    }

    /// Hummingbird's own refusals (no route, wrong method, body too large).
    init(_ error: HTTPError) {
        switch error.status {
        case .notFound: self.init(.notFound, code: .notFound, error.body ?? "no such route")
        case .contentTooLarge: self.init(.contentTooLarge, code: .payloadTooLarge, "request body exceeds the limit")
        case .methodNotAllowed: self.init(.methodNotAllowed, code: .methodNotAllowed, "method not allowed here")
        case .badRequest: self.init(.badRequest, code: .malformedRequest, error.body ?? "malformed request")
        default: self.init(error.status, code: .httpError, error.body ?? error.status.reasonPhrase)
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
