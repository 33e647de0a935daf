import FederationCore
import HTTPTypes
import Logging
import ModelManager
import NIOCore

/// An operator action that cannot be carried out.
public struct OperatorActionError: Error, Sendable, CustomStringConvertible {
    /// Why, as a stable value.
    public enum Code: String, Sendable {
        /// No round is in training or evaluation.
        case noOpenRound = "no_open_round"
        /// No such client was ever registered.
        case unknownClient = "unknown_client"
        /// The coordinator is draining for shutdown: the federation stays paused.
        case draining
        /// Rounds kept committing while a rollback was being written; pause the federation and retry.
        case roundsKeepCommitting = "rounds_keep_committing"
    }

    public var code: Code
    public var message: String
    public var description: String { "\(code.rawValue): \(message)" }
}

/// Operator controls: pause and resume, abort the open round, revoke a client, and draining on shutdown.
extension RoundDriver {
    /// Pauses (no new round starts; the open one finishes) or resumes the federation, with an audit event.
    /// - Throws: `OperatorActionError.draining` for a resume while draining (the federation stays paused).
    public func setPaused(_ paused: Bool, actor: String, traceID: String?) async throws(OperatorActionError) {
        if !paused, drainDeadline != nil {
            throw OperatorActionError(
                code: .draining, message: "the coordinator is draining for shutdown; the federation stays paused")
        }
        guard paused != machine.isPaused else { return }
        await persist("pause audit event") {
            try await $0.recordEvent(
                kind: paused ? .federationPaused : .federationResumed, actor: actor, round: machine.openRound,
                traceID: traceID)
        }
        logger.warning(paused ? "federation paused" : "federation resumed", metadata: ["actor": "\(actor)"])
        await perform(machine.setPaused(paused, now: clock.now))
        metrics.federationState(paused: machine.isPaused, draining: drainDeadline != nil)
    }

    /// Aborts the round in training or evaluation: nothing it computed is kept, the round is recorded as
    /// aborted with `reason`, and the next one (unless paused) starts from the current model.
    ///
    /// While the round's outcome is being stored, waits for that to finish first (the round is then usually
    /// over, and there is nothing left to abort).
    /// - Returns: the aborted round's number.
    /// - Throws: `OperatorActionError.noOpenRound`.
    @discardableResult
    public func abortRound(reason: String, actor: String, traceID: String?) async throws(OperatorActionError) -> Int {
        // Only the round that was open when the operator asked: if it closes meanwhile (its outcome was being
        // stored), the next round is not the one they meant.
        let target = machine.openRound
        await untilNotPersisting()
        guard let round = machine.openRound, round == target, !machine.isPersisting,
            let actions = machine.abortRound(reason: reason, now: clock.now)
        else {
            if let target, machine.openRound != target {
                throw OperatorActionError(
                    code: .noOpenRound, message: "round \(target) ended before it could be aborted; nothing was aborted"
                )
            }
            throw OperatorActionError(code: .noOpenRound, message: "no round is open")
        }
        await persist("abort audit event") {
            try await $0.recordEvent(
                kind: .roundAborted, actor: actor, round: round, detail: ["reason": reason], traceID: traceID)
        }
        logger.warning("round aborted", metadata: ["round": "\(round)", "actor": "\(actor)", "reason": "\(reason)"])
        await perform(actions)
        return round
    }

    /// Revokes a client at once: its token is refused (403) from this moment, its parked polls return, and
    /// an open task counts as a dropout. The revocation is stored, so it survives restarts.
    /// - Throws: `OperatorActionError.unknownClient`, or the store's error.
    public func revoke(_ client: ClientID, reason: String, actor: String, traceID: String?) async throws {
        let revocation = try await store.revokeClient(
            id: client.rawValue, reason: reason, actor: actor, traceID: traceID)
        switch revocation {
        case .unknownClient: throw OperatorActionError(code: .unknownClient, message: "no client \(client)")
        case .revoked(wasEnrolled: true): enrolledClients -= 1
        case .revoked(wasEnrolled: false), .alreadyRevoked: break
        }
        registry.revoke(client)
        logger.warning("client revoked", metadata: ["client_id": "\(client)", "actor": "\(actor)"])
        await forget(client)
    }

    /// Points a tag at a version (audited by the store).
    /// - Throws: `CheckpointStoreError` (`.notFound`, `.invalidTag`).
    public func tag(version: Int, name: String, actor: String) async throws {
        try await store.tag(version: version, name: name, actor: actor)
        logger.notice("tagged", metadata: ["version": "\(version)", "tag": "\(name)", "actor": "\(actor)"])
    }

    /// One step of draining after graceful shutdown was requested.
    /// - Returns: true when the driver may stop: no round is open, or the drain timeout aborted it.
    func drainStep() async -> Bool {
        guard drainRequested.load(ordering: .relaxed) else { return false }
        let now = clock.now
        if drainDeadline == nil {
            let timeout =
                configuration.effectiveDrainTimeout
            drainDeadline = now.advanced(by: timeout)
            logger.notice(
                "draining: finishing the open round before stopping",
                metadata: [
                    "round": "\(machine.openRound.map(String.init) ?? "none")", "timeout_seconds": "\(timeout.seconds)",
                ])
            await perform(machine.setPaused(true, now: now))
            metrics.federationState(paused: true, draining: true)
        }
        guard let round = machine.openRound else { return true }
        guard let deadline = drainDeadline, deadline <= now, !machine.isPersisting else { return false }
        if let actions = machine.abortRound(reason: "coordinator shutting down (drain timeout)", now: now) {
            logger.warning("drain timeout: aborting the open round", metadata: ["round": "\(round)"])
            await perform(actions)
        }
        return machine.openRound == nil
    }
}

/// Why the coordinator is not ready for work (`/readyz` 503).
public enum NotReadyReason: Error, Sendable {
    /// SIGTERM arrived: draining or stopped.
    case shuttingDown
    /// The last store write failed (disk full, I/O error); rounds fail and back off until the store works.
    case storeFailing

    var status: HTTPResponse.Status { .serviceUnavailable }

    var code: APIError.Code {
        switch self {
        case .shuttingDown: .notReady
        case .storeFailing: .storeFailing
        }
    }

    var message: String {
        switch self {
        case .shuttingDown: "the coordinator is shutting down"
        case .storeFailing: "the checkpoint store is failing writes; rounds are failing and backing off"
        }
    }
}

/// A task handed to a client by `RoundDriver.nextTask`.
public struct TaskDelivery: Sendable {
    public var task: RoundDriver.Task
    /// The W3C `traceparent` of the task's span, for the client to continue the round's trace.
    public var traceparent: String?
    /// Time left until the task's deadline.
    public var deadlineIn: Duration
}

/// What a client's poll gets: a task, or when to come back.
public enum PollAnswer: Sendable {
    case task(TaskDelivery)
    /// No task within the wait; `retryAfterSeconds` is pace steering's hint (nil when it is off).
    case noTask(retryAfterSeconds: Int?)
}

/// What a client's model download gets (see `RoundDriver.download`).
public enum ModelDownload: Sendable {
    /// The model's safetensors bytes: the cache's shared buffer, not a copy.
    case model(ServedModel)
    /// The version exists but is neither current nor the model of this client's open task.
    case forbidden(Int)
    case unknown(Int)
}
