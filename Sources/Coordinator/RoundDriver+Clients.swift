import FederationCore
import Logging
import ModelManager

/// What clients do: register, authenticate, heartbeat, leave, long-poll for tasks, and submit results or
/// failures. Each event goes to the state machine, and its actions are performed before the call returns.
extension RoundDriver {
    // MARK: Clients

    /// Registers a client and returns its id and bearer token (shown once; only its hash is kept).
    ///
    /// With an identity key (a per-site secret; only its hash is kept), registering again returns the client
    /// that key registered before, live or departed, with a fresh token (the old one stops working): a restarted
    /// site is the same client, keeps its open task, and leaves no ghost row.
    ///
    /// The answer comes once the registration is committed (a group commit shared with the registrations that
    /// arrived meanwhile): a client that got its token is still enrolled after the coordinator crashes.
    /// - Throws: `RegistrationRefusal` when the federation is full, registrations come too fast, the key's
    ///   client was revoked, or the store could not write it.
    public func register(name: String, identityKey: String? = nil) async throws(RegistrationRefusal)
        -> WireProtocol.RegistrationResponse
    {
        let identity = identityKey.map { Digest.sha256Hex($0.utf8) }
        var returning: ClientID?
        /// Whether the returning client is enrolled already (then it does not count against the limit again).
        var returningEnrolled = false
        if let identity {
            switch registry.identity(identity) {
            case .revoked: throw .revoked
            case .client(let client): (returning, returningEnrolled) = (client, true)
            case nil:
                // The key of a client not heard from lately, or departed, is known only to the store; a store
                // that cannot answer must not turn a returning site into a new client.
                let stored: ClientRecord?
                do {
                    stored = try await store.client(identitySHA256: identity)
                } catch {
                    throw .notStored(EnrolmentNotStored(cause: "\(error)"))
                }
                if let record = stored {
                    guard record.revokedAt == nil, !registry.isRevoked(ClientID(record.clientID)) else {
                        throw .revoked
                    }
                    (returning, returningEnrolled) = (ClientID(record.clientID), record.leftAt == nil)
                } else if case .client(let client)? = registry.identity(identity) {
                    // registered with this key while the store was asked
                    (returning, returningEnrolled) = (client, true)
                }
            }
        }
        let enrolled = enrolledClients - (returningEnrolled ? 1 : 0)
        do {
            try admission.admitRegistration(registered: enrolled, now: clock.now)
        } catch {
            throw .limit(error)
        }
        if let returning { return try await registerAgain(returning, name: name, identity: identity) }
        var client: ClientID
        repeat { client = ClientID("c-" + Digest.randomToken(bytes: 8)) } while machine.isRegistered(client)
        let (token, tokenHash) = registry.issueToken(for: client)
        tokenFilter.insert(tokenSHA256: tokenHash)
        registry.setName(name, of: client)
        if let identity { registry.restoreIdentity(identity, of: client) }
        do {
            try await enrol(
                .registered(id: client.rawValue, name: name, tokenSHA256: tokenHash, identitySHA256: identity))
        } catch {
            registry.forget(client)  // never acknowledged: its token must not work
            throw .notStored(error)
        }
        logger.info(
            "client registered",
            metadata: [
                "client_id": "\(client)", "client_name": "\(ClientText.forLog(name))",
                "identity_key": "\(identity == nil ? "none" : "set")",
            ])
        await perform(machine.register(client, now: clock.now))
        return WireProtocol.RegistrationResponse(
            clientID: client.rawValue, token: token,
            heartbeatIntervalSeconds: configuration.effectiveHeartbeatInterval.seconds)
    }

    /// A client registering again under its identity key: same id, new token, open task kept. The old token's
    /// parked polls return at once, so it neither holds the new token's poll slots nor receives its next task.
    ///
    /// A revocation or departure of the same client handled while the store write is awaited wins over the
    /// registration: a revoked client is refused; a departed one registers again from scratch.
    private func registerAgain(_ client: ClientID, name: String, identity: String?) async throws(RegistrationRefusal)
        -> WireProtocol.RegistrationResponse
    {
        for _ in 0..<3 {
            registry.forget(client)  // the old token stops working
            polls.release(client)
            let (token, tokenHash) = registry.issueToken(for: client)
            tokenFilter.insert(tokenSHA256: tokenHash)
            registry.setName(name, of: client)
            if let identity { registry.restoreIdentity(identity, of: client) }
            do {
                try await enrol(.returned(id: client.rawValue, name: name, tokenSHA256: tokenHash))
            } catch {
                // Not acknowledged: the new token must not work. The client retries its registration.
                if registry.tokenHash(of: client) == tokenHash { registry.forget(client) }
                throw .notStored(error)
            }
            if let identity, registry.identity(identity) == .revoked { throw .revoked }
            guard registry.authenticate(token: token) == .client(client) else { continue }  // it left meanwhile
            logger.notice(
                "client registered again under its identity key",
                metadata: ["client_id": "\(client)", "client_name": "\(ClientText.forLog(name))"])
            if machine.isRegistered(client) {
                await perform(machine.touch(client, now: clock.now))
            } else {
                await perform(machine.register(client, now: clock.now))
            }
            return WireProtocol.RegistrationResponse(
                clientID: client.rawValue, token: token,
                heartbeatIntervalSeconds: configuration.effectiveHeartbeatInterval.seconds)
        }
        throw .limit(
            LimitError(
                limit: .registerRate, message: "the client left while it registered again; retry",
                retryAfter: .seconds(1)))
    }

