import FederationCore
import Foundation
import Hummingbird
import NIOCore
import Testing

@testable import Coordinator
@testable import ModelManager

/// `APIError(from:)` is the one mapping from domain errors to HTTP: each row is an error and the status and
/// code it must answer with.
@Suite struct APIErrorMappingTests {
    struct Row: CustomTestStringConvertible, Sendable {
        var error: any Error & Sendable
        var status: Int
        var code: String
        var testDescription: String { "\(error) → \(status) \(code)" }
    }

    static let rows: [Row] =
        UpdateRejection.Reason.allCases.map { reason in
            let status =
                switch reason {
                case .unknownTask: 404
                case .notYourTask: 403
                case .late, .duplicate: 409
                case .malformed: 400
                default: 422
                }
            return Row(error: UpdateRejection(reason, "x"), status: status, code: reason.rawValue)
        } + [
            Row(error: LimitError(limit: .clients, message: "x"), status: 409, code: "client_limit_reached"),
            Row(error: LimitError(limit: .registerRate, message: "x"), status: 429, code: "rate_limited"),
            Row(error: LimitError(limit: .submitRate, message: "x"), status: 429, code: "rate_limited"),
            Row(error: LimitError(limit: .longPolls, message: "x"), status: 429, code: "too_many_polls"),
            Row(error: LimitError(limit: .clientLongPolls, message: "x"), status: 429, code: "too_many_polls"),
            Row(error: LimitError(limit: .connections, message: "x"), status: 503, code: "too_many_connections"),
            Row(error: LimitError(limit: .slowBody, message: "x"), status: 408, code: "body_too_slow"),
            Row(error: CheckpointStoreError(.notFound, "x"), status: 404, code: "unknown_checkpoint"),
            Row(error: CheckpointStoreError(.integrity, "x"), status: 409, code: "checkpoint_corrupt"),
            Row(error: CheckpointStoreError(.invalidState, "x"), status: 409, code: "invalid_state"),
            Row(error: CheckpointStoreError(.forceRequired, "x"), status: 409, code: "force_required"),
            Row(error: CheckpointStoreError(.invalidTag, "x"), status: 422, code: "invalid_tag"),
            Row(error: CheckpointStoreError(.database, "disk I/O error"), status: 503, code: "store_failing"),
            Row(error: OperatorActionError(code: .noOpenRound, message: "x"), status: 409, code: "no_open_round"),
            Row(error: OperatorActionError(code: .unknownClient, message: "x"), status: 404, code: "unknown_client"),
            Row(
                error: OperatorActionError(code: .roundsKeepCommitting, message: "x"), status: 409,
                code: "rounds_keep_committing"),
            Row(error: OperatorActionError(code: .draining, message: "x"), status: 409, code: "draining"),
            Row(error: LimitError(limit: .queuedRollbacks, message: "x"), status: 429, code: "too_many_rollbacks"),
            Row(error: AuthRefusal.unauthenticated("x"), status: 401, code: "unauthenticated"),
            Row(error: AuthRefusal.forbidden("x"), status: 403, code: "forbidden"),
            Row(error: AuthRefusal.revoked, status: 403, code: "revoked"),
            Row(error: NotReadyReason.shuttingDown, status: 503, code: "not_ready"),
            Row(error: NotReadyReason.storeFailing, status: 503, code: "store_failing"),
            Row(
                error: SQLiteError(code: 8, message: "attempt to write a readonly database"), status: 503,
                code: "store_failing"),
            Row(error: CheckpointStoreError(.fenced, "x"), status: 503, code: "not_leader"),
            Row(
                error: EnrolmentNotStored(cause: "postgres://rondo@db:5432/fed refused"), status: 503,
                code: "store_failing"),
            Row(error: SafeTensorsError(.invalidHeader, "x"), status: 400, code: "invalid_safetensors"),
            Row(error: SafeTensorsError(.unsupportedDType, "x"), status: 422, code: "unsupported_dtype"),
            Row(error: HTTPError(.notFound), status: 404, code: "not_found"),
            Row(error: HTTPError(.methodNotAllowed), status: 405, code: "method_not_allowed"),
            Row(error: HTTPError(.contentTooLarge), status: 413, code: "payload_too_large"),
            Row(error: HTTPError(.badRequest), status: 400, code: "malformed_request"),
            Row(error: NIOTooManyBytesError(maxBytes: 10), status: 413, code: "payload_too_large"),
            Row(error: ConnectionGuardError(), status: 408, code: "request_cut_off"),
            Row(error: CancellationError(), status: 500, code: "internal"),
            Row(
                error: APIError(.unprocessableContent, code: .invalidName, "kept as it is"), status: 422,
                code: "invalid_name"),
        ]

    @Test(arguments: rows) func mapsTo(_ row: Row) {
        let answer = APIError(from: row.error)
        #expect(answer.status.code == row.status)
        #expect(answer.code.rawValue == row.code)
    }

    /// A store failure's cause names the database (a PostgreSQL URL, a file): the log gets it, a client does not.
    @Test func storeFailuresDoNotNameTheDatabase() {
        let causes: [any Error] = [
            EnrolmentNotStored(cause: "PostgreSQL connection: connecting to postgres://rondo@db.internal:5432/fed"),
            ClientLookupFailed(cause: "PostgreSQL connection: connecting to postgres://rondo@db.internal:5432/fed"),
            SQLiteError(code: 8, message: "attempt to write a readonly database /var/lib/rondo/rondo.db"),
        ]
        for cause in causes {
            let answer = APIError(from: cause)
            #expect(answer.status.code == 503)
            #expect(!answer.message.contains("postgres://") && !answer.message.contains("rondo.db"), "\(answer)")
        }
    }

    @Test func aDecodingErrorNamesTheField() throws {
        struct Body: Decodable { var name: String }
        let error = try #require(throws: DecodingError.self) {
            try JSONDecoder().decode(Body.self, from: Data("{}".utf8))
        }
        let answer = APIError(from: error)
        #expect(answer.status.code == 400 && answer.code == .malformedBody)
        #expect(answer.message.contains("missing field \"name\""))
    }

    @Test func rateLimitsSayWhenToRetry() {
        let answer = APIError(from: LimitError(limit: .submitRate, message: "x", retryAfter: .milliseconds(1200)))
        #expect(answer.retryAfterSeconds == 2, "rounded up, so a retry at that time succeeds")
        #expect(APIError(from: LimitError(limit: .clients, message: "x")).retryAfterSeconds == nil)
    }

    @Test func everyRejectionReasonIsAnAPICode() {
        for reason in UpdateRejection.Reason.allCases {
            #expect(APIError.Code(rawValue: reason.rawValue) != nil, "\(reason)")
        }
    }
}
