import Foundation
import FederationCore

/// Everything the coordinator needs to run, with defaults that work with no configuration at all.
public struct CoordinatorConfiguration: Sendable {
    /// Address to listen on. Default `127.0.0.1` (env `RONDO_HOST`).
    public var host: String
    /// Port to listen on; 0 picks a free port. Default 8470 (env `RONDO_PORT`).
    public var port: Int
    /// How rounds run.
    public var rounds: RoundConfiguration
    /// Seeds client selection. Default 0 (env `RONDO_SEED`).
    public var seed: UInt64
    /// Request size and parsing limits.
    public var limits: Limits
    /// Heartbeat interval handed to clients at registration. Default nil: a third of
    /// `rounds.livenessTimeout` (10 s for the default 30 s), so two heartbeats can be lost before a client
    /// counts as gone. A parked long-poll is itself a sign of life, so clients only need heartbeats while they
    /// work on a task (`effectiveHeartbeatInterval`).
    public var heartbeatInterval: Duration?
    /// The interval clients are told: `heartbeatInterval`, or a third of the liveness timeout.
    public var effectiveHeartbeatInterval: Duration { heartbeatInterval ?? rounds.livenessTimeout / 3 }
    /// Pace steering: the re-polls per second the coordinator spreads its idle clients to (each poll answered
    /// 204 carries a `Retry-After` hint, see `PaceSteering`); nil (or 0) sends no hints. Default 200 (a federation
    /// below 200 connected clients gets hints of 0 s: it never waits).
    public var pollRate: Double?
    /// The pace steering in force: `pollRate`, with hints capped at the heartbeat interval (at most half the
    /// liveness timeout), so a client that follows them never counts as gone.
    public var paceSteering: PaceSteering? {
        guard let pollRate, pollRate > 0, pollRate.isFinite else { return nil }  // 0, negative or NaN: off
        return PaceSteering(pollRate: pollRate, maxDelay: min(effectiveHeartbeatInterval, rounds.livenessTimeout / 2))
    }
    /// Longest long-poll a client may ask for (`wait_seconds`). Default 60 s.
    public var maxLongPoll: Duration
    /// How often the round engine checks deadlines and liveness. Default 100 ms.
    public var tickInterval: Duration
    /// How long SIGTERM waits for the open round to finish before aborting it. Default nil: as long as the
    /// round may still take (`rounds.fitTimeout + rounds.evaluateTimeout`); `.zero` stops at once.
    public var drainTimeout: Duration?
    /// The drain `drainTimeout` gives: as long as a round may still take when nil. Deployments set their stop
    /// grace period (Kubernetes `terminationGracePeriodSeconds`, systemd `TimeoutStopSec`) above it.
    public var effectiveDrainTimeout: Duration { drainTimeout ?? rounds.fitTimeout + rounds.evaluateTimeout }
    /// Retention: after each commit, delete all but the newest `keepLast` versions; `current`, `best`, tagged
    /// versions and open candidates always stay (`CheckpointStore.prune`). Default nil: keep every version.
    public var keepLast: Int?
    /// Why this coordinator starts where another run left off: rounds and candidates that run left open are
    /// marked aborted with this reason. Default `.restart`; `.leaderChange` when a standby takes over.
    public var takeover: Takeover = .restart
    /// Bearer token `GET /metrics` requires. Default nil: open, as Prometheus expects (env
    /// `RONDO_METRICS_TOKEN`).
    public var metricsToken: String?
    /// The federation's enrolment token: `POST /v1/clients` needs it as its bearer token. Default nil: open
    /// enrolment, for embedding and tests; `rondo serve` always sets one (env `RONDO_ENROLMENT_TOKEN`, else
    /// generated into `DATA_DIR/enrolment-token`).
    public var enrolmentToken: String?
    /// HTTPS on the coordinator's own listener. Default nil: plain HTTP, for loopback, tests, and deployments
    /// that terminate TLS in a proxy or ingress (env `RONDO_TLS_CERT` / `RONDO_TLS_KEY` for `rondo serve`).
    public var tls: ServerTLS?
    /// `https` when ``tls`` is set, else `http`: the scheme of the coordinator's own URLs.
    public var urlScheme: String { tls == nil ? "http" : "https" }

    /// Where uploads are spooled while they are checked: unnamed files (`O_EXCL`, unlinked at once) that hold
    /// disk space until their update is folded. `rondo serve` uses its data directory. Default: the system's
    /// temporary directory.
    public var spoolDirectory: String = FileManager.default.temporaryDirectory.path

