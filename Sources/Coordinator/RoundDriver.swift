import FederationCore
import FederationTelemetry
import Foundation
import Logging
import ModelManager
import NIOCore
import ServiceLifecycle
import Synchronization

/// Runs the round state machine for the HTTP layer: feeds it events (requests, timer ticks) and carries out
/// its actions (wake long-polls, store and commit models, publish round reports).
///
/// The state machine decides; this actor only performs. It owns the parts that do one job each — the client
/// registry (tokens, revocation), admission (limits), the long-poll hub and the model cache — so handlers stay
/// thin and a request never observes a half-applied change. Carrying out the machine's actions is in
/// `RoundDriver+Actions.swift`, operator controls in `+Operations`, rollbacks in `+Rollback`, history in
/// `+History`.
public actor RoundDriver: Service {
    public typealias Instant = ContinuousClock.Instant
    public typealias Task = RoundTask<Instant>
    public typealias Report = RoundReport<Instant>

    var machine: RoundStateMachine<Instant>
    /// The store the driver persists to; the driver is its one writer.
    nonisolated let store: CheckpointStore
    /// Read-only access to the store for the admin API.
    public nonisolated let history: FederationHistory
    let configuration: CoordinatorConfiguration
    let logger: Logger
    let clock: any CoordinatorClock
    var registry = ClientRegistry()
    var admission: Admission
    var polls = LongPollHub<Task>()
    var models = ModelCache()
    var subscribers: [AsyncStream<Report>.Continuation] = []
    fileprivate(set) var stopped = false
    /// Set once SIGTERM (graceful shutdown) arrived: no new round starts, the open one may finish.
    var drainDeadline: Instant?
    /// Raised from the graceful-shutdown handler, which cannot wait for the actor.
    nonisolated let drainRequested = Atomic<Bool>(false)

    /// When the once-a-second housekeeping last ran (retrying history rows, probing a failing store, client
    /// gauges).
    private var lastHousekeeping: Instant
    /// When parked polls were last checked for closed connections (`LongPollHub.abandonClosed`).
    private var lastConnectionSweep: Instant
    /// How often parked polls are checked for closed connections: often enough that a killed client stops
    /// counting as alive well within any liveness timeout, rarely enough that 10,000 parked polls cost little
    /// (at four times a second the check was 6% of the CPU with 10,000 parked).
    static let connectionSweepInterval = Duration.seconds(1)
    /// Set while an operator's rollback runs; later ones wait in `rollbackQueue`.
    var rollbackInProgress = false
    var rollbackQueue = WaitList()
    /// Operator actions waiting for a round's outcome to be stored (see `untilNotPersisting`).
    var persistWaiters = WaitList()
    /// Where the driver reports what happens.
    nonisolated let metrics: CoordinatorMetrics
    var tracing: RoundTracing
    /// When each task handed out was delivered, for task-duration metrics.
    var taskDeliveredAt: [TaskID: Instant] = [:]
    /// When the machine announced the phase it is in, for phase-duration metrics.
    var phaseSince: Instant
    /// What a robust aggregator did in each round still open, for its history row (`detail`).
    var aggregationDetails: [Int: String] = [:]
    /// Round start times as wall-clock seconds, for the persisted history.
    var roundStartedAt: [Int: Double] = [:]
    /// Finished rounds whose history row could not be written yet (the store failed); retried on later ticks
    /// so the history records each round's real outcome, not "running".
    var unrecordedRounds: [RoundRecord] = []
    /// True while `recordUnrecordedRounds` is writing (see there).
    var recordingRounds = false
    /// True after a store write failed, until one succeeds: `/readyz` answers 503 `store_failing`.
    var storeFailing = false
    /// Clients with a fit-result upload on the wire or waiting for an upload slot, with how many: like a parked
    /// poll, an upload in progress is a sign of life, so a client is not dropped as silent while its big
    /// upload waits or streams.
    var uploading: [ClientID: Int] = [:]
    /// Tasks with an upload in progress: one at a time per task, so one client cannot hold every upload slot
    /// with parallel uploads of its own result.
    var uploadingTasks: Set<TaskID> = []
    /// Registrations waiting for their group commit.
    var enrolments = EnrolmentQueue()
    /// Clients enrolled in the store (registered, neither left nor revoked), online or not: counted from what
    /// the store reports it changed, since only the clients heard from lately are held in memory.
    var enrolledClients = 0
    /// Token lookups in the store in flight (`RoundDriver+Authentication`).
    var storeLookups = 0
    /// Token lookups in the store made so far (tests check that made-up tokens cost none).
    var storeLookupsMade = 0
    /// Departures being written to the store (the live state changes first, the store after).
    var departureWrites = 0
    /// Tokens (by hash) of clients that left while a token lookup or a departure write was in flight: a lookup
    /// may have read the row from before, and must not bring the client back.
    var departedDuringLookups: Set<String> = []
    /// Departures the store could not write yet, by token hash: those tokens stay refused, and the write is
    /// retried by the once-a-second housekeeping.
    var unstoredDepartures: [String: ClientID] = [:]
    /// Every token hash the store may hold: a token outside it is unknown without a store read.
    var tokenFilter: TokenFilter
    /// Store transactions the group commit has written (tests check that bursts share them).
    var enrolmentCommits = 0
    /// Clients heard from (a poll, a heartbeat, a result) since `last_seen` was last flushed to the store.
    var seenClients: Set<ClientID> = []
    /// What `rondo_round_backoff_seconds` shows.
    var shownBackoff = Duration.zero

    /// Creates a driver on `store`, resuming from its `current` checkpoint; an empty store is seeded with
    /// `initialWeights` as an imported version.
    ///
    /// Resuming after a crash: rounds still marked running and candidates of unfinished rounds are marked
    /// aborted ("coordinator restart", or "leader change" after a takeover), numbering continues after the highest round ever started, and known
    /// clients keep their tokens (they count as disconnected until heard from).
    /// - Throws: `CoordinatorStartupError` when there is no usable model.
    public init(
        configuration: CoordinatorConfiguration, store: CheckpointStore, initialWeights: ModelWeights?, logger: Logger,
        metrics: CoordinatorMetrics = CoordinatorMetrics(), tracer: RondoTracer = RondoTracer(sink: nil),
        clock: any CoordinatorClock = SystemClock()
    ) async throws {
        let reason = configuration.takeover.rawValue
        let aborted = try await store.abortRunningRounds(reason: reason)
        _ = try await store.abortCandidates(reason: reason)
        if !aborted.isEmpty {
            logger.warning(
                "interrupted rounds marked aborted", metadata: ["rounds": "\(aborted)", "reason": "\(reason)"])
        }
        var currentVersion = try await store.refVersion(.current)
        var served: ServedModel?
        if currentVersion == nil {
            guard let initialWeights else {
                throw CoordinatorStartupError(message: "the store has no current model and no initial model was given")
            }
            // Stored chunk by chunk from the given tensors, then encoded once into the buffer that serves
            // downloads and that the engine reads; the caller lets go of the tensors.
            let file = SafeTensorsFile(weights: initialWeights, metadata: ["round": "0"])
            guard file.encodedByteCount <= ServedModel.maxByteCount else {
                throw CoordinatorStartupError(message: "\(ServedModel.tooLarge(file.encodedByteCount))")
            }
            let (version, sha) = try await store.insert(
                round: try await store.lastRoundNumber(), parentVersion: nil, file: file, status: .imported,
                makeCurrent: true)
            currentVersion = version
            served = try ServedModel(version: version, sha256: sha, file: file)
        }
        guard let currentVersion, let record = try await store.checkpoint(version: currentVersion) else {
            throw CoordinatorStartupError(message: "the current ref points at a missing checkpoint")
        }
        if served == nil {
            do {
                served = try ServedModel(
                    version: currentVersion, sha256: record.sha256,
                    stored: try await store.bytes(version: currentVersion))
            } catch {
                throw CoordinatorStartupError(
                    message: "current model version \(currentVersion) is unreadable: \(error)")
            }
        }
        let current = served!
        models.insert(current)
        var bestValue: Double?
        if let regressionGuard = configuration.rounds.regressionGuard, let best = try await store.refVersion(.best) {
            bestValue = try await store.checkpoint(version: best)?.metrics.value(of: regressionGuard.metric)
        }
        let serverState = await Self.serverState(
            of: currentVersion, model: current.weights, strategy: configuration.rounds.strategy, store: store,
            logger: logger)
        do {
            try configuration.rounds.checkPrivacy()
        } catch {
            throw CoordinatorStartupError(message: "differential privacy: \(error)")
        }
        let privacyLedger = configuration.rounds.privacy == nil ? [] : try await store.privacyLedger()
        let lastRound = try await store.lastRoundNumber()
        Self.warnAboutMixedPrivacy(
            try await store.privacyCoverage(), private: configuration.rounds.privacy != nil, logger: logger)
        let machine = RoundStateMachine<Instant>(
            configuration: configuration.rounds,
            model: GlobalModel(
                version: currentVersion, sha256: record.sha256, weights: current.weights, serverState: serverState),
            lastRound: lastRound, seed: configuration.seed, bestMetricValue: bestValue,
            privacyLedger: privacyLedger)
        let now = clock.now
        // Enrolled clients stay in the store until they are heard from (see `RoundDriver+Authentication`):
        // start-up reads a count, not the client table.
        self.enrolledClients = try await store.enrolledClientCount()
        self.tokenFilter = try await store.tokenFilter()
        self.machine = machine
        self.admission = Admission(limits: configuration.limits)
        self.clock = clock
        self.store = store
        self.history = FederationHistory(store: store)
        self.configuration = configuration
        self.logger = logger
        self.lastHousekeeping = now
        self.lastConnectionSweep = now
        self.metrics = metrics
        self.tracing = RoundTracing(tracer: tracer)
        self.phaseSince = now
        metrics.modelVersion(currentVersion)
        metrics.phaseChanged(to: machine.phaseName, from: machine.phaseName, after: .zero)
        metrics.selectionGoal(configuration.rounds.selection.goal)
        metrics.strategy(configuration.rounds.strategy.name)
        metrics.serverOptimizerSteps(machine.model.serverState?.steps ?? 0)
        if let account = machine.privacy {
            metrics.privacy(account)
            if account.budgetReached {
                logger.error(
                    "privacy budget reached: no further round starts",
                    metadata: [
                        "epsilon": "\(account.epsilon)", "epsilon_budget": "\(account.settings.epsilonBudget ?? 0)",
                    ])
            }
        }
    }

    // MARK: Service

    /// Ticks the state machine until graceful shutdown has drained the open round (or the drain timeout
    /// aborted it), then releases every parked long-poll.
    ///
    /// Draining: SIGTERM pauses the federation, `/readyz` turns 503, and the open round may still finish —
    /// clients keep submitting while the HTTP server runs — so no committed work is thrown away by a routine
    /// restart. Cancellation (a second signal, or the group's timeout) stops at once.
    public func run() async throws {
        let interval = configuration.tickInterval
        await withGracefulShutdownHandler {
            while !_Concurrency.Task.isCancelled {
                try? await self.clock.sleep(for: interval)
                await self.tick()
                if await self.drainStep() { break }
            }
        } onGracefulShutdown: {
            self.drainRequested.store(true, ordering: .relaxed)
        }
        await flushClientActivity()
        shutdown()
    }

    /// One step of time: housekeeping once a second, expired long-polls answered, the machine ticked.
    func tick() async {
        let now = clock.now
        if lastHousekeeping.advanced(by: .seconds(1)) <= now {
            lastHousekeeping = now
            await recordUnrecordedRounds()
            await probeFailingStore()
            await flushClientActivity()
            await storeUnstoredDepartures()
            metrics.clients(
                connected: machine.connectedClientCount, registered: enrolledClients,
                required: machine.requiredClients, quorum: configuration.rounds.minFitResults)
            metrics.retryAfterSpread(
                seconds: configuration.paceSteering?.spreadSeconds(connected: machine.connectedClientCount) ?? 0)
            metrics.serverOptimizerSteps(machine.model.serverState?.steps ?? 0)
        }
        if lastConnectionSweep.advanced(by: Self.connectionSweepInterval) <= now {
            lastConnectionSweep = now
            polls.abandonClosed()
        }
        // A poll that ends now was parked until now: its client counts as seen, like the ones still parked.
        let ended = Set(polls.expire(now: now))
        let actions = machine.tick(
            now: now, isParked: { polls.isParked($0) || ended.contains($0) || uploading[$0] != nil })
        await perform(actions)
    }

    private func shutdown() {
        stopped = true
        polls.release()
        persistWaiters.resumeAll()
        for subscriber in subscribers { subscriber.finish() }
        subscribers = []
    }

    // MARK: Models and status

    /// The model a client asked for (`version`, or nil for the current one) if it may have it: the current
    /// model, or the model of its open task. Decided in one step, so a commit in between cannot turn a request
    /// for `current` into a refusal.
    public func download(_ version: Int?, for client: ClientID) async throws -> ModelDownload {
        let version = version ?? machine.model.version
        guard version == machine.model.version || machine.taskModelVersion(for: client) == version else {
            return try await store.checkpoint(version: version) == nil ? .unknown(version) : .forbidden(version)
        }
        guard let served = try await model(version: version) else { return .unknown(version) }
        return .model(served)
    }

    /// A stored model version (committed or candidate): the engine's own copy when it holds that version,
    /// otherwise read from the store for this one use.
    func model(version: Int) async throws -> ServedModel? {
        if let cached = models.model(version: version) { return cached }
        guard let record = try await store.checkpoint(version: version) else { return nil }
        let served = try ServedModel(
            version: version, sha256: record.sha256, stored: try await store.bytes(version: version))
        if machine.liveModelVersions.contains(version) { models.insert(served) }
        return served
    }

    /// Lets go of the in-memory copies downloads are served from, so the next download of each version reads
    /// the store again (tests use it to serve from a store damaged after start-up).
    func forgetServedModels() { models.keep(only: []) }

    /// The model the next round trains from.
    public var currentModel: GlobalModel { machine.model }

    /// A snapshot for `GET /v1/status`.
    public func status() -> WireProtocol.StatusMessage {
        WireProtocol.StatusMessage(
            phase: machine.phaseName, round: machine.currentRound, modelVersion: machine.model.version,
            modelSHA256: machine.model.sha256, clientsRegistered: enrolledClients,
            clientsConnected: machine.connectedClientCount, clientsRequired: machine.requiredClients,
            quorum: configuration.rounds.minFitResults, committedRounds: machine.committedRounds,
            failedRounds: machine.failedRounds, maxRounds: configuration.rounds.maxRounds, paused: machine.isPaused,
            draining: drainDeadline != nil)
    }

    /// `status()` with the refs, the last round and commit, and the effective configuration, for operators.
    public func statusView() async throws -> StatusView {
        let status = status()
        let refs = try await store.refs()
        let recent = try await store.rounds(limit: 200)
        return StatusView(
            status: status, refs: refs, lastRound: recent.first { $0.status != .running },
            lastCommit: recent.first { $0.status == .committed }, configuration: ConfigurationView(configuration),
            privacy: machine.privacy.map(PrivacyView.init))
    }

    /// When each enrolled client was last heard from (polls, heartbeats, results) and whether it counts as
    /// connected, by client id.
    public func clientContacts() -> [String: ClientContact] {
        let now = clock.now
        let wallNow = Date()
        var contacts: [String: ClientContact] = [:]
        for (client, contact) in machine.clientContacts {
            // A parked poll is contact right now; the machine refreshes its `lastSeen` only when it matters.
            let ago = polls.isParked(client) ? 0 : contact.lastSeen.duration(to: now).seconds
            contacts[client.rawValue] = ClientContact(
                connected: contact.connected, lastSeen: Timestamp(wallNow.addingTimeInterval(-max(0, ago))))
        }
        return contacts
    }

    /// A stream of every round report from now on; it finishes when the driver shuts down.
    public func roundReports() -> AsyncStream<Report> {
        let (stream, continuation) = AsyncStream.makeStream(of: Report.self, bufferingPolicy: .bufferingNewest(1024))
        if stopped {
            continuation.finish()
        } else {
            subscribers.append(continuation)
        }
        return stream
    }
}

/// The coordinator could not start: its store has no usable model.
public struct CoordinatorStartupError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension RoundDriver {
    /// False once shutdown (or draining) began; `/readyz` answers 503 then.
    public var isAcceptingWork: Bool { !stopped && drainDeadline == nil }

    /// Why `/readyz` should answer 503, or nil when the coordinator is ready.
    public var notReadyReason: NotReadyReason? {
        if stopped || drainDeadline != nil { return .shuttingDown }
        if storeFailing { return .storeFailing }
        return nil
    }

    /// The open task `taskID` if it belongs to `client`.
    /// - Throws: `UpdateRejection` (unknown, another client's, late, duplicate) otherwise.
    public func checkTask(_ taskID: TaskID, client: ClientID) throws(UpdateRejection) -> Task {
        try machine.checkTask(taskID, of: client)
    }
}
