/// The federation's round logic as a pure state machine.
///
/// Every input is an event method that takes the current instant and returns the actions the server must
/// carry out; nothing here reads a clock, sleeps, touches a socket or draws global randomness, so every
/// timing case is testable with made-up instants.
///
/// A round: when enough clients are connected, sample them and hand each a fit task on the current model;
/// fold every valid result into a streaming FedAvg; close when all selected clients answered or dropped, or
/// at the deadline; with a quorum of results, ask the server to store the aggregate as a candidate version,
/// evaluate it on a sample of clients, then ask the server to commit it. Without a quorum the round fails and
/// the next one starts from the same (last good) model.
///
/// Invariants: at most one round is open; a client has at most one open task; every task ends exactly once
/// (answered, or a dropout with a reason); `model` only ever changes through `committed`.
public struct RoundStateMachine<Instant: InstantProtocol & Sendable>: Sendable where Instant.Duration == Duration {
    public typealias Action = RoundAction<Instant>
    public typealias Task = RoundTask<Instant>
    public typealias Report = RoundReport<Instant>

    struct ClientState: Sendable {
        var lastSeen: Instant
        var connected = true
        var openTask: TaskID?
    }

    enum TaskEnd: Sendable {
        case answered
        case dropped(DropoutReason)
    }

    struct OpenTask: Sendable {
        var task: Task
        var delivered = false
    }

    /// Bookkeeping shared by every phase of one round.
    struct RoundProgress: Sendable {
        var round: Int
        var base: GlobalModel
        var startedAt: Instant
        var selected: Int
        var accepted = 0
        /// Examples behind the accepted results (saturating: a sum of client-reported counts).
        var examples = 0
        var rejected: [UpdateRejection.Reason: Int] = [:]
        var fitDropouts: [DropoutReason: Int] = [:]
        var evaluationDropouts: [DropoutReason: Int] = [:]
        /// Each accepted result's training metrics with its example count, weighted when the round closes.
        var fitReports: [EvaluationReport] = []
        var candidate: GlobalModel?
        var evaluation: EvaluationSummary?
        /// Under differential privacy: accepted updates no longer than the clip norm, and, once aggregated,
        /// what the round spends (recorded when its candidate is stored).
        var unclipped = 0
        var privacySpend: PrivacySpend?
    }

    enum Phase: Sendable {
        case idle
        /// `average`: the round's aggregate (FedAvg's running sums, or every result for a robust aggregator).
        case training(RoundProgress, tasks: [TaskID: OpenTask], average: RoundAggregate, deadline: Instant)
        case aggregating(RoundProgress)
        case evaluating(RoundProgress, tasks: [TaskID: OpenTask], evaluation: FederatedEvaluation, deadline: Instant)
        case committing(RoundProgress)
        case rejecting(RoundProgress, reason: String)
        case finished
    }

    public let configuration: RoundConfiguration
    /// The last good model: what the next round trains from.
    public internal(set) var model: GlobalModel
    /// The number of the most recent round started (0 before the first).
    public internal(set) var currentRound: Int
    public internal(set) var committedRounds = 0
    public internal(set) var failedRounds = 0
    /// Rounds started by this machine (what `maxRounds` counts).
    public internal(set) var roundsStarted = 0
    /// The guarded metric's value for the best model so far, if known.
    public internal(set) var bestMetricValue: Double?
    var clients: [ClientID: ClientState] = [:]
    /// How many of `clients` are connected, kept in step with every change of a `connected` flag, so checking
    /// whether a round can start costs nothing however many clients are enrolled.
    public internal(set) var connectedClientCount = 0
    var phase: Phase = .idle
    /// The phase last announced with a `phaseChanged` action.
    var announcedPhase = RoundPhase.selecting
    var generator: SeededRandomNumberGenerator
    /// The privacy ledger's state under `configuration.privacy` (nil without it).
    public internal(set) var privacy: PrivacyAccount?
    private var taskSequence = 0
    var endedTasks: [TaskID: TaskEnd] = [:]
    /// Failed rounds in a row (operator aborts excluded); reset by a commit.
    public internal(set) var consecutiveFailures = 0
    /// True while the operator has paused the federation: the open round runs to its end, no new round starts.
    public internal(set) var isPaused = false
    /// No round starts before this instant (set after a failed round).
    public internal(set) var nextRoundNotBefore: Instant?
    /// When the open goal-count selection window opened (nil without a goal, or while a round is open).
    public internal(set) var selectionWindowOpenedAt: Instant?
    /// Clients released at a round's goal that have not polled since: still busy with the released task, so
    /// they are neither checked in nor sampled until they ask for work again (or leave, or fall silent).
    public internal(set) var releasedStillWorking: Set<ClientID> = []

