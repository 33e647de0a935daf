/// Events from clients (register, heard from, take a task, leave, report a failure) and from operators (replace
/// the model, pause, abort the open round).
extension RoundStateMachine {
    // MARK: Client events

    /// Adds a newly registered client. It may complete the set a round was waiting for.
    public mutating func register(_ client: ClientID, now: Instant) -> [Action] {
        precondition(clients[client] == nil, "client \(client) registered twice")
        clients[client] = ClientState(lastSeen: now)
        connectedClientCount += 1
        return startRoundIfReady(now: now)
    }

    /// Re-adds an enrolled client the table does not hold (known from the store: after a restart, or after
    /// `evict`), as disconnected until it is heard from; `touch` then reports it returned after `lastSeen`.
    public mutating func restore(_ client: ClientID, lastSeen: Instant) {
        guard clients[client] == nil else { return }
        clients[client] = ClientState(lastSeen: lastSeen, connected: false)
    }

    /// Drops a disconnected client from the table: it stays enrolled (the coordinator's store knows it), but
    /// costs no memory and no work per tick until `restore` brings it back. A connected client, or one with an
    /// open task, is kept.
    /// - Returns: whether the client was dropped.
    @discardableResult
    public mutating func evict(_ client: ClientID) -> Bool {
        guard let state = clients[client], !state.connected, state.openTask == nil else { return false }
        clients[client] = nil
        releasedStillWorking.remove(client)
        return true
    }

    /// True while the store is being asked to persist the round's outcome (a rollback must wait).
    public var isPersisting: Bool {
        switch phase {
        case .aggregating, .committing, .rejecting: true
        default: false
        }
    }

    /// Makes `replacement` the model the next round trains from (a rollback). An open round is aborted: its
    /// results were computed from the model being replaced.
    /// - Precondition: not `isPersisting`.
    public mutating func replaceModel(with replacement: GlobalModel, reason: String, now: Instant) -> [Action] {
        precondition(!isPersisting, "replace the model only between store operations")
        model = replacement
        // A new model is a fresh start: the failures that led to the rollback no longer delay the next round.
        consecutiveFailures = 0
        nextRoundNotBefore = nil
        return abortOpenRound(reason: reason, now: now) ?? startRoundIfReady(now: now)
    }

    /// Pauses or resumes the federation. Pausing lets an open round finish; resuming starts a round at once when
    /// enough clients are connected.
    public mutating func setPaused(_ paused: Bool, now: Instant) -> [Action] {
        isPaused = paused
        return paused ? [] : startRoundIfReady(now: now)
    }

    /// Aborts the open round on an operator's request: its tasks end, nothing it computed is kept, and the next
    /// round (unless paused) starts from the current model.
    /// - Returns: the actions, or nil when no round is in training or evaluation (nothing to abort, or its
    ///   outcome is being stored and must not be cut in half).
    public mutating func abortRound(reason: String, now: Instant) -> [Action]? {
        abortOpenRound(reason: reason, now: now)
    }

    mutating func abortOpenRound(reason: String, now: Instant) -> [Action]? {
        switch phase {
        case .training(let progress, let tasks, _, _), .evaluating(let progress, let tasks, _, _):
            for task in tasks.values { endedTasks[task.task.id] = .dropped(.disconnect) }
            for task in tasks.values where clients[task.task.client]?.openTask == task.task.id {
                clients[task.task.client]!.openTask = nil
            }
            failedRounds += 1
            return finish(progress, outcome: .failed(RoundFailure(.aborted, reason)), resultVersion: nil, now: now)
        default:
            return nil
        }
    }

    /// The client asks for work (a poll): heard from, and no longer busy with a task released at a goal.
    public mutating func polled(_ client: ClientID, now: Instant) -> [Action] {
        guard releasedStillWorking.remove(client) != nil else { return touch(client, now: now) }
        return touch(client, now: now) + startRoundIfReady(now: now)
    }

    /// Records that a client was heard from (heartbeat or any authenticated request).
    /// - Returns: actions (a returning client may complete the set a round was waiting for).
    public mutating func touch(_ client: ClientID, now: Instant) -> [Action] {
        guard let state = clients[client] else { return [] }
        clients[client]!.lastSeen = now
        if !state.connected {
            clients[client]!.connected = true
            connectedClientCount += 1
            return [.clientReturned(client, silentSince: state.lastSeen)] + startRoundIfReady(now: now)
        }
        return []
    }

    /// When each client was last heard from, and whether it counts as connected (heard from within the liveness
    /// timeout, or holding a parked long-poll at the last tick).
    public var clientContacts: [ClientID: (connected: Bool, lastSeen: Instant)] {
        clients.mapValues { ($0.connected, $0.lastSeen) }
    }

    /// The task waiting for this client, if any; marks it delivered.
    ///
    /// Asking again before answering returns the same task, so a client that lost a response (or restarted)
    /// picks its work up again instead of timing out.
    public mutating func takeTask(for client: ClientID, now: Instant) -> Task? {
        guard let taskID = clients[client]?.openTask else { return nil }
        switch phase {
        case .training(let progress, var tasks, let average, let deadline):
            guard tasks[taskID] != nil else { return nil }
            phase = .idle  // no second reference: the change below is made in place, not on a copy of every task
            tasks[taskID]!.delivered = true
            phase = .training(progress, tasks: tasks, average: average, deadline: deadline)
            return tasks[taskID]!.task
        case .evaluating(let progress, var tasks, let evaluation, let deadline):
            guard tasks[taskID] != nil else { return nil }
            phase = .idle
            tasks[taskID]!.delivered = true
            phase = .evaluating(progress, tasks: tasks, evaluation: evaluation, deadline: deadline)
            return tasks[taskID]!.task
        default:
            return nil
        }
    }

    /// The client left on purpose; an open task of its is a `disconnect` dropout.
    public mutating func leave(_ client: ClientID, now: Instant) -> [Action] {
        guard let state = clients.removeValue(forKey: client) else { return [] }
        releasedStillWorking.remove(client)
        if state.connected { connectedClientCount -= 1 }
        guard let taskID = state.openTask else { return [] }
        return endTask(taskID, dropout: .disconnect, now: now)
    }

    /// The client reports that it could not finish a task; that is an `error` dropout.
    /// - Throws: `UpdateRejection` when the task is unknown, not this client's, or already ended.
    public mutating func taskFailed(_ taskID: TaskID, client: ClientID, now: Instant) throws(UpdateRejection)
        -> [Action]
    {
        _ = try checkTask(taskID, of: client)
        clients[client]?.lastSeen = now
        return endTask(taskID, dropout: .error, now: now)
    }
}
