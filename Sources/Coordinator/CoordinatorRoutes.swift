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
    let configuration: CoordinatorConfiguration
    /// The tokens admin endpoints accept, each with its role.
    let adminCredentials: [AdminCredential]
    let metrics: CoordinatorMetrics
    /// Renders the Prometheus exposition text for `/metrics`.
    let renderMetrics: @Sendable () -> [UInt8]

    func add(to router: Router<BasicRequestContext>) {
        router.add(middleware: HTTPMetricsMiddleware(metrics: metrics))
        router.add(middleware: APIErrorMiddleware())
        router.get("/healthz") { _, _ in try json(["status": "ok"]) }
        router.get("/metrics") { request, _ in
            if let token = configuration.metricsToken, !AdminToken.matches(bearer(request) ?? "", token) {
                metrics.authRefused("unauthenticated")
                throw APIError(.unauthorized, code: "unauthenticated", "/metrics needs its bearer token")
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
            if let reason = await driver.notReadyReason {
                throw APIError(.serviceUnavailable, code: reason.rawValue, reason.message)
            }
            return try json(["status": "ready"])
        }
        addAdminRoutes(to: router)
        router.post("/v1/clients") { request, context in try await register(request, context) }
        router.post("/v1/clients/:id/heartbeat") { request, context in
            let client = try await authenticate(request, context, ownerOf: context.parameters.require("id"))
            await driver.heartbeat(client)
            return Response(status: .noContent)
        }
        router.delete("/v1/clients/:id") { request, context in
            let client = try await authenticate(request, context, ownerOf: context.parameters.require("id"))
            await driver.leave(client)
            return Response(status: .noContent)
        }
        router.get("/v1/clients/:id/tasks/next") { request, context in try await nextTask(request, context) }
        router.get("/v1/models/:version") { request, context in try await model(request, context) }
        router.post("/v1/tasks/:task_id/result") { request, context in
            let kind = KindBox()
            do {
                return try await submitResult(request, context, kind: kind)
            } catch let error as APIError {
                if let reason = Self.rejectionReason(for: error.code) {
                    metrics.resultRefused(kind: kind.value, reason: reason)
                }
                throw error
            }
        }
        router.post("/v1/tasks/:task_id/failure") { request, context in
            let client = try await authenticate(request, context, ownerOf: nil)
            try await limited { () async throws(LimitError) in try await driver.admitSubmission(from: client) }
            let taskID = TaskID(try context.parameters.require("task_id"))
            let body = try await decodeJSON(WireProtocol.TaskFailureMessage.self, from: request)
            let message =
                body.message.trimmingWhitespace().isEmpty
                ? "(no message)"
                : try ClientText.validated(
                    body.message, field: "message", code: "invalid_message", maxBytes: ClientText.maxMessageBytes,
                    multiline: true)
            do throws(UpdateRejection) {
                try await driver.reportFailure(taskID, client: client, message: message)
            } catch {
                throw APIError.rejected(error)
            }
            return try json(["status": "recorded"], status: .accepted)
        }
    }

    // MARK: Handlers

    private func register(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        if let enrolment = configuration.enrolmentToken, !AdminToken.matches(bearer(request) ?? "", enrolment) {
            metrics.authRefused("unauthenticated")
            throw APIError(
                .unauthorized, code: "unauthenticated", "registration needs the federation's enrolment token")
        }
        let body = try await decodeJSON(WireProtocol.RegistrationRequest.self, from: request)
        let name = try ClientText.validated(
            body.name, field: "name", code: "invalid_name", maxBytes: ClientText.maxNameBytes)
        return try json(
            try await limited { () async throws(LimitError) in try await driver.register(name: name) }, status: .created
        )
    }

    private func nextTask(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let client = try await authenticate(request, context, ownerOf: context.parameters.require("id"))
        var wait = Duration.zero
        if let text = request.uri.queryParameters["wait_seconds"] {
            guard let seconds = Double(String(text)), seconds.isFinite, seconds >= 0 else {
                throw APIError(.badRequest, code: "invalid_parameter", "wait_seconds must be a non-negative number")
            }
            // Clamp before converting: a huge wait_seconds must not overflow the conversion.
            wait = .seconds(min(seconds, configuration.maxLongPoll.seconds))
        }
        let next = try await limited { () async throws(LimitError) in
            try await driver.nextTask(for: client, wait: wait)
        }
        guard let next else { return Response(status: .noContent) }
        let task = next.task
        return try json(
            WireProtocol.TaskMessage(
                taskID: task.id.rawValue, round: task.round, kind: task.kind.rawValue, modelVersion: task.modelVersion,
                modelSHA256: task.modelSHA256, config: task.config,
                deadlineSeconds: next.deadlineIn.seconds, traceparent: next.traceparent))
    }

    private func model(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let client = try await authenticate(request, context, ownerOf: nil)
        let text = try context.parameters.require("version")
        var requested: Int?
        if text != "current" {
            guard let number = Int(text), number > 0 else {
                throw APIError(
                    .badRequest, code: "invalid_parameter", "model version must be a positive integer or \"current\"")
            }
            requested = number
        }
        let version: Int
        let stored: (bytes: [UInt8], sha256: String)
        switch try await driver.download(requested, for: client) {
        case .model(let number, let bytes, let sha256):
            version = number
            stored = (bytes, sha256)
        case .unknown(let number):
            throw APIError(.notFound, code: "unknown_model_version", "no model version \(number)")
        case .forbidden(let number):
            metrics.authRefused("forbidden")
            throw APIError.forbidden("model version \(number) is neither current nor in one of this client's tasks")
        }
        let etag = "\"\(stored.sha256)\""
        var headers: HTTPFields = [.eTag: etag, .cacheControl: "no-cache"]
        headers[HTTPField.Name("X-Rondo-Model-Version")!] = String(version)
        if let match = request.headers[.ifNoneMatch],
            match == "*"
                || match.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == etag })
        {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = WireProtocol.safetensorsMediaType
        metrics.modelSent(bytes: stored.bytes.count)
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: stored.bytes)))
    }

    /// The rejection-counter reason for an error code of a result submission; nil for errors that are not a
    /// verdict on the result (authentication).
    static func rejectionReason(for code: String) -> String? {
        switch code {
        case "payload_too_large": "too_large"
        case "unsupported_media_type": "wrong_media_type"
        case "malformed_body": "malformed"
        case "invalid_safetensors": "invalid_safetensors"
        case _ where UpdateRejection.Reason(rawValue: code) != nil: code
        default: nil
        }
    }

    /// Carries the kind of the task a submission named out of the handler, for the refusal counter.
    final class KindBox: @unchecked Sendable {
        var value: TaskKind?
    }

    private func submitResult(_ request: Request, _ context: BasicRequestContext, kind: KindBox) async throws
        -> Response
    {
        let client = try await authenticate(request, context, ownerOf: nil)
        try await limited { () async throws(LimitError) in try await driver.admitSubmission(from: client) }
        let taskID = TaskID(try context.parameters.require("task_id"))
        let task: RoundDriver.Task
        do throws(UpdateRejection) {
            task = try await driver.checkTask(taskID, client: client)
        } catch {
            throw APIError.rejected(error)
        }
        kind.value = task.kind
        let mediaType = request.headers[.contentType]?.split(separator: ";").first?
            .trimmingCharacters(in: .whitespaces).lowercased()
        switch task.kind {
        case .fit:
            guard mediaType == WireProtocol.safetensorsMediaType || mediaType == "application/octet-stream" else {
                throw APIError(
                    .unsupportedMediaType, code: "unsupported_media_type",
                    "fit results are \(WireProtocol.safetensorsMediaType), not \(mediaType ?? "unspecified")")
            }
            let body = try await collect(request, limit: configuration.limits.maxUpdateBytes)
            metrics.updateReceived(bytes: body.readableBytes)
            let result: FitResult
            do {
                let file = try body.withUnsafeReadableBytes { raw throws(SafeTensorsError) in
                    try SafeTensorsFile.decode(raw, limits: configuration.limits.safetensors)
                }
                result = try FitResult(file: file)
            } catch let error as SafeTensorsError {
                throw APIError(.badRequest, code: "invalid_safetensors", "\(error.code): \(error.message)")
            } catch let error as UpdateRejection {
                throw APIError.rejected(error)
            }
            do throws(UpdateRejection) {
                try await driver.submitFit(taskID, client: client, result: result)
            } catch {
                throw APIError.rejected(error)
            }
        case .evaluate:
            guard mediaType == "application/json" else {
                throw APIError(
                    .unsupportedMediaType, code: "unsupported_media_type",
                    "evaluation results are application/json, not \(mediaType ?? "unspecified")")
            }
            let message = try await decodeJSON(WireProtocol.EvaluationResultMessage.self, from: request)
            let report = EvaluationReport(
                loss: message.loss, numExamples: message.numExamples, metrics: message.metrics ?? [:])
            do throws(UpdateRejection) {
                try await driver.submitEvaluation(taskID, client: client, report: report)
            } catch {
                throw APIError.rejected(error)
            }
        }
        return try json(["status": "accepted"], status: .accepted)
    }

    // MARK: Helpers

    /// The client behind the request's bearer token; with `ownerOf`, the token must belong to that client id.
    /// Unknown tokens are 401, revoked ones and another client's resources 403; each refusal is counted.
    private func authenticate(_ request: Request, _ context: BasicRequestContext, ownerOf id: String?) async throws
        -> ClientID
    {
        guard let token = bearer(request) else {
            metrics.authRefused("unauthenticated")
            throw APIError.unauthenticated
        }
        switch await driver.authenticate(token: token) {
        case .unknown:
            metrics.authRefused("unauthenticated")
            throw APIError.unauthenticated
        case .revoked:
            metrics.authRefused("revoked")
            throw APIError(.forbidden, code: "revoked", "this client's token was revoked")
        case .client(let client):
            if let id, id != client.rawValue {
                metrics.authRefused("forbidden")
                throw APIError.forbidden("this token belongs to another client")
            }
            return client
        }
    }

    /// Runs `body`, turning a limit refusal into its API error (409 for the client limit, else 429 with
    /// `Retry-After`) and counting it.
    func limited<T>(_ body: () async throws(LimitError) -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            metrics.limitRefused(error.limit.rawValue)
            throw APIError.limited(error)
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
                .contentTooLarge, code: "payload_too_large", "body of \(length) bytes exceeds the limit of \(limit)")
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
            throw APIError.malformed(
                "request body does not match the expected JSON: \(APIErrorMiddleware<BasicRequestContext>.describe(error))"
            )
        }
    }
}

/// A JSON response.
func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return Response(
        status: status, headers: [.contentType: "application/json"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
}