    /// Request limits. Every refusal is a 4xx with a JSON error body.
    public struct Limits: Sendable {
        /// Largest fit-result body (safetensors). Default 512 MiB (env `RONDO_MAX_UPDATE_BYTES`).
        public var maxUpdateBytes: Int
        /// Most fit-result uploads received (checked, spooled and folded) at once; more wait unread, held back by
        /// TCP backpressure. Each costs one network chunk of memory and its update's size on disk. Default 4
        /// (env `RONDO_MAX_CONCURRENT_UPLOADS`).
        public var maxConcurrentUploads: Int
        /// Largest JSON body. Default 1 MiB.
        public var maxJSONBytes: Int
        /// Header and tensor-count limits for uploaded safetensors.
        public var safetensors: SafeTensorsLimits
        /// Most clients enrolled at once; registration beyond it answers 409 `client_limit_reached`.
        /// Default 10,000.
        public var maxClients: Int
        /// Most long-polls parked at once; one beyond it answers 429 `too_many_polls`. Default 10,000 (each costs
        /// a file descriptor).
        public var maxParkedPolls: Int
        /// Most long-polls one client may have parked at once; one beyond it answers 429 `too_many_polls`.
        /// Default 2 (a client needs one; two covers a reconnect racing the old poll).
        public var maxParkedPollsPerClient: Int
        /// Registrations accepted per second across the federation, with bursts of twice that; beyond, 429
        /// `rate_limited` with `Retry-After`. Default 20.
        public var registrationsPerSecond: Double
        /// Refused result and failure submissions (invalid, duplicate, late, unknown task) tolerated per second
        /// from one client, with bursts of twice that; beyond, every submission of that client answers 429
        /// `rate_limited` until its budget refills. Accepted results never count, so a healthy federation is
        /// never throttled however fast its rounds run. Default 5.
        public var refusedSubmissionsPerClientPerSecond: Double
        /// A new connection that sends no complete request head for this long is closed, so a client that
        /// connects and stalls, or trickles header bytes, cannot hold it forever; after an answer the shorter
        /// `keepAliveTimeout` applies. Default 60 s.
        public var idleTimeout: Duration
        /// A kept-alive connection that starts no new request for this long after its last answer is closed.
        /// Shorter than `idleTimeout`, so connections a client only uses now and then (a heartbeat every few
        /// seconds beside its parked long-poll) do not each hold a descriptor and their buffers between uses.
        /// HTTP clients reconnect on their own. Default 5 s (`rondo serve --keep-alive-timeout`).
        public var keepAliveTimeout: Duration
        /// Most connections open at once; one beyond it is answered 503 `too_many_connections` and closed.
        /// Default 16,384 (a process here may open 20,000 files; the store and the exporter need a few).
        public var maxConnections: Int
        /// Slowest accepted request body: a body that sends fewer bytes than this per second over a
        /// `bodyRateWindow` is cut off (408 `body_too_slow` when no answer was started). Default 1,024 B/s.
        public var minimumBodyBytesPerSecond: Int
        /// The window the body rate is measured over. Default 10 s.
        public var bodyRateWindow: Duration

        public init(
            maxUpdateBytes: Int = 512 << 20, maxJSONBytes: Int = 1 << 20, safetensors: SafeTensorsLimits = .default,
            maxClients: Int = 10_000, maxParkedPolls: Int = 10_000, registrationsPerSecond: Double = 20,
            refusedSubmissionsPerClientPerSecond: Double = 5, idleTimeout: Duration = .seconds(60),
            maxConnections: Int = 16_384, maxParkedPollsPerClient: Int = 2, minimumBodyBytesPerSecond: Int = 1024,
            bodyRateWindow: Duration = .seconds(10), maxConcurrentUploads: Int = 4,
            keepAliveTimeout: Duration = .seconds(5)
        ) {
            self.keepAliveTimeout = keepAliveTimeout
            precondition(maxConcurrentUploads > 0, "at least one concurrent upload")
            self.maxConcurrentUploads = maxConcurrentUploads
            self.maxConnections = maxConnections
            self.maxParkedPollsPerClient = maxParkedPollsPerClient
            self.minimumBodyBytesPerSecond = minimumBodyBytesPerSecond
            self.bodyRateWindow = bodyRateWindow
            self.maxClients = maxClients
            self.maxParkedPolls = maxParkedPolls
            self.registrationsPerSecond = registrationsPerSecond
            self.refusedSubmissionsPerClientPerSecond = refusedSubmissionsPerClientPerSecond
            self.idleTimeout = idleTimeout
            self.maxUpdateBytes = maxUpdateBytes
            self.maxJSONBytes = maxJSONBytes
            self.safetensors = safetensors
        }
    }

    public init(
        host: String = "127.0.0.1",
        port: Int = 8470,
        rounds: RoundConfiguration = RoundConfiguration(),
        seed: UInt64 = 0,
        limits: Limits = Limits(),
        heartbeatInterval: Duration? = nil,
        maxLongPoll: Duration = .seconds(60),
        pollRate: Double? = 200,
        tickInterval: Duration = .milliseconds(100),
        drainTimeout: Duration? = nil,
        metricsToken: String? = nil,
        enrolmentToken: String? = nil,
        tls: ServerTLS? = nil
    ) {
        self.tls = tls
        self.enrolmentToken = enrolmentToken
        self.drainTimeout = drainTimeout
        self.metricsToken = metricsToken
        self.host = host
        self.port = port
        self.rounds = rounds
        self.seed = seed
        self.limits = limits
        self.heartbeatInterval = heartbeatInterval
        self.maxLongPoll = maxLongPoll
        self.pollRate = pollRate
        self.tickInterval = tickInterval
    }
}