    /// The wait the current run of failures imposes before each next round: base × 2^(failures − 1), capped;
    /// zero without failures, while paused, and once the federation finished (nothing is being held back).
    public var failureBackoff: Duration {
        guard consecutiveFailures > 0, !isPaused else { return .zero }
        if case .finished = phase { return .zero }
        let exponent = min(consecutiveFailures - 1, 30)
        return min(configuration.failureBackoff * (1 << exponent), configuration.maxFailureBackoff)
    }

    /// - Parameters:
    ///   - model: the model the first round trains from.
    ///   - lastRound: the number of the last round already run (rounds continue from `lastRound + 1`).
    ///   - seed: seeds client selection.
    ///   - bestMetricValue: the regression guard's metric for the best model so far, when known.
    ///   - privacyLedger: every differentially private round spent so far, in round order (from the store).
    public init(
        configuration: RoundConfiguration, model: GlobalModel, lastRound: Int = 0, seed: UInt64,
        bestMetricValue: Double? = nil, privacyLedger: [PrivacySpend] = []
    ) {
        self.configuration = configuration
        self.privacy = configuration.privacy.map { PrivacyAccount(settings: $0, ledger: privacyLedger) }
        self.model = model
        self.currentRound = lastRound
        self.bestMetricValue = bestMetricValue
        // Mix the round number in so a restarted coordinator does not replay the same selections.
        self.generator = SeededRandomNumberGenerator(seed: seed ^ (UInt64(lastRound) &* 0x9E37_79B9_7F4A_7C15))
        if budgetSpentAtStart() { phase = .finished }
    }

    // MARK: Queries

    public var phaseName: RoundPhase {
        switch phase {
        case .idle: .selecting
        case .training: .training
        case .aggregating: .aggregating
        case .evaluating: .evaluating
        case .committing, .rejecting: .committing
        case .finished: .finished
        }
    }

    public var registeredClientCount: Int { clients.count }

    public func isRegistered(_ client: ClientID) -> Bool { clients[client] != nil }

    /// Clients counted as connected: seen within the liveness timeout (a parked long-poll counts as seen, see
    /// `tick(now:parked:)`). Walks every client: use `connectedClientCount` for the number.
    public var connectedClients: [ClientID] {
        clients.compactMap { $0.value.connected ? $0.key : nil }
    }

    /// Connected clients free for work: connected, and not still busy with a task released at a goal.
    public var availableClientCount: Int {
        connectedClientCount - releasedStillWorking.count { clients[$0]?.connected == true }
    }

    /// The clients `availableClientCount` counts (walks every client).
    var availableClients: [ClientID] {
        clients.compactMap { $0.value.connected && !releasedStillWorking.contains($0.key) ? $0.key : nil }
    }

    /// Connected clients a round needs before it starts (with a selection goal: its minimum, with which a
    /// timed-out window still opens the round; the goal with its over-selection opens it at once).
    public var requiredClients: Int {
        if let goal = configuration.selection.goal { return goal.minimum }
        return max(configuration.selection.minAvailableClients, configuration.selection.minFitClients)
    }

    /// The candidate versions the open round has stored (so the server can serve them to evaluators).
    public var openRound: Int? {
        switch phase {
        case .idle, .finished: nil
        case .training(let progress, _, _, _), .aggregating(let progress), .evaluating(let progress, _, _, _),
            .committing(let progress), .rejecting(let progress, _):
            progress.round
        }
    }

    /// The model the open round trains from, while it is training (what fit results are checked against).
    public var trainingBase: GlobalModel? {
        guard case .training(let progress, _, _, _) = phase else { return nil }
        return progress.base
    }

