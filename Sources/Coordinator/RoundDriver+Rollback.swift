import FederationCore
import Logging
import ModelManager

/// Operator rollbacks, through the API or followed from the database.
extension RoundDriver {
    /// Rolls the federation back to `version` (an operator's request): the store moves `current` and writes the
    /// audit event, then the next round trains from that version; a round in flight is aborted.
    /// - Throws: `CheckpointStoreError` (unknown, corrupt or incomplete version), or `RollbackBusyError` while a
    ///   round's outcome is being stored.
    public func rollback(to version: Int, reason: String, actor: String, traceID: String? = nil) async throws -> (
        from: Int, to: Int
    ) {
        guard !machine.isPersisting, !rollbackInProgress else { throw RollbackBusyError() }
        rollbackInProgress = true
        defer { rollbackInProgress = false }
        let replacement = try await loadModel(version)
        guard !machine.isPersisting else { throw RollbackBusyError() }
        let previous = machine.model.version
        try await store.rollback(to: version, reason: reason, actor: actor, traceID: traceID)
        // The re-hash inside the store's transaction takes a while; meanwhile the open round may have closed
        // and be storing its outcome. Let that finish, and if it committed (moving `current` on), roll back
        // again, so the store and the round engine agree on the model.
        while machine.isPersisting { try? await _Concurrency.Task.sleep(for: .milliseconds(5)) }
        if try await store.refVersion("current") != version {
            try await store.rollback(to: version, reason: reason, actor: actor, traceID: traceID)
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
                with: replacement, reason: "rolled back to version \(version) during the round", now: clock.now))
        return (previous, version)
    }

    /// Follows a rollback made directly on the database (`rondo checkpoints rollback` while serving).
    func adoptExternalRollback() async {
        guard !machine.isPersisting, !rollbackInProgress else { return }
        do {
            guard let current = try await store.refVersion("current"), current != machine.model.version,
                !machine.isPersisting
            else { return }
            let replacement = try await loadModel(current)
            guard !machine.isPersisting, !rollbackInProgress, machine.model.version != current else { return }
            logger.warning(
                "current ref moved outside the coordinator; following it", metadata: ["to_version": "\(current)"])
            metrics.rolledBack()
            metrics.modelVersion(current)
            await perform(
                machine.replaceModel(
                    with: replacement, reason: "rolled back to version \(current) during the round", now: clock.now))
        } catch {
            logger.error("cannot follow the moved current ref", metadata: ["error": "\(error)"])
        }
    }

    private func loadModel(_ version: Int) async throws -> GlobalModel {
        guard let record = try await store.checkpoint(version: version) else {
            throw CheckpointStoreError(.notFound, "no checkpoint version \(version)")
        }
        let bytes = try await store.bytes(version: version)
        do {
            return GlobalModel(
                version: version, sha256: record.sha256, weights: try SafeTensorsFile.decode(bytes).weights)
        } catch {
            throw CheckpointStoreError(.integrity, "version \(version) is not readable safetensors: \(error)")
        }
    }
}

/// A rollback arrived while a round's outcome was being stored; retrying a moment later succeeds.
public struct RollbackBusyError: Error, Sendable {}
