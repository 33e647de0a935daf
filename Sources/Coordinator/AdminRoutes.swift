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
    func addAdminRoutes(to router: Router<CoordinatorRequestContext>) {
        router.get("/v1/status") { request, _ in
            try requireAdmin(request, .viewer)
            return try json(await driver.statusView())
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
            // Pages, so a federation of 50,000 enrolled clients is never one unbounded answer.
            let limit = request.uri.queryParameters["limit"] == nil ? Self.clientPageSize : try limit(request)
            let offset = try request.uri.queryParameters["offset"].map { try integer(String($0), name: "offset") } ?? 0
            let all = try await history.clients(contacts: await driver.clientContacts())
            return try json(ClientPage(all, offset: offset, limit: limit))
        }
        router.get("/v1/checkpoints") { request, _ in
            try requireAdmin(request, .viewer)
            let limit = request.uri.queryParameters["limit"] == nil ? nil : try limit(request)
            return try json(try await history.listing(limit: limit))
        }
        // `{version}` is any version reference: v12, 12, current, best, or a tag.
        router.get("/v1/checkpoints/:version") { request, context in
            try requireAdmin(request, .viewer)
            let version = try await history.resolve(try context.parameters.require("version"))
            guard let detail = try await history.detail(version: version) else {
                throw CheckpointStoreError(.notFound, "no checkpoint version \(version)")
            }
            return try json(detail)
        }
        router.get("/v1/checkpoints/:version/weights") { request, context in
            try requireAdmin(request, .viewer)
            let version = try await history.resolve(try context.parameters.require("version"))
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
            let body = try await decodeJSON(RollbackBody.self, from: request)
            let reason = try ClientText.validated(
                body.reason, field: "reason", code: .invalidReason, maxBytes: ClientText.maxMessageBytes)
            let text = try context.parameters.require("version")
            // A version number needs no store read here (the rollback reads the version and answers 404 if it
            // is unknown), so a rollback waits for the store only inside the rollback lane.
            let version =
                if case .version(let number) = try VersionReference(parsing: text) {
                    number
                } else {
                    try await history.resolve(text)
                }
            let (from, to) = try await operators.rollback(
                to: version, reason: reason, actor: actor, traceID: AdminAction.traceID(of: request),
                force: body.force ?? false)
            return try json(RollbackAnswer(fromVersion: from, toVersion: to, forced: body.force ?? false))
        }
        router.post("/v1/checkpoints/:version/tags") { request, context in
            let actor = try requireAdmin(request, .operator)
            let body = try await decodeJSON(TagBody.self, from: request)
            let version = try await history.resolve(try context.parameters.require("version"))
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
        return "admin:\(credential.name)" + (Self.operatorName(of: request).map { " (\($0))" } ?? "")
    }

    /// Who is behind an admin token's request, as the `rondo` CLI names its user in `Rondo-Operator`
    /// (`alice@host`). Informational only (the token is what authorises); printable ASCII, at most 128 bytes,
    /// anything else is ignored.
    static func operatorName(of request: Request) -> String? {
        guard let name = HTTPField.Name("Rondo-Operator"), let value = request.headers[name],
            (1...128).contains(value.utf8.count), value.utf8.allSatisfy({ (0x21...0x7E).contains($0) })
        else { return nil }
        return value
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

    /// Clients per `/v1/clients` page without a `limit`.
    static let clientPageSize = 1000

    private func limit(_ request: Request) throws -> Int {
        guard let text = request.uri.queryParameters["limit"] else { return 100 }
        guard let value = Int(String(text)), (1...10_000).contains(value) else {
            throw APIError.invalidParameter("limit must be between 1 and 10000")
        }
        return value
    }
}

struct RollbackBody: Decodable {
    var reason: String
    /// Needed to roll back to a version the guard rejected or whose round was aborted; recorded.
    var force: Bool?
}

/// What a rollback did.
public struct RollbackAnswer: Codable, Sendable {
    public var fromVersion: Int
    public var toVersion: Int
    public var forced: Bool

    public init(fromVersion: Int, toVersion: Int, forced: Bool) {
        self.fromVersion = fromVersion
        self.toVersion = toVersion
        self.forced = forced
    }

    enum CodingKeys: String, CodingKey {
        case forced
        case fromVersion = "from_version"
        case toVersion = "to_version"
    }
}

struct OptionalReasonBody: Decodable {
    var reason: String?
}

struct TagBody: Decodable {
    var tag: String
}

/// What a tag request did.
public struct TagAnswer: Codable, Sendable {
    public var version: Int
    public var tag: String

    public init(version: Int, tag: String) {
        self.version = version
        self.tag = tag
    }
}

/// `/v1/checkpoints` and `rondo checkpoints list --json`.
public struct CheckpointList: Codable, Sendable {
    public var checkpoints: [CheckpointView]
    public var refs: [String: Int]

    public init(checkpoints: [CheckpointView], refs: [String: Int]) {
        self.checkpoints = checkpoints
        self.refs = refs
    }
}

/// `/v1/checkpoints/{ref}` and `rondo checkpoints show --json`: the version, the refs naming it, its tensors.
public struct CheckpointDetail: Codable, Sendable {
    public var checkpoint: CheckpointView
    public var refs: [String]
    public var tensors: [TensorView]
}

/// One tensor of a checkpoint.
public struct TensorView: Codable, Sendable, Equatable {
    public var name: String
    public var dtype: String
    public var shape: [Int]
    public var parameters: Int
}