    /// The model versions the engine holds: the current model and the open round's base and candidate. The
    /// server keeps exactly these in memory for downloads (the engine's own copies), and no others.
    public var liveModelVersions: Set<Int> {
        var versions: Set<Int> = [model.version]
        switch phase {
        case .idle, .finished: break
        case .training(let progress, _, _, _), .aggregating(let progress), .evaluating(let progress, _, _, _),
            .committing(let progress), .rejecting(let progress, _):
            versions.insert(progress.base.version)
            if let candidate = progress.candidate { versions.insert(candidate.version) }
        }
        return versions
    }

    /// The model version of the client's open task, if it has one: with the current model, the only versions
    /// a client has reason to download.
    public func taskModelVersion(for client: ClientID) -> Int? {
        guard let taskID = clients[client]?.openTask else { return nil }
        switch phase {
        case .training(_, let tasks, _, _), .evaluating(_, let tasks, _, _): return tasks[taskID]?.task.modelVersion
        default: return nil
        }
    }

    // MARK: Time

    /// Advances time: disconnects silent clients, drops tasks past their deadline, closes phases, and starts a
    /// round when enough clients are connected.
    /// - Parameter parked: clients with a long-poll parked on the server right now; a parked poll is a sign of
    ///   life, so they never go silent (their `lastSeen` becomes `now` when it would have run out).
    public mutating func tick(now: Instant, parked: Set<ClientID> = []) -> [Action] {
        tick(now: now, isParked: { parked.contains($0) })
    }

    /// Advances time like `tick(now:parked:)`, asking `isParked` only about clients that would otherwise go
    /// silent: a parked client's `lastSeen` is refreshed then, so a tick costs one pass over the clients and no
    /// work per parked poll.
    public mutating func tick(now: Instant, isParked: (ClientID) -> Bool) -> [Action] {
        var actions: [Action] = []
        // Collected first: changing `clients` while iterating it would copy the whole table.
        var quiet: [ClientID] = []
        for (id, state) in clients
        where state.connected && state.lastSeen.advanced(by: configuration.livenessTimeout) < now {
            quiet.append(id)
        }
        for id in quiet.sorted(by: { $0.rawValue < $1.rawValue }) {
            guard let state = clients[id] else { continue }
            if isParked(id) {
                clients[id]!.lastSeen = now
                continue
            }
            clients[id]!.connected = false
            connectedClientCount -= 1
            releasedStillWorking.remove(id)
            actions.append(.clientWentSilent(id, lastSeen: state.lastSeen))
            if let taskID = state.openTask {
                actions += endTask(taskID, dropout: .timeout, now: now)
            }
        }
        // The tasks past the deadline are ended after the switch: ending the last one closes the phase, and the
        // switch's copy of the phase would otherwise still hold the sums while the average is taken.
        var expired: [TaskID] = []
        switch phase {
        case .training(_, let tasks, _, let deadline) where deadline <= now:
            expired = tasks.keys.sorted(by: { $0.rawValue < $1.rawValue })
        case .evaluating(_, let tasks, _, let deadline) where deadline <= now:
            expired = tasks.keys.sorted(by: { $0.rawValue < $1.rawValue })
        default:
            break
        }
        for taskID in expired { actions += endTask(taskID, dropout: .timeout, now: now) }
        // A deadline with no tasks left open (all dropped at once above) still has to close the phase.
        actions += closePhaseIfDone(now: now)
        actions += startRoundIfReady(now: now)
        return actions
    }

    // MARK: Internals

