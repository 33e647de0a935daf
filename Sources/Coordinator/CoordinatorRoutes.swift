import FederationCore
import FederationTelemetry
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The HTTP API (`/v1`), as thin handlers over `RoundDriver`: authenticate, read and decode the body within
/// its limit, hand the event to the driver, render the answer. Every failure leaves as an `APIError`.
struct CoordinatorRoutes: Sendable {
    let driver: RoundDriver
    /// Every operator action, audited (admin routes).
    let operators: OperatorActions
    /// Read-only store access (admin routes).
    let history: FederationHistory
    let configuration: CoordinatorConfiguration
    /// The tokens admin endpoints accept, each with its role.
    let adminCredentials: [AdminCredential]
    let metrics: CoordinatorMetrics
    /// Renders the Prometheus exposition text for `/metrics`.
    let renderMetrics: @Sendable () -> [UInt8]
    /// Bounds the fit-result uploads received at once.
    let uploads: UploadSlots

    func add(to router: Router<CoordinatorRequestContext>) {
        router.add(middleware: HTTPMetricsMiddleware(metrics: metrics))
        router.add(middleware: APIErrorMiddleware())
        router.get("/healthz") { _, _ in try json(["status": "ok"]) }
        router.get("/metrics") { request, _ in
            if let token = configuration.metricsToken, !AdminToken.matches(bearer(request) ?? "", token) {
                throw refused(.unauthenticated("/metrics needs its bearer token"))
            }
            metrics.refreshProcessStats()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: renderMetrics())))
        }
        router.get("/v1/openapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: try APIDocument.bytes())))
        }
        router.get("/readyz") { _, _ in
            if let reason = await driver.notReadyReason { throw reason }
            return try json(["status": "ready"])
        }
        addAdminRoutes(to: router)
        router.post("/v1/clients") { request, context in try await register(request, context) }
        router.post("/v1/clients/:id/heartbeat") { request, context in
            let client = try await authenticate(request, context, ownerOf: context.parameters.require("id"))
            await driver.heartbeat(client)
            // The next heartbeat comes after the kept-alive connection would have been closed anyway: close it
            // now instead of holding it idle until then.
            let closes = configuration.effectiveHeartbeatInterval > configuration.limits.keepAliveTimeout
            return Response(status: .noContent, headers: closes ? [.connection: "close"] : [:])
        }
        router.delete("/v1/clients/:id") { request, context in
            let client = try await authenticate(request, context, ownerOf: context.parameters.require("id"))
            await driver.leave(client)
            return Response(status: .noContent)
        }
        router.get("/v1/clients/:id/tasks/next") { request, context in try await nextTask(request, context) }
        router.get("/v1/models/:version") { request, context in try await model(request, context) }
        router.post("/v1/tasks/:task_id/result") { request, context in try await submitResult(request, context) }
        router.post("/v1/tasks/:task_id/failure") { request, context in
            let client = try await authenticate(request, context, ownerOf: nil)
            try await limited { () async throws(LimitError) in try await driver.admitSubmission(from: client) }
            let taskID = TaskID(try context.parameters.require("task_id"))
            let body = try await decodeJSON(WireProtocol.TaskFailureMessage.self, from: request)
            let message =
                body.message.trimmingWhitespace().isEmpty
                ? "(no message)"
                : try ClientText.validated(
                    body.message, field: "message", code: .invalidMessage, maxBytes: ClientText.maxMessageBytes,
                    multiline: true)
            try await driver.reportFailure(taskID, client: client, message: message)
            await driver.submissionAccepted(from: client)
            return try json(["status": "recorded"], status: .accepted)
        }
    }

    // MARK: Handlers

    private func register(_ request: Request, _ context: CoordinatorRequestContext) async throws -> Response {
        if let enrolment = configuration.enrolmentToken, !AdminToken.matches(bearer(request) ?? "", enrolment) {
            throw refused(.unauthenticated("registration needs the federation's enrolment token"))
        }
        let body = try await decodeJSON(WireProtocol.RegistrationRequest.self, from: request)
        let name = try ClientText.validated(
            body.name, field: "name", code: .invalidName, maxBytes: ClientText.maxNameBytes)
        if let key = body.identityKey {
            guard WireProtocol.RegistrationRequest.identityKeyLength.contains(key.utf8.count),
                key.utf8.allSatisfy({ (0x21...0x7E).contains($0) })
            else {
                throw APIError(
                    .badRequest, code: .invalidIdentityKey,
                    "identity_key must be 16 to 256 printable ASCII characters without spaces")
            }
        }
        let registration: WireProtocol.RegistrationResponse
        do {
            registration = try await driver.register(name: name, identityKey: body.identityKey)
        } catch {
            switch error {
            case .limit(let limit):
                metrics.limitRefused(limit.limit)
                throw limit
            case .revoked:
                throw refused(.revoked)
            case .notStored(let failure):
                throw failure
            }
        }
        return try json(registration, status: .created)
    }

    private func nextTask(_ request: Request, _ context: CoordinatorRequestContext) async throws -> Response {
        let client = try await authenticate(request, context, ownerOf: context.parameters.require("id"))
        var wait = Duration.zero
        if let text = request.uri.queryParameters["wait_seconds"] {
            guard let seconds = Double(String(text)), seconds.isFinite, seconds >= 0 else {
                throw APIError.invalidParameter("wait_seconds must be a non-negative number")
            }
            // Clamp before converting: a huge wait_seconds must not overflow the conversion.
            wait = .seconds(min(seconds, configuration.maxLongPoll.seconds))
        }
        let answer = try await limited { () async throws(LimitError) in
            try await driver.nextTask(for: client, wait: wait, isConnectionOpen: context.isConnectionOpen)
        }
        let next: TaskDelivery
        switch answer {
        case .task(let delivery):
            next = delivery
        case .noTask(let retryAfter):
            return Response(status: .noContent, headers: retryAfter.map { [.retryAfter: String($0)] } ?? [:])
        }
        let task = next.task
        return try json(
            WireProtocol.TaskMessage(
                taskID: task.id.rawValue, round: task.round, kind: task.kind, modelVersion: task.modelVersion,
                modelSHA256: task.modelSHA256, config: task.config,
                deadlineSeconds: next.deadlineIn.seconds, traceparent: next.traceparent))
    }

    private func model(_ request: Request, _ context: CoordinatorRequestContext) async throws -> Response {
        let client = try await authenticate(request, context, ownerOf: nil)
        let text = try context.parameters.require("version")
        var requested: Int?
        if text != "current" {
            guard let number = Int(text), number > 0 else {
                throw APIError.invalidParameter("model version must be a positive integer or \"current\"")
            }
            requested = number
        }
        let stored: ServedModel
        switch try await driver.download(requested, for: client) {
        case .model(let served):
            stored = served
        case .unknown(let number):
            throw APIError(.notFound, code: .unknownModelVersion, "no model version \(number)")
        case .forbidden(let number):
            throw refused(.forbidden("model version \(number) is neither current nor in one of this client's tasks"))
        }
        let etag = "\"\(stored.sha256)\""
        var headers: HTTPFields = [.eTag: etag, .cacheControl: "no-cache"]
        headers[HTTPField.Name("X-Rondo-Model-Version")!] = String(stored.version)
        if let match = request.headers[.ifNoneMatch],
            match == "*"
                || match.split(separator: ",").contains(where: {
                    // Weak comparison (RFC 9110 §13.1.2): `W/"<sha>"` names the same version.
                    let tag = $0.trimmingCharacters(in: .whitespaces)
                    return tag == etag || tag == "W/" + etag
                })
        {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = WireProtocol.safetensorsMediaType
        headers[.acceptRanges] = "bytes"
        // A client on a flaky link resumes a big download with `Range` (and `If-Range: <ETag>`, so a range of
        // another version is never spliced onto what it has). Every answer is a slice of the one shared buffer.
        let total = stored.byteCount
        let ifRangeHolds = request.headers[.ifRange].map { $0 == etag } ?? true
        switch ifRangeHolds ? ByteRange(header: request.headers[.range], total: total) : .whole {
        case .whole:
            metrics.modelSent(bytes: total)
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: stored.slice(0..<total)))
        case .partial(let range):
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(total)"
            metrics.modelSent(bytes: range.count)
            return Response(
                status: .partialContent, headers: headers, body: ResponseBody(byteBuffer: stored.slice(Range(range))))
        case .unsatisfiable:
            throw APIError(
                .rangeNotSatisfiable, code: .rangeNotSatisfiable,
                "the requested range starts at or after the model's \(total) bytes", contentRangeTotal: total)
        }
    }

    /// The rejection-counter reason for an error of a result submission; nil for errors that are not a verdict
    /// on the result (authentication, limits).
    static func rejectionReason(for code: APIError.Code) -> String? {
        switch code {
        case .payloadTooLarge: "too_large"
        case .unsupportedMediaType: "wrong_media_type"
        case .malformedBody: "malformed"
        case .invalidSafetensors: "invalid_safetensors"
        case .unsupportedDType: "wrong_dtype"
        default: UpdateRejection.Reason(rawValue: code.rawValue)?.rawValue
        }
    }

    /// Counts a refused result by reason (and by task kind once the task is known), then passes the error on.
    private func countRefusal(_ error: any Error, kind: TaskKind?) -> any Error {
        if let reason = Self.rejectionReason(for: APIError(from: error).code) {
            metrics.resultRefused(kind: kind, reason: reason)
        }
        return error
    }

    private func submitResult(_ request: Request, _ context: CoordinatorRequestContext) async throws -> Response {
        let client = try await authenticate(request, context, ownerOf: nil)
        try await limited { () async throws(LimitError) in try await driver.admitSubmission(from: client) }
        let taskID = TaskID(try context.parameters.require("task_id"))
        let task: RoundDriver.Task
        do {
            task = try await driver.checkTask(taskID, client: client)
        } catch {
            throw countRefusal(error, kind: nil)
        }
        do {
            switch task.kind {
            case .fit: try await submitFit(task, request, client: client)
            case .evaluate: try await submitEvaluation(task, request, client: client)
            }
        } catch {
            throw countRefusal(error, kind: task.kind)
        }
        await driver.submissionAccepted(from: client)
        return try json(["status": "accepted"], status: .accepted)
    }

    /// The request's media type, lower-cased, without parameters.
    func mediaType(of request: Request) -> String? {
        request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
    }

    private func submitEvaluation(_ task: RoundDriver.Task, _ request: Request, client: ClientID) async throws {
        let mediaType = mediaType(of: request)
        guard mediaType == "application/json" else {
            throw APIError(
                .unsupportedMediaType, code: .unsupportedMediaType,
                "evaluation results are application/json, not \(mediaType ?? "unspecified")")
        }
        let message = try await decodeJSON(WireProtocol.EvaluationResultMessage.self, from: request)
        let report = EvaluationReport(
            loss: message.loss, numExamples: message.numExamples, metrics: message.metrics ?? [:])
        try await driver.submitEvaluation(task.id, client: client, report: report)
    }

    // MARK: Helpers

    /// The client behind the request's bearer token; with `ownerOf`, the token must belong to that client id.
    /// Unknown tokens are 401, revoked ones and another client's resources 403; each refusal is counted.
    private func authenticate(_ request: Request, _ context: CoordinatorRequestContext, ownerOf id: String?)
        async throws
        -> ClientID
    {
        guard let token = bearer(request) else {
            throw refused(.unauthenticated("missing or unknown bearer token"))
        }
        switch try await driver.authenticate(token: token) {
        case .unknown:
            throw refused(.unauthenticated("missing or unknown bearer token"))
        case .revoked:
            throw refused(.revoked)
        case .client(let client):
            if let id, id != client.rawValue {
                throw refused(.forbidden("this token belongs to another client"))
            }
            return client
        }
    }

    /// Counts an authentication or authorisation refusal and returns it for throwing.
    func refused(_ refusal: AuthRefusal) -> AuthRefusal {
        metrics.authRefused(refusal)
        return refusal
    }

    /// Runs `body`, counting a limit refusal before passing it on.
    func limited<T>(_ body: () async throws(LimitError) -> T) async throws(LimitError) -> T {
        do {
            return try await body()
        } catch {
            metrics.limitRefused(error.limit)
            throw error
        }
    }

    /// The request's bearer token, if it has one.
    func bearer(_ request: Request) -> String? {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return nil }
        return String(header.dropFirst("Bearer ".count))
    }

    func collect(_ request: Request, limit: Int) async throws -> ByteBuffer {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw APIError(
                .contentTooLarge, code: .payloadTooLarge, "body of \(length) bytes exceeds the limit of \(limit)")
        }
        do {
            return try await request.body.collect(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError.payloadTooLarge(limit: limit)
        } catch is NIOTooManyBytesError {
            // A chunked body has no Content-Length to check up front; NIO stops collecting at the limit.
            throw APIError.payloadTooLarge(limit: limit)
        }
    }

    func decodeJSON<T: Decodable>(_ type: T.Type, from request: Request) async throws -> T {
        let body = try await collect(request, limit: configuration.limits.maxJSONBytes)
        do {
            return try JSONDecoder().decode(T.self, from: Data(body.readableBytesView))
        } catch let error as DecodingError {
            throw APIError.malformed("request body does not match the expected JSON: \(APIError.describe(error))")
        }
    }
}

/// A JSON response.
func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    Response(
        status: status, headers: [.contentType: "application/json"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: try JSONStyle.encoder().encode(value))))
}
