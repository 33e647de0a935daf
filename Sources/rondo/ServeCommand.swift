import ArgumentParser
import Coordinator
import DemoFederation
import FederationCore
import FederationTelemetry
import Foundation
import Logging
import ModelManager
import PostgresStore
import ServiceLifecycle
import UnixSignals

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the coordinator until SIGINT/SIGTERM.")

    @OptionGroup var server: ServerOptions
    @OptionGroup var common: CommonOptions
    @OptionGroup var selection: SelectionOptions
    @OptionGroup var strategy: StrategyOptions
    @OptionGroup var privacy: PrivacyOptions
    @OptionGroup var storeLocation: StoreLocationOptions
    @Option(help: "Safetensors file to start from when the data directory has no model yet.")
    var initialModel: String?
    @Flag(help: "Start from the digits demo's zero-initialised softmax model when the data directory has none.")
    var demoModel = false
    @Option(help: "Share of connected clients asked to train each round.") var fractionFit = 1.0
    @Option(help: "Fewest clients asked to train.") var minFitClients = 2
    @Option(help: "Connected clients needed before a round starts.") var minAvailableClients = 2
    @Option(help: "Accepted results a round needs (quorum); at most --min-fit-clients.") var minFitResults = 2
    @Option(help: "Share of connected clients asked to evaluate; 0 turns evaluation off.") var fractionEvaluate = 1.0
    @Option(help: "Seconds a round's training may take.") var fitTimeout = 120.0
    @Option(help: "Seconds a round's evaluation may take.") var evaluateTimeout = 60.0
    @Option(help: "Seconds of silence after which a client counts as gone.") var livenessTimeout = 30.0
    @Option(help: "Stop starting rounds after this many.") var rounds: Int?
    @Option(
        help: ArgumentHelp(
            "Retention: after each commit keep only the newest N versions; current, best and tagged versions always "
                + "stay (default: keep all)."))
    var keepLast: Int?
    @Option(help: "Largest accepted L2 norm of an update (result - base).") var maxUpdateNorm: Double?
    @Option(
        help:
            "Norm-bounded averaging: an update farther than this (L2, result - base) is scaled down to it before it is averaged (FedAvg family)."
    )
    var clipUpdateNorm: Double?
    @Option(help: "Largest accepted fit-result body, in bytes (env RONDO_MAX_UPDATE_BYTES).") var maxUpdateBytes: Int?
    @Option(
        help: ArgumentHelp(
            "Fit-result uploads received, checked and folded at once; more wait unread under TCP backpressure "
                + "(env RONDO_MAX_CONCURRENT_UPLOADS; default 4)."))
    var maxConcurrentUploads: Int?
    @Option(help: "Largest num_examples a result may report; above it the result is refused (422).")
    var maxNumExamples = 100_000_000
    @Option(
        help:
            "Largest share (0-1] of a round's weighted average one client may hold; heavier clients are clipped (default: off)."
    )
    var maxClientWeightShare: Double?
    @Option(help: "Seed for client selection (env RONDO_SEED).") var seed: UInt64?
    @Option(
        help:
            "Regression guard: refuse a model whose evaluation metric is worse than the best by more than this (off when not given)."
    )
    var guardMaxRegression: Double?
    @Option(help: "The evaluation metric the guard and the best ref use (loss: lower is better).")
    var guardMetric = "accuracy"
    @Option(help: "Admin bearer token (env RONDO_ADMIN_TOKEN); default: generated into DATA_DIR/admin-token.")
    var adminToken: String?
    @Option(help: "File holding the admin token (preferred over --admin-token: flags show in `ps`).")
    var adminTokenFile: String?
    @Option(help: "File holding the enrolment token.") var enrolmentTokenFile: String?
    @Option(help: "File holding the viewer token.") var viewerTokenFile: String?
    @Option(help: "File holding the /metrics bearer token.") var metricsTokenFile: String?
    @Option(
        help:
            "Enrolment token clients register with (env RONDO_ENROLMENT_TOKEN); default: generated into DATA_DIR/enrolment-token."
    )
    var enrolmentToken: String?
    @Flag(help: "Let anyone register, with no enrolment token (development only).") var openEnrolment = false
    @Option(help: "Read-only admin token (role viewer; env RONDO_VIEWER_TOKEN); default: none.")
    var viewerToken: String?
    @Option(help: "Bearer token GET /metrics requires (env RONDO_METRICS_TOKEN); default: /metrics is open.")
    var metricsToken: String?
    @Option(
        help: "PEM certificate chain to serve HTTPS with (env RONDO_TLS_CERT); needs --tls-key. Default: plain HTTP.")
    var tlsCert: String?
    @Option(help: "PEM private key of --tls-cert, unencrypted (env RONDO_TLS_KEY).") var tlsKey: String?
    @Option(help: "Most clients enrolled at once.") var maxClients = 10_000
    @Option(help: "Most long-polls parked at once.") var maxParkedPolls = 10_000
    @Option(help: "Most long-polls one client may have parked at once.") var maxParkedPollsPerClient = 2
    @Option(help: "Registrations accepted per second (bursts of twice that).") var registrationsPerSecond = 20.0
    @Option(
        help: ArgumentHelp(
            "Refused result submissions (invalid, duplicate, late) tolerated per second from one client, bursts of "
                + "twice that; beyond, that client gets 429 until it slows down. Accepted results never count."))
    var refusedSubmissionsPerSecond = 5.0
    @Option(help: "Seconds a connection may take to send a request head (idle or trickling); then it is closed.")
    var idleTimeout = 60.0
    @Option(help: "Seconds a kept-alive connection may stay silent after an answer; then it is closed.")
    var keepAliveTimeout = 5.0
    @Option(help: "Most connections open at once; beyond it: 503 too_many_connections.") var maxConnections = 16_384
    @Option(help: "Slowest accepted request body, in bytes per second over 10 s; slower bodies are cut off.")
    var minBodyRate = 1024
    @Option(help: "Seconds SIGTERM waits for the open round before aborting it; default: its fit + evaluate timeouts.")
    var drainTimeout: Double?
    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp(
            "Training config sent with every fit task, as key=value pairs. Giving it replaces the whole default "
                + "(local_epochs=2 learning_rate=0.1 batch_size=16): repeat every key you want."))
    var fitConfig: [String] = ["local_epochs=2", "learning_rate=0.1", "batch_size=16"]

    func run() async throws {
        if let clipUpdateNorm {
            guard clipUpdateNorm > 0, clipUpdateNorm.isFinite else {
                throw ValidationError("--clip-update-norm must be a positive number")
            }
            if let maxUpdateNorm, clipUpdateNorm > maxUpdateNorm {
                throw ValidationError(
                    "--clip-update-norm must not exceed --max-update-norm (updates beyond it are refused)")
            }
            if try strategy.resolved().name.needsEveryUpdate {
                throw ValidationError(
                    "--clip-update-norm bounds the FedAvg family's average; \(strategy.strategy) needs no clipping")
            }
        }
        if maxClientWeightShare != nil, try strategy.resolved().name.needsEveryUpdate {
            throw ValidationError(
                "--max-client-weight-share caps FedAvg's weighting; \(strategy.strategy) does not weight results by "
                    + "examples the same way: leave one of them out")
        }
        MallocTuning.apply()
        let logger = common.bootstrapLogging(defaultLevel: .info)
        let lock = try await server.prepareDataDirectory()
        defer { withExtendedLifetime(lock) {} }
        let environment = ProcessInfo.processInfo.environment
        var configuration = CoordinatorConfiguration(
            host: server.resolvedHost, port: server.resolvedPort,
            rounds: RoundConfiguration(
                selection: SelectionPolicy(
                    fractionFit: fractionFit, minFitClients: minFitClients, minAvailableClients: minAvailableClients,
                    fractionEvaluate: fractionEvaluate, goal: selection.goal),
                minFitResults: minFitResults,
                fitTimeout: .seconds(fitTimeout),
                evaluateTimeout: .seconds(evaluateTimeout),
                livenessTimeout: .seconds(livenessTimeout),
                maxRounds: rounds,
                validator: UpdateValidator(maxUpdateNorm: maxUpdateNorm),
                fitConfig: try parseConfig(fitConfig),
                regressionGuard: guardMaxRegression.map {
                    RegressionGuard(metric: guardMetric, higherIsBetter: guardMetric != "loss", maxRegression: $0)
                },
                maxExamplesPerResult: maxNumExamples,
                weightCap: maxClientWeightShare.map(WeightCap.init(maxShare:)),
                strategy: try strategy.resolved()),
            seed: seed ?? environment["RONDO_SEED"].flatMap { UInt64($0) } ?? 0)
        configuration.rounds.clipNorm = clipUpdateNorm
        configuration.rounds.privacy = try privacy.resolved()
        do {
            try configuration.rounds.checkPrivacy()
        } catch {
            throw ValidationError("\(error)")
        }
        configuration.drainTimeout = drainTimeout.map { .seconds($0) }
        configuration.pollRate = selection.resolvedPollRate
        if let keepLast, keepLast < 1 { throw ValidationError("--keep-last must be at least 1") }
        configuration.keepLast = keepLast
        configuration.limits.maxClients = maxClients
        configuration.limits.maxParkedPolls = maxParkedPolls
        configuration.limits.maxParkedPollsPerClient = maxParkedPollsPerClient
        configuration.limits.registrationsPerSecond = registrationsPerSecond
        configuration.limits.refusedSubmissionsPerClientPerSecond = refusedSubmissionsPerSecond
        configuration.limits.idleTimeout = .seconds(idleTimeout)
        configuration.limits.keepAliveTimeout = .seconds(keepAliveTimeout)
        configuration.limits.maxConnections = maxConnections
        configuration.limits.minimumBodyBytesPerSecond = minBodyRate
        configuration.metricsToken = try secret(
            metricsToken, file: metricsTokenFile, environment: "RONDO_METRICS_TOKEN")
        configuration.tls = try serverTLS()
        if let bytes = maxUpdateBytes ?? environment["RONDO_MAX_UPDATE_BYTES"].flatMap({ Int($0) }) {
            guard bytes > 0, bytes <= ServedModel.maxByteCount else {
                throw ValidationError(
                    "--max-update-bytes must be between 1 and \(ServedModel.maxByteCount) (4 GiB − 1)")
            }
            configuration.limits.maxUpdateBytes = bytes
        }
        if let uploads = maxConcurrentUploads ?? environment["RONDO_MAX_CONCURRENT_UPLOADS"].flatMap({ Int($0) }) {
            guard uploads >= 1 else { throw ValidationError("--max-concurrent-uploads must be at least 1") }
            configuration.limits.maxConcurrentUploads = uploads
        }
        // Uploads spool to unnamed files next to the database (the same disk, private to this user).
        configuration.spoolDirectory = server.dataDir
        if initialModel != nil, demoModel { throw ValidationError("give --initial-model or --demo-model, not both") }
        var weights: ModelWeights?
        if let initialModel {
            guard let data = FileManager.default.contents(atPath: initialModel) else {
                throw CommandFailure("cannot read \(initialModel)", code: "io")
            }
            guard data.count <= ServedModel.maxImportByteCount else {
                throw CommandFailure(
                    "\(initialModel) has \(data.count) bytes; a coordinator takes models up to 4 GiB − 64 KiB",
                    code: "model_too_large")
            }
            let decoded = try data.withUnsafeBytes { try SafeTensorsFile.decode($0) }.weights
            try ModelImportCheck.checkContents(decoded)
            weights = decoded
        } else if demoModel {
            weights = SoftmaxRegression().weights
        }
        let metricsFactory = bootstrapMetrics()
        let storeConfiguration = CheckpointStore.Configuration(
            path: server.databasePath, bestMetric: guardMetric, higherIsBetter: guardMetric != "loss")
        let leadership = LeadershipMetrics(factory: metricsFactory)
        var highAvailability: (HighAvailability, keeper: Task<Void, Never>)?
        let store: CheckpointStore
        if let postgres = try storeLocation.postgres() {
            let ha = try await HighAvailability.connect(
                postgres, ttl: storeLocation.leaseDuration,
                address: storeLocation.advertiseURL
                    ?? (server.resolvedPort == 0
                        ? nil : server.localURL(scheme: configuration.urlScheme, port: server.resolvedPort)),
                metrics: leadership, logger: logger)
            // Every replica brings the schema up to date (under an advisory lock) before it competes; the store
            // it leads with is opened afresh once it leads, on a connection not left idle through the wait.
            _ = try await CheckpointStore.open(postgres: postgres, configuration: storeConfiguration, logger: logger)
            logger.notice("store on PostgreSQL", metadata: ["store": "\(postgres.redactedURL)"])
            guard
                let (epoch, keeper) = try await ha.standBy(
                    configuration: configuration, renderMetrics: metricsFactory.render,
                    onListening: { [origin = "\(configuration.urlScheme)://\(configuration.host)"] port in
                        printLine("rondo coordinator standing by on \(origin):\(port)")
                    })
            else { return }
            highAvailability = (ha, keeper)
            store = try await CheckpointStore.open(
                postgres: postgres, configuration: storeConfiguration, fence: ha.lease, logger: logger)
            configuration.takeover = epoch > 1 ? .leaderChange : .restart
        } else {
            store = try await CheckpointStore(configuration: storeConfiguration)
        }
        if try await store.refVersion(.current) != nil {
            // The store's current model wins; holding the given one for the whole run would cost its size.
            weights = nil
        } else if weights == nil {
            throw CommandFailure(
                "\(server.dataDir) has no model yet: start from a file with --initial-model FILE.safetensors "
                    + "(or `rondo checkpoints import`), or from the digits demo's model with --demo-model")
        }
        let admin = try AdminToken.resolve(
            configured: try secret(adminToken, file: adminTokenFile, environment: "RONDO_ADMIN_TOKEN"),
            directory: server.dataDir)
        if let file = admin.file { logger.notice("admin token", metadata: ["file": "\(file)"]) }
        if !openEnrolment {
            let enrolment = try AdminToken.resolve(
                configured: try secret(enrolmentToken, file: enrolmentTokenFile, environment: "RONDO_ENROLMENT_TOKEN"),
                directory: server.dataDir,
                fileName: "enrolment-token")
            configuration.enrolmentToken = enrolment.token
            if let file = enrolment.file { logger.notice("enrolment token", metadata: ["file": "\(file)"]) }
        }
        if let share = maxClientWeightShare {
            let cap = WeightCap(maxShare: share)
            logger.notice(
                "weight cap on: the fold keeps the heaviest updates aside, spooled on disk",
                metadata: [
                    "max_share": "\(share)", "updates_kept": "\(cap.clippedClientBound)",
                    "spool_bound_bytes": "\(cap.clippedClientBound * configuration.limits.maxUpdateBytes)",
                ])
            if share * Double(minFitResults) <= 1 {
                logger.warning(
                    "with this few results a round cannot meet the weight cap: such rounds average with equal weights",
                    metadata: ["max_share": "\(share)", "min_fit_results": "\(minFitResults)"])
            }
        }
        logEffectiveConfiguration(configuration, logger: logger)
        let viewer = try secret(viewerToken, file: viewerTokenFile, environment: "RONDO_VIEWER_TOKEN")
        for (name, token) in [("viewer", viewer), ("metrics", configuration.metricsToken)]
        where (token?.count ?? 16) < 16 {
            throw ValidationError("the \(name) token must be at least 16 characters")
        }
        let tracing = makeTracing(serviceName: "rondo-coordinator", metricsFactory: metricsFactory, logger: logger)
        let coordinator = try await CoordinatorServer(
            configuration: configuration, store: store, adminToken: admin.token,
            viewerToken: viewer, initialWeights: weights,
            logger: logger,
            metricsFactory: metricsFactory, buildVersion: RondoBuild.version, buildRevision: RondoBuild.revision,
            tracer: tracing.tracer,
            onListening: {
                [
                    origin = "\(configuration.urlScheme)://\(configuration.host)", server,
                    scheme = configuration.urlScheme
                ] port in
                do {
                    try lock.publish(.init(url: server.localURL(scheme: scheme, port: port), pid: getpid()))
                } catch {
                    logger.error("cannot publish the address for rondo commands", metadata: ["error": "\(error)"])
                }
                printLine("rondo coordinator listening on \(origin):\(port)")
            })
        // The coordinator holds the model now (stored, and encoded once into the buffer it serves and reads):
        // a reference here would keep a second, decoded copy in memory for the whole run.
        weights = nil
        // Signals are followed here rather than by the group: the group ignores a second SIGTERM while it
        // drains, and an operator's second signal must stop the coordinator at once.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: ([tracing.exporter].compactMap { $0 } + coordinator.services).map { .init(service: $0) },
                logger: logger))
        let forcedBy: UnixSignal? = try await withThrowingTaskGroup(of: UnixSignal?.self) { tasks in
            tasks.addTask {
                try await group.run()
                return nil
            }
            tasks.addTask {
                var received = 0
                for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                    received += 1
                    if received == 1 {
                        logger.notice(
                            "signal received: draining; send it again to stop at once",
                            metadata: ["signal": "\(signal)"])
                        await group.triggerGracefulShutdown()
                    } else {
                        logger.warning("second signal: stopping now", metadata: ["signal": "\(signal)"])
                        return signal
                    }
                }
                return nil
            }
            // The first task to end decides: the group (done, or failed: its error is rethrown) or a second
            // signal (the group is cancelled, which stops every service at once; its cancellation is expected).
            let first = try await tasks.next() ?? nil
            tasks.cancelAll()
            if first != nil { while (try? await tasks.next()) != nil {} }
            return first
        }
        if let (ha, keeper) = highAvailability {
            // A clean stop hands the lease over at once: the standby need not wait out the TTL.
            keeper.cancel()
            await ha.lease.release()
        }
        if let forcedBy {
            // Stopped by a signal before the drain finished: say so in the exit status, as a shell would.
            throw ExitCode(128 + (forcedBy == .sigint ? SIGINT : SIGTERM))
        }
    }
}
