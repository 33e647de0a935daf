import FederationCore
import Foundation
import HTTPTypes
import Hummingbird
import ModelManager
import NIOCore

/// Operator endpoints: status, history, checkpoints, rollback and tags. All require the admin bearer token.
extension CoordinatorRoutes {
    func addAdminRoutes(to router: Router<BasicRequestContext>) {
        router.get("/v1/status") { request, _ in
            try requireAdmin(request, .viewer)
            return try json(await driver.status())
        }
        router.get("/v1/rounds") { request, _ in
            try requireAdmin(request, .viewer)
            return try json(["rounds": try await driver.store.rounds(limit: try limit(request))])
        }
        router.get("/v1/rounds/:round") { request, context in
            try requireAdmin(request, .viewer)
            let number = try integer(context.parameters.require("round"), name: "round")
            guard let round = try await driver.store.round(number) else {
                throw APIError(.notFound, code: "unknown_round", "no round \(number)")
            }
            return try json(round)
        }
        router.get("/v1/clients") { request, _ in
            try requireAdmin(request, .viewer)
            let clients = try await driver.store.clients().map(ClientView.init)
            return try json(["clients": clients])
        }
        router.get("/v1/checkpoints") { request, _ in
            try requireAdmin(request, .viewer)
            return try json(
                CheckpointList(checkpoints: try await driver.store.checkpoints(), refs: try await driver.store.refs()))
        }
        router.get("/v1/checkpoints/:version") { request, context in
            try requireAdmin(request, .viewer)
            let version = try integer(context.parameters.require("version"), name: "version")
            guard let record = try await driver.store.checkpoint(version: version) else {
                throw unknownCheckpoint(version)
            }
            let refs = try await driver.store.refs().filter { $0.value == version }.map(\.key).sorted()
            return try json(CheckpointDetail(checkpoint: record, refs: refs))
        }
        router.get("/v1/checkpoints/:version/weights") { request, context in
            try requireAdmin(request, .viewer)
            let version = try integer(context.parameters.require("version"), name: "version")
            guard try await driver.store.checkpoint(version: version) != nil else { throw unknownCheckpoint(version) }
            let bytes = try await storeCall { try await driver.store.bytes(version: version) }
            return Response(
                status: .ok, headers: [.contentType: WireProtocol.safetensorsMediaType],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        router.get("/v1/events") { request, _ in
            try requireAdmin(request, .viewer)
            let kind = request.uri.queryParameters["kind"].map(String.init)
            return try json(["events": try await driver.store.events(limit: try limit(request), kind: kind)])
        }
        router.post("/v1/checkpoints/:version/rollback") { request, context in
            let actor = try requireAdmin(request, .operator)
            let version = try integer(context.parameters.require("version"), name: "version")
            let body = try await decodeJSON(ReasonBody.self, from: request)
            let reason = try ClientText.validated(
                body.reason, field: "reason", code: "invalid_reason", maxBytes: ClientText.maxMessageBytes)
            let (from, to) = try await storeCall {
                try await driver.rollback(
                    to: version, reason: reason, actor: actor, traceID: AdminAction.traceID(of: request))
            }
            metrics.adminAction("rollback")
            return try json(["from_version": from, "to_version": to])
        }
        router.post("/v1/checkpoints/:version/tags") { request, context in
            let actor = try requireAdmin(request, .operator)
            let version = try integer(context.parameters.require("version"), name: "version")
            let body = try await decodeJSON(TagBody.self, from: request)
            try await storeCall { try await driver.store.tag(version: version, name: body.tag, actor: actor) }
            metrics.adminAction("tag")
            return try json(["version": String(version), "tag": body.tag])
        }
        router.post("/v1/federation/pause") { request, _ in
            let actor = try requireAdmin(request, .operator)
            await driver.setPaused(true, actor: actor, traceID: AdminAction.traceID(of: request))
            metrics.adminAction("pause")
            return try json(["paused": true])
        }
        router.post("/v1/federation/resume") { request, _ in
            let actor = try requireAdmin(request, .operator)
            await driver.setPaused(false, actor: actor, traceID: AdminAction.traceID(of: request))
            metrics.adminAction("resume")
            return try json(["paused": false])
        }
        router.post("/v1/rounds/current/abort") { request, _ in
            let actor = try requireAdmin(request, .operator)
            let reason = try await optionalReason(request, default: "aborted by an operator")
            let round: Int
            do throws(OperatorActionError) {
                round = try await driver.abortRound(
                    reason: reason, actor: actor, traceID: AdminAction.traceID(of: request))
            } catch {
                throw APIError(.conflict, code: error.code.description, error.message)
            }
            metrics.adminAction("abort_round")
            return try json(["aborted_round": round])
        }
        router.post("/v1/clients/:id/revoke") { request, context in
            let actor = try requireAdmin(request, .operator)
            let id = try context.parameters.require("id")
            let reason = try await optionalReason(request, default: "revoked by an operator")
            do {
                try await driver.revoke(
                    ClientID(id), reason: reason, actor: actor, traceID: AdminAction.traceID(of: request))
            } catch let error as OperatorActionError {
                throw APIError(.notFound, code: error.code.description, error.message)
            }
            metrics.adminAction("revoke_client")
            return try json(["client_id": id, "status": "revoked"])
        }
    }

    /// Checks the admin bearer token and its role.
    /// - Returns: the audit actor, `admin:<token name>`.
    /// - Throws: 401 without a known admin token, 403 when its role does not allow the action.
    @discardableResult
    private func requireAdmin(_ request: Request, _ role: AdminCredential.Role) throws -> String {
        guard let token = bearer(request), let credential = AdminCredential.match(token, in: adminCredentials) else {
            metrics.authRefused("unauthenticated")
            throw APIError(.unauthorized, code: "unauthenticated", "admin endpoints need an admin bearer token")
        }
        guard credential.role.allows(role) else {
            metrics.authRefused("forbidden")
            throw APIError.forbidden("the \(credential.role.rawValue) role may not do this; it needs \(role.rawValue)")
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
            reason, field: "reason", code: "invalid_reason", maxBytes: ClientText.maxMessageBytes)
    }

    private func integer(_ text: String, name: String) throws -> Int {
        guard let value = Int(text), value >= 0 else {
            throw APIError(.badRequest, code: "invalid_parameter", "\(name) must be a non-negative integer")
        }
        return value
    }

    private func limit(_ request: Request) throws -> Int {
        guard let text = request.uri.queryParameters["limit"] else { return 100 }
        guard let value = Int(String(text)), (1...10_000).contains(value) else {
            throw APIError(.badRequest, code: "invalid_parameter", "limit must be between 1 and 10000")
        }
        return value
    }

    private func unknownCheckpoint(_ version: Int) -> APIError {
        APIError(.notFound, code: "unknown_checkpoint", "no checkpoint version \(version)")
    }

    /// Maps store refusals to API errors.
    private func storeCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as CheckpointStoreError {
            throw APIError.store(error) ?? error
        } catch is RollbackBusyError {
            throw APIError(.conflict, code: "busy", "a round's outcome is being stored; retry in a moment")
        }
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

/// A client as operators see it: never the token hash.
struct ClientView: Encodable {
    var clientID: String
    var name: String
    var firstSeen: Double
    var lastSeen: Double
    var leftAt: Double?
    var revokedAt: Double?

    init(_ record: ClientRecord) {
        revokedAt = record.revokedAt
        clientID = record.clientID
        name = record.name
        firstSeen = record.firstSeen
        lastSeen = record.lastSeen
        leftAt = record.leftAt
    }

    enum CodingKeys: String, CodingKey {
        case name
        case clientID = "client_id"
        case firstSeen = "first_seen"
        case lastSeen = "last_seen"
        case leftAt = "left_at"
        case revokedAt = "revoked_at"
    }
}

struct CheckpointList: Encodable {
    var checkpoints: [CheckpointRecord]
    var refs: [String: Int]
}

struct CheckpointDetail: Encodable {
    var checkpoint: CheckpointRecord
    var refs: [String]
}
