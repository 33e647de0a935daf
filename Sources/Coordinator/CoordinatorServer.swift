import FederationCore
import FederationTelemetry
import Hummingbird
import HummingbirdCore
import Logging
import ModelManager
import NIOCore
import ServiceLifecycle

/// The coordinator assembled: the round driver and the HTTP application, as services to run in one
/// `ServiceGroup`.
///
/// ```swift
/// let store = try await CheckpointStore(configuration: .init(path: "rondo-data/rondo.db"))
/// let server = try await CoordinatorServer(configuration: .init(port: 0), store: store, adminToken: token,
///                                          initialWeights: weights, logger: logger)
/// let group = ServiceGroup(services: server.services, logger: logger)
/// // run the group; `await server.port()` answers once the socket is bound
/// ```
public struct CoordinatorServer: Sendable {
    public let driver: RoundDriver
    public let application: Application<RouterResponder<CoordinatorRequestContext>>
    /// The task groups the connections run in (see `ConnectionShards`).
    let shards: ConnectionShards
    private let boundPort: BoundPort
    /// Every route the router serves, as `METHOD /path/{parameter}`, sorted; the OpenAPI document must list
    /// exactly these.
    public let routes: [String]

    /// Throws ``ServerTLSError`` when `configuration.tls` names files that do not make a certificate and key.
    public init(
        configuration: CoordinatorConfiguration, store: CheckpointStore, adminToken: String,
        viewerToken: String? = nil, initialWeights: ModelWeights?, logger: Logger,
        metricsFactory: CatalogueMetricsFactory = CatalogueMetricsFactory(),
        buildVersion: String = "dev", buildRevision: String = "unknown", tracer: RondoTracer = RondoTracer(sink: nil),
        onListening: (@Sendable (Int) async -> Void)? = nil, clock: any CoordinatorClock = SystemClock()
    ) async throws {
        var credentials = [AdminCredential(name: "admin", role: .operator, token: adminToken)]
        if let viewerToken { credentials.append(AdminCredential(name: "viewer", role: .viewer, token: viewerToken)) }
        let metrics = CoordinatorMetrics(factory: metricsFactory, version: buildVersion, revision: buildRevision)
        // A coordinator runs only while it leads: alone on SQLite, or holding the lease (a standby runs
        // `StandbyServer` instead).
        LeadershipMetrics(factory: metricsFactory).leading()
        let driver = try await RoundDriver(
            configuration: configuration, store: store, initialWeights: initialWeights, logger: logger,
            metrics: metrics, tracer: tracer, clock: clock)
        let router = Router(context: CoordinatorRequestContext.self)
        CoordinatorRoutes(
            driver: driver, operators: OperatorActions(driver: driver, metrics: metrics), history: driver.history,
            configuration: configuration, adminCredentials: credentials, metrics: metrics,
            renderMetrics: metricsFactory.render,
            uploads: UploadSlots(capacity: configuration.limits.maxConcurrentUploads)
        ).add(to: router)
        let boundPort = BoundPort()
        self.routes = router.routes.map { "\($0.method.rawValue) \($0.path)" }.sorted()
        self.driver = driver
        self.boundPort = boundPort
        let policy = ConnectionPolicy(limits: configuration.limits)
        let connections = ConnectionCounter()
        let http1Configuration = HTTP1Channel.Configuration(
            additionalChannelHandlers: [
                ConnectionGuard(policy: policy, counter: connections) { metrics.limitRefused($0) }
            ],
            idleTimeout: TimeAmount(configuration.limits.idleTimeout))
        let tls = try configuration.tls?.checkedConfiguration()
        let shards = ConnectionShards()
        self.shards = shards
        let server = HTTPServerBuilder { responder in
            let http1 = HTTP1Channel(responder: responder, configuration: http1Configuration)
            guard let tls else { return ShardedChildChannel(inner: http1, shards: shards) }
            return ShardedChildChannel(inner: try ServerTLS.channel(http1, tls), shards: shards)
        }
        self.application = Application(
            router: router,
            server: server,
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port), serverName: "rondo"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                await boundPort.set(port)
                await onListening?(port)
            },
            logger: logger)
    }

    /// The services to run: the HTTP server and the round driver.
    ///
    /// A `ServiceGroup` shuts services down in reverse order, so the driver stops first: it answers every
    /// parked long-poll at once, and the HTTP server then drains quickly instead of waiting out the polls. The
    /// connection shards stop last, once the server's connections have closed.
    public var services: [any Service] { [shards, application, driver] }

    /// The port the server listens on, once it is bound (useful with port 0).
    public func port() async -> Int { await boundPort.value() }
}

/// A value published once, awaited by any number of readers.
actor BoundPort {
    private var port: Int?
    private var readers: [CheckedContinuation<Int, Never>] = []

    func set(_ value: Int) {
        port = value
        for reader in readers { reader.resume(returning: value) }
        readers = []
    }

    func value() async -> Int {
        if let port { return port }
        return await withCheckedContinuation { readers.append($0) }
    }
}
