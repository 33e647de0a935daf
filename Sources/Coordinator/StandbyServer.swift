import FederationTelemetry
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle

/// Who leads, as a standby tells clients and operators.
public struct LeaderInfo: Sendable, Equatable {
    /// The leader's URL, if it published one.
    public var address: String?
    /// Seconds since the leader last renewed its lease.
    public var secondsSinceRenewal: Double?

    public init(address: String?, secondsSinceRenewal: Double?) {
        self.address = address
        self.secondsSinceRenewal = secondsSinceRenewal
    }
}

/// What a coordinator serves while another one leads its database: enough for a load balancer, Prometheus and
/// clients to know it is a standby, nothing that reads or writes federation state.
///
/// - `/healthz` 200 (the process is alive), `/readyz` 503 with `{"status": "standby", "leader": URL}`, so a
///   Kubernetes Service sends no traffic here;
/// - `/metrics` as usual (`rondo_leader` 0), behind the metrics token if one is set;
/// - every other path 503 `not_leader` with `Retry-After: 1` and a `Rondo-Leader` header naming the leader:
///   clients retry, at the leader when they know its URL.
public struct StandbyServer: Sendable {
    public let application: Application<RouterResponder<BasicRequestContext>>

    public init(
        configuration: CoordinatorConfiguration, leader: @escaping @Sendable () async -> LeaderInfo?,
        renderMetrics: @escaping @Sendable () -> [UInt8], logger: Logger,
        onListening: (@Sendable (Int) async -> Void)? = nil
    ) throws {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: APIErrorMiddleware())
        router.add(middleware: StandbyMiddleware(leader: leader))
        router.get("/healthz") { _, _ in try json(["status": "ok", "role": "standby"]) }
        router.get("/readyz") { _, _ in
            let info = await leader()
            let body = StandbyReadiness(
                status: "standby", reason: "another coordinator holds the leader lease", leader: info?.address)
            return try json(body, status: .serviceUnavailable)
        }
        router.get("/metrics") { request, _ in
            if let token = configuration.metricsToken {
                let header = request.headers[.authorization] ?? ""
                guard header.hasPrefix("Bearer "), AdminToken.matches(String(header.dropFirst(7)), token) else {
                    throw APIError(.unauthorized, code: .unauthenticated, "/metrics needs its bearer token")
                }
            }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: renderMetrics())))
        }
        let tls = try configuration.tls?.checkedConfiguration()
        // The same connection limits as the coordinator's (connection cap, request-head deadline, body rate):
        // clients given every replica's URL reach standbys directly.
        let policy = ConnectionPolicy(limits: configuration.limits)
        let connections = ConnectionCounter()
        let http1Configuration = HTTP1Channel.Configuration(
            additionalChannelHandlers: [ConnectionGuard(policy: policy, counter: connections) { _ in }],
            idleTimeout: TimeAmount(configuration.limits.idleTimeout))
        let server = HTTPServerBuilder { responder in
            let http1 = HTTP1Channel(responder: responder, configuration: http1Configuration)
            guard let tls else { return http1 }
            return try ServerTLS.channel(http1, tls)
        }
        application = Application(
            router: router, server: server,
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port), serverName: "rondo"),
            onServerRunning: { channel in await onListening?(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }
}

struct StandbyReadiness: Encodable {
    var status: String
    var reason: String
    var leader: String?
}

/// Answers every path but the three a standby serves with 503 `not_leader`.
struct StandbyMiddleware<Context: RequestContext>: RouterMiddleware {
    let leader: @Sendable () async -> LeaderInfo?
    static var served: Set<String> { ["/healthz", "/readyz", "/metrics"] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if Self.served.contains(request.uri.path) { return try await next(request, context) }
        let address = await leader()?.address
        var error = APIError(
            .serviceUnavailable, code: .notLeader,
            "this coordinator is a standby; " + (address.map { "the leader is at \($0)" } ?? "no leader is known yet"),
            retryAfterSeconds: 1)
        error.leader = address
        throw error
    }
}
