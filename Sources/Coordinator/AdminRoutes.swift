import FederationCore
import Foundation
import HTTPTypes
import Hummingbird
import ModelManager
import NIOCore

/// Operator endpoints: status, history, checkpoints, rollback, tags and federation controls. All require an
/// admin bearer token; reads need the viewer role, actions the operator role. Reads go to `FederationHistory`,
/// actions to `OperatorActions`; errors are mapped by `APIError(from:)`.
extension CoordinatorRoutes {
    func addAdminRoutes(to router: Router<BasicRequestContext>) {
        router.get("/v1/status") { request, _ in
            try requireAdmin(request, .viewer)
            return try json(await driver.status())
        }
        router.get("/v1/rounds") { request, _ in
            try requireAdmin(request, .viewer)
            return try json(["rounds": try await history.rounds(limit: try limit(request))])
        }
        router.get("/v1/rounds/:round") { request, context in
            try requireAdmin(request, .viewer)
            let number = try integer(context.parameters.require("round"), name: "round")
            guard let round = try await history.round(number) else {
                throw APIError(.notFound, code: .unknownRound, "no round \(number)")
            }
            return try json(round)
        }
        router.get("/v1/clients") { request, _ in
            try requireAdmin(request, .viewer)
            return try json(["clients": try await history.clients()])
        }
        router.get("/v1/checkpoints") { request, _ in
            try requireAdmin(request, .viewer)
            return try json(
                CheckpointList(checkpoints: try await history.checkpoints(), refs: try await history.refs()))
        }
        router.get("/v1/checkpoints/:version") { request, context in
            try requireAdmin(request, .viewer)
            let version = try integer(context.parameters.require("version"), name: "version")
            guard let checkpoint = try await history.checkpoint(version: version) else {
                throw CheckpointStoreError(.notFound, "no checkpoint version \(version)")
            }
            let refs = try await history.refs().filter { $0.value == version }.map(\.key).sorted()
            return try json(CheckpointDetail(checkpoint: checkpoint, refs: refs))
        }
        router.get("/v1/checkpoints/:version/weights") { request, context in
            try requireAdmin(request, .viewer)
            let version = try integer(context.parameters.require("version"), name: "version")
            guard try await history.checkpoint(version: version) != nil else {
                throw CheckpointStoreError(.notFound, "no checkpoint version \(version)")
            }
            let bytes = try await history.bytes(version: version)
            return Response(
                status: .ok, headers: [.contentType: WireProtocol.safetensorsMediaType],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        router.get("/v1/events") { request, _ in
            try requireAdmin(request, .viewer)
            var kind: EventKind?
            if let text = request.uri.queryParameters["kind"] {
                guard let known = EventKind(rawValue: String(text)) else {
                    throw APIError.invalidParameter(
                        "kind must be one of \(EventKind.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                kind = known
            }
            return try json(["events": try await history.events(limit: try limit(request), kind: kind)])
        }
        router.post("/v1/checkpoints/:version/rollback") { request, context in
            let actor = try requireAdmin(request, .operator)
            let version = try integer(context.parameters.require("version"), name: "version")
            let body = try await decodeJSON(ReasonBody.self, from: request)
            let reason = try ClientText.validated(
                body.reason, field: "reason", code: .invalidReason, maxBytes: ClientText.maxMessageBytes)
            let (from, to) = try await operators.rollback(
                to: version, reason: reason, actor: actor, traceID: AdminAction.traceID(of: request))
            return try json(["from_version": from, "to_version": to])
        }
        router.post("/v1/checkpoints/:version/tags") { request, context in
            let actor = try requireAdmin(request, .operator)
            let version = try integer(context.parameters.require("version"), name: "version")
            let body = try await decodeJSON(TagBody.self, from: request)
            try await operators.tag(version: version, name: body.tag, actor: actor)
            return try json(TagAnswer(version: version, tag: body.tag))
        }
        router.post("/v1/federation/pause") { request, _ in
            let actor = try requireAdmin(request, .operator)
            try await operators.setPaused(true, actor: actor, traceID: AdminAction.traceID(of: request))
            return try json(["paused": true])
        }
        router.post("/v1/federation/resume") { request, _ in
            let actor = try requireAdmin(request, .operator)
            try await operators.setPaused(false, actor: actor, traceID: AdminAction.traceID(of: request))
            return try json(["paused": false])
        }
        router.post("/v1/rounds/current/abort") { request, _ in
            let actor = try requireAdmin(request, .operator)
            let reason = try await optionalReason(request, default: "aborted by an operator")
            let round = try await operators.abortRound(
                reason: reason, actor: actor, traceID: AdminAction.traceID(of: request))
            return try json(["aborted_round": round])
        }
        router.post("/v1/clients/:id/revoke") { request, context in
            let actor = try requireAdmin(request, .operator)
            let id = try context.parameters.require("id")
            let reason = try await optionalReason(request, default: "revoked by an operator")
            try await operators.revoke(
                ClientID(id), reason: reason, actor: actor, traceID: AdminAction.traceID(of: request))
            return try json(["client_id": id, "status": "revoked"])
        }
    }

    /// Checks the admin bearer token and its role.
    /// - Returns: the audit actor, `admin:<token name>`.
    /// - Throws: `AuthRefusal` (401 without a known admin token, 403 when its role does not allow the action).
    @discardableResult
    private func requireAdmin(_ request: Request, _ role: AdminCredential.Role) throws -> String {
        guard let token = bearer(request), let credential = AdminCredential.match(token, in: adminCredentials) else {
            throw refused(.unauthenticated("admin endpoints need an admin bearer token"))
        }
        guard credential.role.allows(role) else {
            throw refused(
                .forbidden("the \(credential.role.rawValue) role may not do this; it needs \(role.rawValue)"))
        }
        return "admin:\(credential.name)"
    }

    /// The optional `{reason}` of an operator action; an empty body takes the default.
    private func optionalReason(_ request: Request, default fallback: String) async throws -> String {
        let body = try await collect(request, limit: configuration.limits.maxJSONBytes)
        guard body.readableBytes > 0 else { return fallback }
        let reason: String?
        do {
            reason = try JSONDecoder().decode(OptionalReasonBody.self, from: Data(body.readableBytesView)).reason
        } catch {
            throw APIError.malformed("expected a JSON object with an optional \"reason\" string")
        }
        guard let reason, !reason.trimmingWhitespace().isEmpty else { return fallback }
        return try ClientText.validated(
            reason, field: "reason", code: .invalidReason, maxBytes: ClientText.maxMessageBytes)
    }

    private func integer(_ text: String, name: String) throws -> Int {
        guard let value = Int(text), value >= 0 else {
            throw APIError.invalidParameter("\(name) must be a non-negative integer")
        }
        return value
    }

    private func limit(_ request: Request) throws -> Int {
        guard let text = request.uri.queryParameters["limit"] else { return 100 }
        guard let value = Int(String(text)), (1...10_000).contains(value) else {
            throw APIError.invalidParameter("limit must be between 1 and 10000")
        }
        return value
    }
}

struct ReasonBody: Decodable {
    var reason: String
}

struct OptionalReasonBody: Decodable {
    var reason: String?
}

struct TagBody: Decodable {
    var tag: String
}

struct TagAnswer: Codable {
    var version: Int
    var tag: String
}

struct CheckpointList: Encodable {
    var checkpoints: [CheckpointView]
    var refs: [String: Int]
}

struct CheckpointDetail: Encodable {
    var checkpoint: CheckpointView
    var refs: [String]
}