    /// Takes a token of `client`'s budget for refused submissions; `submissionAccepted` returns it.
    /// - Throws: `LimitError` when `client`'s refused submissions used up its rate.
    public func admitSubmission(from client: ClientID) throws(LimitError) {
        try admission.admitSubmission(from: client, now: clock.now)
    }

    /// The submission `admitSubmission` let in was accepted: it does not count against the limit.
    public func submissionAccepted(from client: ClientID) {
        admission.submissionAccepted(from: client)
    }

    /// Records a heartbeat.
    public func heartbeat(_ client: ClientID) async {
        seenClients.insert(client)
        await perform(machine.touch(client, now: clock.now))
    }

    /// Writes who was heard from since the last flush to the store's `last_seen`, in one transaction; called
    /// once a second by the housekeeping and on shutdown. A failed write only loses soft state: it is logged.
    func flushClientActivity() async {
        guard !seenClients.isEmpty else { return }
        let ids = seenClients.map(\.rawValue).sorted()
        seenClients = []
        await persist("client activity") { try await $0.clientsSeen(ids: ids) }
    }

    /// The client leaves: its token stops working, its parked polls return, an open task is a dropout.
    ///
    /// The live state changes first, before any await: a registration under the client's identity key that
    /// arrives meanwhile starts from the departed client and is not undone. The stored departure names the token
    /// it was sent with, so it does not mark a client that re-registered since as gone.
    public func leave(_ client: ClientID) async {
        let tokenHash = registry.tokenHash(of: client)
        logger.info("client left", metadata: ["client_id": "\(client)"])
        departureWrites += 1
        defer {
            departureWrites -= 1
            forgetDeparturesWhenIdle()
        }
        await forget(client)
        do {
            if try await store.clientLeft(id: client.rawValue, tokenSHA256: tokenHash) { enrolledClients -= 1 }
        } catch {
            // The token stays refused, and the housekeeping writes the departure once the store takes it.
            if let tokenHash { unstoredDepartures[tokenHash] = client }
            logger.error("persisting client departure failed", metadata: ["error": "\(error)"])
        }
    }

    /// Drops a client from the live federation: its token stops working, its parked polls return, an open
    /// task counts as a `disconnect` dropout.
    func forget(_ client: ClientID) async {
        admission.forget(client)
        noteDeparture(tokenSHA256: registry.tokenHash(of: client))
        registry.forget(client)
        polls.release(client)
        await perform(machine.leave(client, now: clock.now))
    }

    /// Long-polls for the client's next task: answers at once when one is waiting, otherwise parks until a
    /// task is handed out or `wait` passes (then `noTask`, with pace steering's hint of when to poll again).
    /// The task comes with the W3C `traceparent` of its span,
    /// for the client to continue the round's trace.
    /// - Throws: `LimitError` when too many long-polls are parked already.
    /// - Parameter isConnectionOpen: whether the request's connection is still open; a parked poll whose
    ///   connection closed ends at the next tick and stops counting as a sign of life.
    public func nextTask(
        for client: ClientID, wait: Duration, isConnectionOpen: (@Sendable () -> Bool)? = nil
    ) async throws(LimitError) -> PollAnswer {
        if wait > .zero {
            try admission.admitLongPoll(own: polls.parkedCount(for: client), total: polls.parkedCount)
        }
        guard let task = await waitForTask(client, wait: wait, isConnectionOpen: isConnectionOpen) else {
            metrics.idlePollAnswered()
            guard let pace = configuration.paceSteering else { return .noTask(retryAfterSeconds: nil) }
            var generator = SystemRandomNumberGenerator()
            return .noTask(
                retryAfterSeconds: pace.retryAfterSeconds(connected: machine.connectedClientCount, using: &generator))
        }
        return .task(
            TaskDelivery(
                task: task, traceparent: tracing.taskDelivered(task)?.traceparent,
                deadlineIn: max(.zero, clock.now.duration(to: task.deadline))))
    }

