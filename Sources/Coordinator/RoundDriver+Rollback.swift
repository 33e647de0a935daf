import FederationCore
import Logging
import ModelManager

/// Operator rollbacks, and the waits that keep them from cutting a round's store write in half.
extension RoundDriver {
    /// Rolls the federation back to `version` (an operator's request): the store moves `current` and writes the
    /// audit event, then the next round trains from that version; a round in flight is aborted.
    ///
    /// Rollbacks run one at a time, in arrival order. One that arrives while a round's outcome is being stored
    /// waits for the store write to finish, then goes ahead.
    /// Every rollback that moves `current` counts once in `rondo_rollbacks_total`, however quickly the next follows.
    /// - Parameter force: lets a version the guard rejected, or whose round was aborted, become current (recorded).
    /// - Throws: `CheckpointStoreError` (unknown, corrupt or incomplete version; `forceRequired` for a rejected or
    ///   aborted one without `force`), `OperatorActionError` `.roundsKeepCommitting`, `NotReadyReason.shuttingDown`,
    ///   `LimitError` when too many rollbacks wait.
    public func rollback(
        to version: Int, reason: String, actor: String, traceID: String? = nil, force: Bool = false
    ) async throws -> (from: Int, to: Int) {
        try await enterRollbackLane()
        defer { leaveRollbackLane() }
        let served = try await loadModel(version)
        // Read before the checks below: nothing may await between the last check and the switch.
        let serverState = await Self.serverState(
            of: version, model: served.weights, strategy: configuration.rounds.strategy, store: store, logger: logger)
        try await untilStoreWriteDone()
        let previous = machine.model.version
        try await store.rollback(to: version, reason: reason, actor: actor, traceID: traceID, force: force)
        // The re-hash inside the store's transaction takes a while; meanwhile the open round may have closed and
        // committed (moving `current` on). Let any store write finish and check the store again; when a commit
        // got in between, roll it back too, so the store and the round engine agree on the model. The switch
        // follows the last check with no await in between. Rounds that keep committing faster than the store
        // rolls back make the operator pause first rather than loop.
        var attempts = 1
        while true {
            try await untilStoreWriteDone()
            let commits = machine.committedRounds
            let current = try await store.refVersion(.current)
            if current == version, !machine.isPersisting, machine.committedRounds == commits { break }
            guard attempts < 5 else {
                throw OperatorActionError(
                    code: .roundsKeepCommitting,
                    message: "rounds kept committing during the rollback to version \(version); pause the federation "
                        + "and retry")
            }
            attempts += 1
            try await untilStoreWriteDone()
            try await store.rollback(to: version, reason: reason, actor: actor, traceID: traceID, force: force)
        }
        metrics.rolledBack()
        tracing.rolledBack(from: previous, to: version, actor: actor, reason: reason)
        metrics.modelVersion(version)
        logger.warning(
            "rolled back",
            metadata: [
                "from_version": "\(previous)", "to_version": "\(version)", "actor": "\(actor)", "reason": "\(reason)",
            ])
        await perform(
            machine.replaceModel(
                with: GlobalModel(
                    version: version, sha256: served.sha256, weights: served.weights, serverState: serverState),
                reason: "rolled back to version \(version) during the round", now: clock.now))
        // Ticks during the store's work may have let it go (it was not live yet); downloads share it now.
        models.insert(served)
        return (previous, version)
    }

    /// Returns once no round outcome is being stored (`perform` resumes the waiters when a store write ends).
    /// Shutdown resumes them too, possibly with a write still in flight: check `isPersisting` after.
    func untilNotPersisting() async {
        while machine.isPersisting, !stopped {
            await withCheckedContinuation { persistWaiters.add($0) }
        }
    }

    /// `untilNotPersisting`, for an action that then changes the model.
    /// - Throws: `NotReadyReason.shuttingDown` when shutdown cut the wait short with a store write in flight.
    private func untilStoreWriteDone() async throws(NotReadyReason) {
        await untilNotPersisting()
        if machine.isPersisting { throw .shuttingDown }
    }

    /// Rollbacks that may wait behind the one in progress; more are refused (429), so a burst of requests whose
    /// callers already gave up cannot keep flipping the model for minutes.
    static let maxQueuedRollbacks = 4

    private func enterRollbackLane() async throws(LimitError) {
        guard rollbackInProgress else {
            rollbackInProgress = true
            return
        }
        guard rollbackQueue.count < Self.maxQueuedRollbacks else {
            throw LimitError(
                limit: .queuedRollbacks, message: "\(rollbackQueue.count) rollbacks are already waiting; retry shortly",
                retryAfter: .seconds(1))
        }
        // `leaveRollbackLane` hands the lane over without clearing the flag.
        await withCheckedContinuation { rollbackQueue.add($0) }
    }

    private func leaveRollbackLane() {
        if !rollbackQueue.resumeFirst() { rollbackInProgress = false }
    }

    private func loadModel(_ version: Int) async throws -> ServedModel {
        let served: ServedModel?
        do {
            served = try await model(version: version)
        } catch let error as SafeTensorsError {
            throw CheckpointStoreError(.integrity, "version \(version) is not readable safetensors: \(error)")
        }
        guard let served else { throw CheckpointStoreError(.notFound, "no checkpoint version \(version)") }
        return served
    }
}
