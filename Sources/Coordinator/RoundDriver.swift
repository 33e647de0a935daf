import FederationCore
import Logging
import ServiceLifecycle

/// Runs the round state machine for the HTTP layer: feeds it events (requests, timer ticks) and carries out
/// its actions (wake long-polls, store and commit models, publish round reports).
///
/// The state machine decides; this actor only performs. All mutable coordinator state lives here, so
/// handlers stay thin and a request never observes a half-applied change.
public actor RoundDriver: Service {
    public typealias Instant = ContinuousClock.Instant
    public typealias Task = RoundTask<Instant>
    public typealias Report = RoundReport<Instant>

    private struct Waiter {
        var id: Int
        var deadline: Instant
        var continuation: CheckedContinuation<Task?, Never>
    }

    fileprivate var machine: RoundStateMachine<Instant>
    private let repository: any ModelRepository
    private let configuration: CoordinatorConfiguration
    private let logger: Logger
    private let clock = ContinuousClock()
    /// SHA-256 of each client token → its client. Tokens themselves are never kept.
    private var tokenOwners: [String: ClientID] = [:]
    private var clientNames: [ClientID: String] = [:]
    private var waiters: [ClientID: [Waiter]] = [:]
    private var waiterSequence = 0
    private var subscribers: [AsyncStream<Report>.Continuation] = []
    fileprivate(set) var stopped = false

    /// Creates a driver on `repository`, starting from its current model; an empty repository is seeded with
    /// `initialWeights` as version 1.
    /// - Throws: `CoordinatorStartupError` when the repository is empty and no initial model was given.
    public init(
        configuration: CoordinatorConfiguration, repository: any ModelRepository, initialWeights: ModelWeights?,
        logger: Logger
    ) async throws {
        var stored = try await repository.current()
        if stored == nil {
            guard let initialWeights else {
                throw CoordinatorStartupError(message: "no current model and no initial model")
            }
            let bytes = SafeTensorsFile(weights: initialWeights, metadata: ["round": "0"]).encoded()
            let version = try await repository.storeCandidate(
                round: 0, parentVersion: nil, bytes: bytes, sha256: Digest.sha256Hex(bytes))
            try await repository.commit(
                version: version, metrics: CommitMetrics(evaluation: nil, fitMetrics: [:], examples: 0))
            stored = try await repository.current()
        }
        guard let stored else {
            throw CoordinatorStartupError(message: "repository has no current model after seeding")
        }
        let weights: ModelWeights
        do {
            weights = try SafeTensorsFile.decode(stored.bytes).weights
        } catch {
            throw CoordinatorStartupError(message: "current model version \(stored.version) is unreadable: \(error)")
        }
        self.machine = RoundStateMachine(
            configuration: configuration.rounds,
            model: GlobalModel(version: stored.version, sha256: stored.sha256, weights: weights),
            lastRound: stored.round, seed: configuration.seed)
        self.repository = repository
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: Service

    /// Ticks the state machine until graceful shutdown, then releases every parked long-poll.
    public func run() async throws {
        let interval = configuration.tickInterval
        await cancelWhenGracefulShutdown {
            while !_Concurrency.Task.isCancelled {
                try? await _Concurrency.Task.sleep(for: interval)
                await self.tick()
            }
        }
        shutdown()
    }

    private func tick() async {
        let now = clock.now
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
    public func register(name: String) async -> WireProtocol.RegistrationResponse {
        var client: ClientID
        repeat { client = ClientID("c-" + Digest.randomToken(bytes: 8)) } while machine.isRegistered(client)
        let token = Digest.randomToken()
        tokenOwners[Digest.sha256Hex(token.utf8)] = client
        clientNames[client] = name
        logger.info("client registered", metadata: ["client_id": "\(client)", "client_name": "\(name)"])
        await perform(machine.register(client, name: name, now: clock.now))
        return WireProtocol.RegistrationResponse(
            clientID: client.rawValue, token: token,
            heartbeatIntervalSeconds: configuration.heartbeatInterval.seconds)
    }

    /// The client a bearer token belongs to, if any.
    public func authenticate(token: String) -> ClientID? {
        tokenOwners[Digest.sha256Hex(token.utf8)]
    }

    /// Records a heartbeat.
    public func heartbeat(_ client: ClientID) async {
        await perform(machine.touch(client, now: clock.now))
    }

    /// The client leaves: its token stops working, its parked polls return, an open task is a dropout.
    public func leave(_ client: ClientID) async {
        tokenOwners = tokenOwners.filter { $0.value != client }
        clientNames[client] = nil
        for waiter in waiters.removeValue(forKey: client) ?? [] {
            _ = machine.setPollParked(client, false, now: clock.now)
            waiter.continuation.resume(returning: nil)
        }
        logger.info("client left", metadata: ["client_id": "\(client)"])
        await perform(machine.leave(client, now: clock.now))
    }

    /// Long-polls for the client's next task: answers at once when one is waiting, otherwise parks until a
    /// task is handed out or `wait` passes (then nil).
    public func nextTask(for client: ClientID, wait: Duration) async -> Task? {
        await perform(machine.setPollParked(client, true, now: clock.now))
        if let task = machine.takeTask(for: client, now: clock.now) {
            await perform(machine.setPollParked(client, false, now: clock.now))
            return task
        }
        guard wait > .zero, !stopped else {
            await perform(machine.setPollParked(client, false, now: clock.now))
            return nil
        }
        waiterSequence += 1
        let waiter = waiterSequence
        let deadline = clock.now.advanced(by: wait)
        return await withCheckedContinuation { continuation in
            waiters[client, default: []].append(Waiter(id: waiter, deadline: deadline, continuation: continuation))
        }
    }

    /// The open task with this id, if any.
    public func openTask(_ taskID: TaskID) -> Task? {
        machine.openTask(taskID)
    }

    // MARK: Results

    /// Hands a decoded fit result to the round.
    /// - Throws: `UpdateRejection` when the round refuses it.
    public func submitFit(_ taskID: TaskID, client: ClientID, result: FitResult) async throws(UpdateRejection) {
        let actions: [RoundAction<Instant>]
        do {
            actions = try machine.fitResult(
                taskID, client: client, weights: result.weights, numExamples: result.numExamples,
                metrics: result.metrics, now: clock.now)
        } catch {
            logRejection(error, taskID: taskID, client: client)
            throw error
        }
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
        await perform(actions)
    }

    /// Records that the client could not complete a task (an `error` dropout).
    public func reportFailure(_ taskID: TaskID, client: ClientID, message: String) async throws(UpdateRejection) {
        let actions = try machine.taskFailed(taskID, client: client, now: clock.now)
        logger.warning(
            "client reported a failed task",
            metadata: ["client_id": "\(client)", "task_id": "\(taskID)", "message": "\(message)"])
        await perform(actions)
    }

    private func logRejection(_ rejection: UpdateRejection, taskID: TaskID, client: ClientID) {
        logger.notice(
            "result rejected",
            metadata: [
                "client_id": "\(client)", "task_id": "\(taskID)", "reason": "\(rejection.reason.rawValue)",
                "detail": "\(rejection.message)",
            ])
    }

    // MARK: Models and status

    /// A stored model version (committed or candidate).
    public func model(version: Int) async throws -> StoredModel? {
        try await repository.model(version: version)
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
            failedRounds: machine.failedRounds, maxRounds: configuration.rounds.maxRounds)
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

    private func perform(_ initial: [RoundAction<Instant>]) async {
        var queue = initial[...]
        while let action = queue.popFirst() {
            switch action {
            case .roundStarted(let round, let baseVersion, let selected):
                logger.info(
                    "round started",
                    metadata: ["round": "\(round)", "base_version": "\(baseVersion)", "selected": "\(selected.count)"])
            case .tasksAvailable(let clients):
                queue += wake(clients)
            case .clientDropped(let client, let kind, let reason):
                logger.notice(
                    "client dropped out",
                    metadata: [
                        "client_id": "\(client)", "task_kind": "\(kind.rawValue)", "reason": "\(reason.rawValue)",
                    ])
            case .storeCandidate(let round, let parentVersion, let weights):
                queue += await storeCandidate(round: round, parentVersion: parentVersion, weights: weights)
            case .commit(let round, let version, let evaluation, let fitMetrics, let examples):
                do {
                    try await repository.commit(
                        version: version,
                        metrics: CommitMetrics(evaluation: evaluation, fitMetrics: fitMetrics, examples: examples))
                    queue += machine.committed(round: round, now: clock.now)
                } catch {
                    logger.error("commit failed", metadata: ["round": "\(round)", "error": "\(error)"])
                    queue += machine.commitFailed(round: round, message: "\(error)", now: clock.now)
                }
            case .roundFinished(let report):
                logFinished(report)
                subscribers = subscribers.filter {
                    if case .terminated = $0.yield(report) { return false }
                    return true
                }
            }
        }
    }

    private func storeCandidate(round: Int, parentVersion: Int, weights: ModelWeights) async -> [RoundAction<Instant>] {
        let bytes = SafeTensorsFile(
            weights: weights, metadata: ["round": String(round), "parent_version": String(parentVersion)]
        ).encoded()
        let sha = Digest.sha256Hex(bytes)
        do {
            let version = try await repository.storeCandidate(
                round: round, parentVersion: parentVersion, bytes: bytes, sha256: sha)
            return machine.candidateStored(
                round: round, candidate: GlobalModel(version: version, sha256: sha, weights: weights), now: clock.now)
        } catch {
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
            waiter.continuation.resume(returning: machine.takeTask(for: client, now: clock.now))
        }
        return actions
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
            logger.info("round committed", metadata: metadata)
        case .failed(let failure):
            metadata["reason"] = "\(failure.code.rawValue)"
            metadata["detail"] = "\(failure.message)"
            logger.warning("round failed", metadata: metadata)
        }
    }
}

/// The coordinator could not start: its store has no usable model.
public struct CoordinatorStartupError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension RoundDriver {
    /// False once shutdown began; `/readyz` answers 503 then.
    public var isAcceptingWork: Bool { !stopped }

    /// The open task `taskID` if it belongs to `client`.
    /// - Throws: `UpdateRejection` (unknown, another client's, late, duplicate) otherwise.
    public func checkTask(_ taskID: TaskID, client: ClientID) throws(UpdateRejection) -> Task {
        try machine.checkTask(taskID, of: client)
    }
}