    /// A poll is a sign of life: the client is seen when it starts and when it ends; while it is parked, the
    /// hub's `parkedClients` keep it connected at every tick. A poll whose connection closes (the client was
    /// killed) ends at the next tick, so a dead client is not kept alive until the poll's own deadline.
    func waitForTask(
        _ client: ClientID, wait: Duration, isConnectionOpen: (@Sendable () -> Bool)? = nil
    ) async -> Task? {
        seenClients.insert(client)
        await perform(machine.polled(client, now: clock.now))
        if let task = deliver(to: client) { return task }
        guard wait > .zero, !stopped else { return nil }
        let deadline = clock.now.advanced(by: wait)
        let poll = polls.nextPollID()
        let task = await withCheckedContinuation { continuation in
            polls.park(client, id: poll, until: deadline, isConnectionOpen: isConnectionOpen, continuation)
        }
        // A poll abandoned with its connection is no sign of life.
        if !polls.wasAbandoned(poll) { await perform(machine.touch(client, now: clock.now)) }
        return task
    }

    /// Polls parked now (for tests and status).
    public var parkedPollCount: Int { polls.parkedCount }

    /// The task waiting for `client`, noting when it was first handed over.
    func deliver(to client: ClientID) -> Task? {
        guard let task = machine.takeTask(for: client, now: clock.now) else { return nil }
        if taskDeliveredAt[task.id] == nil { taskDeliveredAt[task.id] = clock.now }
        return task
    }

    // MARK: Results

    /// Hands a fit result checked while it streamed in to the round, which folds it.
    /// - Throws: `UpdateRejection` when the round refuses it (late: the round closed while it streamed in).
    public func submitFit(_ taskID: TaskID, client: ClientID, update: CheckedUpdate) async throws(UpdateRejection) {
        let actions: [RoundAction<Instant>]
        let started = clock.now
        do {
            actions = try machine.fitResult(taskID, client: client, update: update, now: clock.now)
        } catch {
            logRejection(error, taskID: taskID, client: client)
            throw error
        }
        metrics.updateFolded(duration: started.duration(to: clock.now))
        seenClients.insert(client)
        await perform(actions)
    }

    /// The model a fit task trains from (what its result is checked against): the engine's own copy.
    /// - Throws: `UpdateRejection(.late)` when the round no longer trains from it (it moved on).
    func fitBase(for task: Task) throws(UpdateRejection) -> GlobalModel {
        guard let base = machine.trainingBase, base.version == task.modelVersion else {
            throw UpdateRejection(.late, "round \(task.round) no longer trains from version \(task.modelVersion)")
        }
        return base
    }

    /// An upload of `client` for `task` began (it may still wait for a slot); it counts as liveness until
    /// `uploadEnded`.
    /// - Throws: `UpdateRejection(.duplicate)` when an upload for that task is already in progress.
    func uploadStarted(_ client: ClientID, task: TaskID) throws(UpdateRejection) {
        guard uploadingTasks.insert(task).inserted else {
            throw UpdateRejection(.duplicate, "an upload for task \(task) is already in progress")
        }
        uploading[client, default: 0] += 1
    }

    func uploadEnded(_ client: ClientID, task: TaskID) {
        uploadingTasks.remove(task)
        if let count = uploading[client], count > 1 { uploading[client] = count - 1 } else { uploading[client] = nil }
    }

    /// Whether `task` can still take a result from `client`: an upload for a task that ended (deadline, round
    /// closed) is cut short instead of being read to its end.
    func canStillAnswer(_ task: TaskID, client: ClientID) -> Bool {
        (try? machine.checkTask(task, of: client)) != nil
    }

    /// A fit result refused while it streamed in: counted in its round and logged like any refusal.
    func fitRejected(_ taskID: TaskID, client: ClientID, _ rejection: UpdateRejection) {
        machine.fitRejected(taskID, client: client, rejection, now: clock.now)
        logRejection(rejection, taskID: taskID, client: client)
    }

    /// An upload cut off before its last byte; the task stays open, so the client may send it again.
    func uploadAborted(_ taskID: TaskID, client: ClientID, _ aborted: UploadReceiver.Aborted) {
        logger.notice(
            "upload aborted",
            metadata: roundScoped([
                "client_id": "\(client)", "task_id": "\(taskID)", "received_bytes": "\(aborted.received)",
                "detail": "\(ClientText.forLog(aborted.cause))",
            ]))
    }

    /// An upload the coordinator could not spool (a full or failing disk); the task stays open.
    func spoolFailed(_ taskID: TaskID, client: ClientID, _ failure: SpoolError) {
        logger.error(
            "upload could not be spooled",
            metadata: roundScoped(["client_id": "\(client)", "task_id": "\(taskID)", "error": "\(failure)"]))
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
        seenClients.insert(client)
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

    func logRejection(_ rejection: UpdateRejection, taskID: TaskID, client: ClientID) {
        tracing.resultRefused(client: client, reason: rejection.reason.rawValue)
        logger.notice(
            "result rejected",
            metadata: roundScoped([
                "client_id": "\(client)", "task_id": "\(taskID)", "reason": "\(rejection.reason.rawValue)",
                "detail": "\(ClientText.forLog(rejection.message))",
            ]))
    }
}
