import FederationCore
import FederationTelemetry
import Foundation
import Logging
import ModelManager
import ServiceLifecycle
import Synchronization

/// Runs the round state machine for the HTTP layer: feeds it events (requests, timer ticks) and carries out
/// its actions (wake long-polls, store and commit models, publish round reports).
///
/// The state machine decides; this actor only performs. All mutable coordinator state lives here, so
/// handlers stay thin and a request never observes a half-applied change.
public actor RoundDriver: Service {
    public typealias Instant = ContinuousClock.Instant
    public typealias Task = RoundTask<Instant>
    public typealias Report = RoundReport<Instant>

    struct Waiter {
        var deadline: Instant
        var continuation: CheckedContinuation<Task?, Never>
    }

    var machine: RoundStateMachine<Instant>
    /// The store the driver persists to (read-only use from outside: history, events).
    public let store: CheckpointStore
    let configuration: CoordinatorConfiguration
    let logger: Logger
    let clock = ContinuousClock()
    /// SHA-256 of each client token → its client. Tokens themselves are never kept.
    var tokenOwners: [String: ClientID] = [:]
    /// SHA-256 of revoked clients' tokens: refused with 403 for good, told apart from unknown tokens.
    var revokedTokens: Set<String> = []
    private(set) var waiters: [ClientID: [Waiter]] = [:]
    /// Registrations across the federation (see `Limits.registrationsPerSecond`).
    var registrationBucket: TokenBucket<Instant>
    /// Each client's submissions (see `Limits.submissionsPerClientPerSecond`).
    var submissionBuckets: [ClientID: TokenBucket<Instant>] = [:]
    private var subscribers: [AsyncStream<Report>.Continuation] = []
    fileprivate(set) var stopped = false
    /// Set once SIGTERM (graceful shutdown) arrived: no new round starts, the open one may finish.
    var drainDeadline: Instant?
    /// Raised from the graceful-shutdown handler, which cannot wait for the actor.
    nonisolated let drainRequested = Atomic<Bool>(false)

    /// When the driver last compared the store's `current` ref with its own model.
    private var lastRefCheck: Instant
    /// Set while an operator's rollback is between its store write and the state machine update, so the
    /// periodic ref check does not apply the same rollback a second time.
    var rollbackInProgress = false
    /// Where the driver reports what happens.
    nonisolated let metrics: CoordinatorMetrics
    var tracing: RoundTracing
    /// When each task handed out was delivered, for task-duration metrics.
    private var taskDeliveredAt: [TaskID: Instant] = [:]
    private var observedPhase: RoundPhase
    private var phaseSince: Instant
    /// Recently served model versions (see `model(version:)`).
    private var modelCache: [(version: Int, bytes: [UInt8], sha256: String)] = []
    /// Round start times as wall-clock seconds, for the persisted history.
    private var roundStartedAt: [Int: Double] = [:]
    /// Finished rounds whose history row could not be written yet (the store failed); retried on later ticks
    /// so the history records each round's real outcome, not "running".
    var unrecordedRounds: [RoundRecord] = []
    /// True while `recordUnrecordedRounds` is writing (see there).
    var recordingRounds = false
    /// True after a store write failed, until one succeeds: `/readyz` answers 503 `store_failing`.
    var storeFailing = false
    /// What `rondo_round_backoff_seconds` shows.
    private var shownBackoff = Duration.zero

    /// Creates a driver on `store`, resuming from its `current` checkpoint; an empty store is seeded with
    /// `initialWeights` as an imported version.
    ///
    /// Resuming after a crash: rounds still marked running and candidates of unfinished rounds are marked
    /// aborted ("coordinator restart"), numbering continues after the highest round ever started, and known
    /// clients keep their tokens (they count as disconnected until heard from).
    /// - Throws: `CoordinatorStartupError` when there is no usable model.
    public init(
        configuration: CoordinatorConfiguration, store: CheckpointStore, initialWeights: ModelWeights?, logger: Logger,
        metrics: CoordinatorMetrics = CoordinatorMetrics(), tracer: RondoTracer = RondoTracer(sink: nil)
    ) async throws {
        let aborted = try await store.abortRunningRounds(reason: "coordinator restart")
        _ = try await store.abortCandidates(reason: "coordinator restart")
        if !aborted.isEmpty {
            logger.warning("rounds interrupted by a restart marked aborted", metadata: ["rounds": "\(aborted)"])
        }
        var currentVersion = try await store.refVersion("current")
        if currentVersion == nil {
            guard let initialWeights else {
                throw CoordinatorStartupError(message: "the store has no current model and no initial model was given")
            }
            let bytes = SafeTensorsFile(weights: initialWeights, metadata: ["round": "0"]).encoded()
            currentVersion = try await store.insert(
                round: try await store.lastRoundNumber(), parentVersion: nil, bytes: bytes,
                tensorCount: initialWeights.tensors.count, status: .imported, makeCurrent: true)
        }
        guard let currentVersion, let record = try await store.checkpoint(version: currentVersion) else {
            throw CoordinatorStartupError(message: "the current ref points at a missing checkpoint")
        }
        let weights: ModelWeights
        do {
            weights = try SafeTensorsFile.decode(try await store.bytes(version: currentVersion)).weights
        } catch {
            throw CoordinatorStartupError(message: "current model version \(currentVersion) is unreadable: \(error)")
        }
        var bestValue: Double?
        if let regressionGuard = configuration.rounds.regressionGuard, let best = try await store.refVersion("best") {
            bestValue = try await store.checkpoint(version: best)?.metrics.value(of: regressionGuard.metric)
        }
        var machine = RoundStateMachine<Instant>(
            configuration: configuration.rounds,
            model: GlobalModel(version: currentVersion, sha256: record.sha256, weights: weights),
            lastRound: try await store.lastRoundNumber(), seed: configuration.seed, bestMetricValue: bestValue)
        let now = ContinuousClock.now
        for client in try await store.clients(includeLeft: false) {
            machine.restore(ClientID(client.clientID), name: client.name, now: now)
            tokenOwners[client.tokenSHA256] = ClientID(client.clientID)
        }
        revokedTokens = Set(try await store.revokedClients().map(\.tokenSHA256))
        self.machine = machine
        let rate = configuration.limits.registrationsPerSecond
        self.registrationBucket = TokenBucket(rate: rate, burst: max(1, rate * 2))
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.lastRefCheck = now
        self.metrics = metrics
        self.tracing = RoundTracing(tracer: tracer)
        self.observedPhase = machine.phaseName
        self.phaseSince = now
        metrics.modelVersion(currentVersion)
        metrics.phaseChanged(to: machine.phaseName, from: machine.phaseName, after: .zero)
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
                try? await _Concurrency.Task.sleep(for: interval)
                await self.tick()
                if await self.drainStep() { break }
            }
        } onGracefulShutdown: {
            self.drainRequested.store(true, ordering: .relaxed)
        }
        shutdown()
    }

    private func tick() async {
        let now = clock.now
        if lastRefCheck.advanced(by: .seconds(1)) <= now {
            lastRefCheck = now
            await recordUnrecordedRounds()
            await probeFailingStore()
            await adoptExternalRollback()
            await adoptExternalRevocations()
            metrics.clients(
                connected: machine.connectedClients.count, registered: machine.registeredClientCount,
                required: machine.requiredClients, quorum: configuration.rounds.minFitResults)
        }
        var actions = machine.tick(now: now)
        for (client, list) in waiters {
            let (expired, kept) = (list.filter { $0.deadline <= now }, list.filter { $0.deadline > now })
            waiters[client] = kept.isEmpty ? nil : kept
            for waiter in expired {
                actions += machine.setPollParked(client, false, now: now)
                waiter.continuation.resume(returning: nil)
            }
        }
        await perform(actions)
    }

    private func shutdown() {
        stopped = true
        for (client, list) in waiters {
            for waiter in list {
                _ = machine.setPollParked(client, false, now: clock.now)
                waiter.continuation.resume(returning: nil)
            }
        }
        waiters = [:]
        for subscriber in subscribers { subscriber.finish() }
        subscribers = []
    }

    // MARK: Clients

    /// Registers a client and returns its id and bearer token (shown once; only its hash is kept).
    /// - Throws: `LimitError` when the federation is full or registrations come too fast.
    public func register(name: String) async throws(LimitError) -> WireProtocol.RegistrationResponse {
        try admitRegistration()
        var client: ClientID
        repeat { client = ClientID("c-" + Digest.randomToken(bytes: 8)) } while machine.isRegistered(client)
        let token = Digest.randomToken()
        let tokenHash = Digest.sha256Hex(token.utf8)
        tokenOwners[tokenHash] = client
        await persist("client registration") {
            try await $0.clientRegistered(id: client.rawValue, name: name, tokenSHA256: tokenHash)
        }
        logger.info(
            "client registered", metadata: ["client_id": "\(client)", "client_name": "\(ClientText.forLog(name))"])
        await perform(machine.register(client, name: name, now: clock.now))
        return WireProtocol.RegistrationResponse(
            clientID: client.rawValue, token: token,
            heartbeatIntervalSeconds: configuration.heartbeatInterval.seconds)
    }

    /// The client a bearer token belongs to, or why there is none.
    public func authenticate(token: String) -> ClientAuthentication {
        let hash = Digest.sha256Hex(token.utf8)
        if let client = tokenOwners[hash] { return .client(client) }
        return revokedTokens.contains(hash) ? .revoked : .unknown
    }

    /// Records a heartbeat.
    public func heartbeat(_ client: ClientID) async {
        await perform(machine.touch(client, now: clock.now))
    }

    /// The client leaves: its token stops working, its parked polls return, an open task is a dropout.
    public func leave(_ client: ClientID) async {
        await persist("client departure") { try await $0.clientLeft(id: client.rawValue) }
        logger.info("client left", metadata: ["client_id": "\(client)"])
        await forget(client)
    }

    /// Drops a client from the live federation: its token stops working, its parked polls return, an open
    /// task counts as a `disconnect` dropout.
    func forget(_ client: ClientID) async {
        submissionBuckets[client] = nil
        tokenOwners = tokenOwners.filter { $0.value != client }
        for waiter in waiters.removeValue(forKey: client) ?? [] {
            _ = machine.setPollParked(client, false, now: clock.now)
            waiter.continuation.resume(returning: nil)
        }
        await perform(machine.leave(client, now: clock.now))
    }

    /// Long-polls for the client's next task: answers at once when one is waiting, otherwise parks until a
    /// task is handed out or `wait` passes (then nil). The task comes with the W3C `traceparent` of its span,
    /// for the client to continue the round's trace.
    /// - Throws: `LimitError` when too many long-polls are parked already.
    public func nextTaskWithTrace(for client: ClientID, wait: Duration) async throws(LimitError) -> (
        task: Task, traceparent: String?
    )? {
        if wait > .zero { try admitLongPoll(for: client) }
        guard let task = await waitForTask(client, wait: wait) else { return nil }
        return (task, tracing.taskDelivered(task)?.traceparent)
    }

    private func waitForTask(_ client: ClientID, wait: Duration) async -> Task? {
        await perform(machine.setPollParked(client, true, now: clock.now))
        if let task = deliver(to: client) {
            await perform(machine.setPollParked(client, false, now: clock.now))
            return task
        }
        guard wait > .zero, !stopped else {
            await perform(machine.setPollParked(client, false, now: clock.now))
            return nil
        }
        let deadline = clock.now.advanced(by: wait)
        return await withCheckedContinuation { continuation in
            waiters[client, default: []].append(Waiter(deadline: deadline, continuation: continuation))
        }
    }

    /// The task waiting for `client`, noting when it was first handed over.
    private func deliver(to client: ClientID) -> Task? {
        guard let task = machine.takeTask(for: client, now: clock.now) else { return nil }
        if taskDeliveredAt[task.id] == nil { taskDeliveredAt[task.id] = clock.now }
        return task
    }

    // MARK: Results

    /// Hands a decoded fit result to the round.
    /// - Throws: `UpdateRejection` when the round refuses it.
    public func submitFit(_ taskID: TaskID, client: ClientID, result: FitResult) async throws(UpdateRejection) {
        let actions: [RoundAction<Instant>]
        let started = clock.now
        do {
            actions = try machine.fitResult(
                taskID, client: client, weights: result.weights, numExamples: result.numExamples,
                metrics: result.metrics, now: clock.now)
        } catch {
            logRejection(error, taskID: taskID, client: client)
            throw error
        }
        tracing.taskAnswered(taskID, client: client)
        await persist("client activity") { try await $0.clientSeen(id: client.rawValue) }
        metrics.updateFolded(norm: machine.lastAcceptedUpdateNorm, duration: started.duration(to: clock.now))
        metrics.resultAccepted(
            kind: .fit, after: taskDeliveredAt.removeValue(forKey: taskID).map { $0.duration(to: clock.now) })
        await perform(actions)
    }

    /// Hands an evaluation report to the round.
    /// - Throws: `UpdateRejection` when the round refuses it.
    public func submitEvaluation(_ taskID: TaskID, client: ClientID, report: EvaluationReport)
        async throws(UpdateRejection)
    {
        let actions: [RoundAction<Instant>]
        do {
            actions = try machine.evaluationResult(taskID, client: client, report: report, now: clock.now)
        } catch {
            logRejection(error, taskID: taskID, client: client)
            throw error
        }
        tracing.taskAnswered(taskID, client: client)
        await persist("client activity") { try await $0.clientSeen(id: client.rawValue) }
        metrics.resultAccepted(
            kind: .evaluate, after: taskDeliveredAt.removeValue(forKey: taskID).map { $0.duration(to: clock.now) })
        await perform(actions)
    }

    /// Records that the client could not complete a task (an `error` dropout).
    public func reportFailure(_ taskID: TaskID, client: ClientID, message: String) async throws(UpdateRejection) {
        let actions = try machine.taskFailed(taskID, client: client, now: clock.now)
        logger.warning(
            "client reported a failed task",
            metadata: ["client_id": "\(client)", "task_id": "\(taskID)", "message": "\(ClientText.forLog(message))"])
        await perform(actions)
    }

    private func logRejection(_ rejection: UpdateRejection, taskID: TaskID, client: ClientID) {
        tracing.resultRefused(client: client, reason: rejection.reason.rawValue)
        logger.notice(
            "result rejected",
            metadata: roundScoped([
                "client_id": "\(client)", "task_id": "\(taskID)", "reason": "\(rejection.reason.rawValue)",
                "detail": "\(ClientText.forLog(rejection.message))",
            ]))
    }

    // MARK: Models and status

    /// A stored model version (committed or candidate).
    ///
    /// The last few versions served stay in memory: every selected client downloads the same one or two
    /// versions per round, and reading and re-hashing them from SQLite for each would be wasted work.
    /// The model a client asked for (`version`, or nil for the current one) if it may have it: the current
    /// model, or the model of its open task. Decided in one step, so a commit in between cannot turn a request
    /// for `current` into a refusal.
    public func download(_ version: Int?, for client: ClientID) async throws -> ModelDownload {
        let version = version ?? machine.model.version
        guard version == machine.model.version || machine.taskModelVersion(for: client) == version else {
            return try await store.checkpoint(version: version) == nil ? .unknown(version) : .forbidden(version)
        }
        guard let stored = try await model(version: version) else { return .unknown(version) }
        return .model(version: version, bytes: stored.bytes, sha256: stored.sha256)
    }

    public func model(version: Int) async throws -> (bytes: [UInt8], sha256: String)? {
        if let cached = modelCache.first(where: { $0.version == version }) { return (cached.bytes, cached.sha256) }
        guard let record = try await store.checkpoint(version: version) else { return nil }
        let bytes = try await store.bytes(version: version)
        cacheModel(version: version, bytes: bytes, sha256: record.sha256)
        return (bytes, record.sha256)
    }

    private func cacheModel(version: Int, bytes: [UInt8], sha256: String) {
        modelCache.removeAll { $0.version == version }
        modelCache.append((version, bytes, sha256))
        if modelCache.count > 3 { modelCache.removeFirst() }
    }

    /// The model the next round trains from.
    public var currentModel: GlobalModel { machine.model }

    /// A snapshot for `GET /v1/status`.
    public func status() -> WireProtocol.StatusMessage {
        WireProtocol.StatusMessage(
            phase: machine.phaseName.rawValue, round: machine.currentRound, modelVersion: machine.model.version,
            modelSHA256: machine.model.sha256, clientsRegistered: machine.registeredClientCount,
            clientsConnected: machine.connectedClients.count, clientsRequired: machine.requiredClients,
            quorum: configuration.rounds.minFitResults, committedRounds: machine.committedRounds,
            failedRounds: machine.failedRounds, maxRounds: configuration.rounds.maxRounds, paused: machine.isPaused,
            draining: drainDeadline != nil)
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

    // MARK: Carrying out actions

    func perform(_ initial: [RoundAction<Instant>]) async {
        defer {
            observePhase()
            observeBackoff()
        }
        var queue = initial[...]
        while let action = queue.popFirst() {
            observePhase()  // a phase may last only while one action is carried out (aggregating)
            switch action {
            case .roundStarted(let round, let baseVersion, let selected):
                tracing.roundStarted(round: round, baseVersion: baseVersion, selected: selected.count)
                tracing.phaseChanged(to: .training, inRound: round)  // every round starts training
                logger.info(
                    "round started",
                    metadata: roundScoped([
                        "round": "\(round)", "base_version": "\(baseVersion)", "selected": "\(selected.count)",
                    ]))
                roundStartedAt[round] = Date().timeIntervalSince1970
                metrics.roundStarted(round: round, selected: selected.count)
                await persist("round start") {
                    try await $0.roundStarted(round: round, baseVersion: baseVersion, selected: selected.count)
                }
            case .tasksAvailable(let clients):
                queue += wake(clients)
            case .clientDropped(let client, let kind, let reason):
                metrics.dropout(kind: kind, reason: reason)
                tracing.taskDropped(client: client, reason: reason)
                logger.notice(
                    "client dropped out",
                    metadata: roundScoped([
                        "client_id": "\(client)", "task_kind": "\(kind.rawValue)", "reason": "\(reason.rawValue)",
                    ]))
            case .storeCandidate(let round, let parentVersion, let weights):
                queue += await storeCandidate(round: round, parentVersion: parentVersion, weights: weights)
            case .reject(let round, let version, let evaluation, let fitMetrics, let examples, let clients, let reason):
                tracing.guardRejected(version: version, reason: reason)
                logger.warning(
                    "regression guard rejected the round's model",
                    metadata: ["round": "\(round)", "version": "\(version)", "reason": "\(reason)"])
                do {
                    try await store.reject(
                        version: version, metrics: Self.metrics(evaluation, fitMetrics, examples, clients),
                        reason: reason)
                } catch {
                    storeFailing = true
                    logger.error(
                        "recording the rejection failed", metadata: ["round": "\(round)", "error": "\(error)"])
                }
                queue += machine.rejectionRecorded(round: round, now: clock.now)
            case .commit(let round, let version, let evaluation, let fitMetrics, let examples, let clients):
                do {
                    try await store.commit(
                        version: version, metrics: Self.metrics(evaluation, fitMetrics, examples, clients))
                    queue += machine.committed(round: round, now: clock.now)
                    metrics.modelVersion(version)
                    storeFailing = false
                } catch {
                    metrics.checkpointWritten(success: false, duration: .zero, bytes: nil)
                    storeFailing = true
                    logger.error("commit failed", metadata: ["round": "\(round)", "error": "\(error)"])
                    queue += machine.commitFailed(round: round, message: "\(error)", now: clock.now)
                }
            case .backingOff(_, let delay, let failures):
                metrics.roundBackedOff()
                logger.warning(
                    "rounds keep failing; waiting before the next one",
                    metadata: ["consecutive_failures": "\(failures)", "delay_seconds": "\(delay.seconds)"])
            case .roundFinished(let report):
                logFinished(report)
                metrics.roundFinished(report)
                tracing.roundFinished(report)
                taskDeliveredAt = taskDeliveredAt.filter { ($0.key.round ?? 0) > report.round }
                let record = Self.record(report, startedAt: roundStartedAt.removeValue(forKey: report.round))
                await recordRound(record)
                subscribers = subscribers.filter {
                    if case .terminated = $0.yield(report) { return false }
                    return true
                }
            }
        }
    }

    /// Shows the wait failing rounds impose now (`rondo_round_backoff_seconds`) whenever it changed.
    private func observeBackoff() {
        let backoff = machine.failureBackoff
        guard backoff != shownBackoff else { return }
        metrics.roundBackoff(backoff)
        shownBackoff = backoff
    }

    /// Reports a phase change (and how long the previous phase lasted) when the machine moved on.
    private func observePhase() {
        let phase = machine.phaseName
        guard phase != observedPhase else { return }
        metrics.phaseChanged(to: phase, from: observedPhase, after: phaseSince.duration(to: clock.now))
        tracing.phaseChanged(to: phase, inRound: machine.openRound)
        observedPhase = phase
        phaseSince = clock.now
    }

    private func storeCandidate(round: Int, parentVersion: Int, weights: ModelWeights) async -> [RoundAction<Instant>] {
        let started = clock.now
        let bytes = SafeTensorsFile(
            weights: weights, metadata: ["round": String(round), "parent_version": String(parentVersion)]
        ).encoded()
        do {
            let (version, sha) = try await store.storeCandidate(
                round: round, parentVersion: parentVersion, bytes: bytes, tensorCount: weights.tensors.count)
            metrics.checkpointWritten(success: true, duration: started.duration(to: clock.now), bytes: bytes.count)
            storeFailing = false
            cacheModel(version: version, bytes: bytes, sha256: sha)
            return machine.candidateStored(
                round: round, candidate: GlobalModel(version: version, sha256: sha, weights: weights), now: clock.now)
        } catch {
            metrics.checkpointWritten(success: false, duration: started.duration(to: clock.now), bytes: nil)
            storeFailing = true
            logger.error("storing the aggregated model failed", metadata: ["round": "\(round)", "error": "\(error)"])
            return machine.candidateStoreFailed(round: round, message: "\(error)", now: clock.now)
        }
    }

    /// Hands waiting tasks to parked long-polls.
    private func wake(_ clients: [ClientID]) -> [RoundAction<Instant>] {
        var actions: [RoundAction<Instant>] = []
        for client in clients {
            guard var list = waiters[client], !list.isEmpty else { continue }
            let waiter = list.removeFirst()
            waiters[client] = list.isEmpty ? nil : list
            actions += machine.setPollParked(client, false, now: clock.now)
            waiter.continuation.resume(returning: deliver(to: client))
        }
        return actions
    }

    /// Adds the round's `trace_id` and `span_id` to a round-scoped log line.
    private func roundScoped(_ metadata: Logger.Metadata) -> Logger.Metadata {
        metadata.merging(tracing.logMetadata) { own, _ in own }
    }

    private func logFinished(_ report: Report) {
        var metadata: Logger.Metadata = [
            "round": "\(report.round)", "selected": "\(report.selected)", "accepted": "\(report.accepted)",
            "dropouts": "\(report.totalDropouts)", "duration_seconds": "\(report.duration.seconds)",
        ]
        if let evaluation = report.evaluation {
            metadata["eval_loss"] = "\(evaluation.loss)"
            for (name, value) in evaluation.metrics { metadata["eval_\(name)"] = "\(value)" }
        }
        switch report.outcome {
        case .committed:
            metadata["version"] = "\(report.resultVersion ?? 0)"
            logger.info("round committed", metadata: roundScoped(metadata))
        case .failed(let failure):
            metadata["reason"] = "\(failure.code.rawValue)"
            metadata["detail"] = "\(failure.message)"
            logger.warning("round failed", metadata: roundScoped(metadata))
        }
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