    mutating func startRoundIfReady(now: Instant) -> [Action] {
        guard case .idle = phase, !isPaused else {
            selectionWindowOpenedAt = nil
            return []
        }
        if let maxRounds = configuration.maxRounds, roundsStarted >= maxRounds {
            phase = .finished
            return announcePhase()
        }
        if let notBefore = nextRoundNotBefore {
            guard notBefore <= now else {
                selectionWindowOpenedAt = nil
                return []
            }
            nextRoundNotBefore = nil
        }
        var actions: [Action] = []
        let count: Int
        if let goal = configuration.selection.goal {
            let opened = selectionWindowOpenedAt ?? now
            selectionWindowOpenedAt = opened
            let waited = opened.duration(to: now)
            let checkedIn = availableClientCount
            switch goal.decide(checkedIn: checkedIn, waited: waited) {
            case .wait:
                return []
            case .abandon:
                selectionWindowOpenedAt = now
                return [
                    .selectionEnded(outcome: .timedOutBelowMinimum, checkedIn: checkedIn, selected: 0, waited: waited)
                ]
            case .open(let selecting, let outcome):
                selectionWindowOpenedAt = nil
                count = selecting
                actions.append(.selectionEnded(outcome: outcome, checkedIn: checkedIn, selected: count, waited: waited))
            }
        } else {
            guard let sampleSize = configuration.selection.fitSampleSize(available: availableClientCount) else {
                return []
            }
            count = sampleSize
        }
        if let refusal = refuseOverBudget() { return actions + refusal }
        let available = availableClients
        currentRound += 1
        roundsStarted += 1
        let round = currentRound
        endedTasks = endedTasks.filter { ($0.key.round ?? 0) >= round - 1 }
        let selected = SelectionPolicy.sample(count, from: available, using: &generator)
        let deadline = now.advanced(by: configuration.fitTimeout)
        let tasks = makeTasks(
            for: selected, round: round, kind: .fit, model: model, deadline: deadline,
            // The strategy's own entries (FedProx's proximal_mu) win over an operator's --fit-config.
            config: configuration.fitConfig.merging(configuration.strategy.fitConfig) { _, strategy in strategy })
        let progress = RoundProgress(round: round, base: model, startedAt: now, selected: selected.count)
        phase = .training(
            progress, tasks: tasks,
            average: RoundAggregate(
                strategy: configuration.strategy, layout: model.weights, weightCap: configuration.weightCap),
            deadline: deadline)
        return actions + [.roundStarted(round: round, baseVersion: model.version, selected: selected)]
            + announcePhase() + [.tasksAvailable(selected)]
    }

    mutating func makeTasks(
        for chosen: [ClientID], round: Int, kind: TaskKind, model: GlobalModel, deadline: Instant,
        config: [String: String]
    ) -> [TaskID: OpenTask] {
        var tasks: [TaskID: OpenTask] = [:]
        for client in chosen {
            taskSequence += 1
            let id = TaskID(round: round, kind: kind, sequence: taskSequence)
            tasks[id] = OpenTask(
                task: Task(
                    id: id, round: round, kind: kind, client: client, modelVersion: model.version,
                    modelSHA256: model.sha256, deadline: deadline, config: config))
            clients[client]?.openTask = id
        }
        return tasks
    }

    /// Ends an open task as a dropout and closes the phase if nothing else is outstanding.
    mutating func endTask(_ taskID: TaskID, dropout reason: DropoutReason, now: Instant) -> [Action] {
        var kind = TaskKind.fit
        var client: ClientID?
        switch phase {
        case .training(var progress, var tasks, let average, let deadline):
            guard tasks[taskID] != nil else { return [] }
            phase = .idle  // no second reference: the removal is made in place, not on a copy of every task
            let open = tasks.removeValue(forKey: taskID)!
            client = open.task.client
            progress.fitDropouts[reason, default: 0] += 1
            phase = .training(progress, tasks: tasks, average: average, deadline: deadline)
        case .evaluating(var progress, var tasks, let evaluation, let deadline):
            guard tasks[taskID] != nil else { return [] }
            phase = .idle
            let open = tasks.removeValue(forKey: taskID)!
            client = open.task.client
            kind = .evaluate
            progress.evaluationDropouts[reason, default: 0] += 1
            phase = .evaluating(progress, tasks: tasks, evaluation: evaluation, deadline: deadline)
        default:
            return []
        }
        guard let client else { return [] }
        if reason == .released { releasedStillWorking.insert(client) }
        return [.clientDropped(client, kind: kind, reason: reason)]
            + finishTask(taskID, of: client, end: .dropped(reason), now: now)
    }

    mutating func finishTask(_ taskID: TaskID, of client: ClientID, end: TaskEnd, now: Instant) -> [Action] {
        endedTasks[taskID] = end
        if clients[client]?.openTask == taskID { clients[client]!.openTask = nil }
        return closePhaseIfDone(now: now)
    }

}
