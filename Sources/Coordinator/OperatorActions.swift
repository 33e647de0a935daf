import FederationCore
import Logging

/// An operator action; the raw value is the `action` label of `rondo_admin_actions_total`.
public enum OperatorAction: String, Sendable, CaseIterable {
    case rollback, tag, pause, resume
    case abortRound = "abort_round"
    case revokeClient = "revoke_client"
}

/// Every operator action, in one place: each is carried out by the `RoundDriver` (the data directory's one
/// writer), leaves an audit event naming its actor, and is counted. The admin API calls this; the CLI reaches
/// it through the admin API while a coordinator runs.
public struct OperatorActions: Sendable {
    let driver: RoundDriver
    let metrics: CoordinatorMetrics

    /// Makes an earlier version current; a round in flight is aborted (see `RoundDriver.rollback`).
    /// - Parameter force: needed for a version the guard rejected or whose round was aborted; recorded.
    /// - Throws: `CheckpointStoreError` for an unknown, corrupt or incomplete version (`forceRequired` for a
    ///   rejected or aborted one without `force`); `LimitError` (counted) when too many rollbacks wait.
    public func rollback(
        to version: Int, reason: String, actor: String, traceID: String?, force: Bool = false
    ) async throws -> (from: Int, to: Int) {
        do {
            let moved = try await driver.rollback(
                to: version, reason: reason, actor: actor, traceID: traceID, force: force)
            metrics.adminAction(.rollback)
            return moved
        } catch let error as LimitError {
            metrics.limitRefused(error.limit)
            throw error
        }
    }

    /// Points a tag at a version.
    /// - Throws: `CheckpointStoreError` (`.notFound`, `.invalidTag`).
    public func tag(version: Int, name: String, actor: String) async throws {
        try await driver.tag(version: version, name: name, actor: actor)
        metrics.adminAction(.tag)
    }

    /// Pauses or resumes the federation.
    /// - Throws: `OperatorActionError.draining` for a resume while draining.
    public func setPaused(_ paused: Bool, actor: String, traceID: String?) async throws {
        try await driver.setPaused(paused, actor: actor, traceID: traceID)
        metrics.adminAction(paused ? .pause : .resume)
    }

    /// Aborts the open round.
    /// - Throws: `OperatorActionError.noOpenRound`.
    public func abortRound(reason: String, actor: String, traceID: String?) async throws -> Int {
        let round = try await driver.abortRound(reason: reason, actor: actor, traceID: traceID)
        metrics.adminAction(.abortRound)
        return round
    }

    /// Revokes a client's token for good.
    /// - Throws: `OperatorActionError.unknownClient`, or the store's error.
    public func revoke(_ client: ClientID, reason: String, actor: String, traceID: String?) async throws {
        try await driver.revoke(client, reason: reason, actor: actor, traceID: traceID)
        metrics.adminAction(.revokeClient)
    }
}
