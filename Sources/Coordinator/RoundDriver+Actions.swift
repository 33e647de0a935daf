import FederationCore
import FederationTelemetry
import Foundation
import Logging
import ModelManager

/// Carrying out the round state machine's actions: telemetry for announcements, store writes for the round's
/// outcome (each fed back to the machine), long-polls woken for new tasks, reports published.
extension RoundDriver {
    /// Carries out the machine's actions in order, feeding back the outcome of each store write (which may bring
    /// more actions).
    ///
    /// Each batch is done in two passes: first everything that needs no store write (telemetry, logs, waking
    /// long-polls), in the machine's order and before any await, so another event handled while a write is
    /// awaited cannot reorder a batch's phase changes; then the store writes, in order.
    func perform(_ initial: [RoundAction<Instant>]) async {
        defer {
            models.keep(only: machine.liveModelVersions)
            observeBackoff()
            if !machine.isPersisting { persistWaiters.resumeAll() }
        }
        var batch = initial
        while !batch.isEmpty {
            let writes = batch.filter { announce($0) }
            batch = []
            for write in writes { batch += await carryOut(write) }
        }
    }

    /// The part of an action that needs no store write.
    /// - Returns: true when the action also needs `carryOut`.
    private func announce(_ action: RoundAction<Instant>) -> Bool {
        switch action {
        case .phaseChanged(let from, let to, let round):
            metrics.phaseChanged(to: to, from: from, after: phaseSince.duration(to: clock.now))
            tracing.phaseChanged(to: to, inRound: round)
            phaseSince = clock.now
            return false
        case .resultAccepted(let taskID, let client, let kind, let norm):
            tracing.taskAnswered(taskID, client: client)
            if let norm {
                metrics.updateNorm(norm)
                let clip = machine.privacy?.clipNorm ?? configuration.rounds.clipNorm
                if kind == .fit, let clip, norm > clip { metrics.updateClipped() }
            }
            metrics.resultAccepted(
                kind: kind, after: taskDeliveredAt.removeValue(forKey: taskID).map { $0.duration(to: clock.now) })
            return false
        case .roundStarted(let round, let baseVersion, let selected):
            tracing.roundStarted(
                round: round, baseVersion: baseVersion, selected: selected.count,
                strategy: configuration.rounds.strategy.description)
            logger.info(
                "round started",
                metadata: roundScoped([
                    "round": "\(round)", "base_version": "\(baseVersion)", "selected": "\(selected.count)",
                ]))
            roundStartedAt[round] = Date().timeIntervalSince1970
            metrics.roundStarted(round: round, selected: selected.count)
            return true
        case .tasksAvailable(let clients):
            wake(clients)
            return false
        case .selectionEnded(let outcome, let checkedIn, let selected, let waited):
            metrics.selectionEnded(outcome, checkedIn: checkedIn, after: waited)
            let metadata: Logger.Metadata = [
                "outcome": "\(outcome.rawValue)", "checked_in": "\(checkedIn)", "selected": "\(selected)",
                "waited_seconds": "\(waited.seconds)",
            ]
            if outcome == .timedOutBelowMinimum {
                logger.warning("selection timed out below the minimum; no round opened", metadata: metadata)
            } else {
                logger.info("selection window closed", metadata: metadata)
            }
            return false
        case .clientDropped(let client, let kind, let reason):
            metrics.dropout(kind: kind, reason: reason)
            tracing.taskDropped(client: client, reason: reason)
            logger.log(
                level: reason == .released ? .debug : .notice,
                reason == .released ? "over-selected client released at the round's goal" : "client dropped out",
                metadata: roundScoped([
                    "client_id": "\(client)", "task_kind": "\(kind.rawValue)", "reason": "\(reason.rawValue)",
                ]))
            return false
        case .reject(let round, let version, _, _, _, _, let reason):
            tracing.guardRejected(version: version, reason: reason)
            logger.warning(
                "regression guard rejected the round's model",
                metadata: ["round": "\(round)", "version": "\(version)", "reason": "\(reason)"])
            return true
        case .clientWentSilent(let client, let lastSeen):
            logLiveness("client went silent", .warning, client, since: lastSeen)
            evictSilent(client)
            return false
        case .clientReturned(let client, let silentSince):
            logLiveness("client connected again", .notice, client, since: silentSince)
            return false
        case .backingOff(_, let delay, let failures):
            metrics.roundBackedOff()
            logger.warning(
                failures == 1
                    ? "a round failed; waiting before the next one"
                    : "rounds keep failing; waiting before the next one",
                metadata: ["consecutive_failures": "\(failures)", "delay_seconds": "\(delay.seconds)"])
            return false
        case .roundFinished(let report):
            logFinished(report)
            metrics.roundFinished(report)
            tracing.roundFinished(report)
            taskDeliveredAt = taskDeliveredAt.filter { ($0.key.round ?? 0) > report.round }
            return true
        case .robustlyAggregated(let round, let strategy, let outcome):
            metrics.robustlyAggregated(strategy, excluded: outcome.excluded.count)
            let summary = RobustAggregationSummary(strategy: strategy, outcome: outcome)
            tracing.robustlyAggregated(summary, inRound: round)
            aggregationDetails[round] = summary.text
            logger.notice(
                "robust aggregation", metadata: roundScoped(["round": "\(round)", "outcome": "\(summary.text)"]))
            return !outcome.excluded.isEmpty || !outcome.trimmedShares.isEmpty
        case .privacyBudgetReached(let spent, let projected, let budget):
            announcePrivacyBudgetReached(spent: spent, projected: projected, budget: budget)
            return true
        case .storeCandidate, .commit:
            return true
        }
    }

    /// The store write of an action; returns what the machine says next.
    private func carryOut(_ action: RoundAction<Instant>) async -> [RoundAction<Instant>] {
        switch action {
        case .roundStarted(let round, let baseVersion, let selected):
            await persist("round start") {
                try await $0.roundStarted(round: round, baseVersion: baseVersion, selected: selected.count)
            }
            return []
        case .robustlyAggregated(let round, let strategy, let outcome):
            let summary = RobustAggregationSummary(strategy: strategy, outcome: outcome)
            await persist("robust aggregation event") {
                try await $0.recordEvent(
                    kind: .robustAggregation, actor: "coordinator", round: round, detail: summary.eventDetail,
                    traceID: tracing.traceID)
            }
            return []
        case .storeCandidate(let round, let parentVersion, let weights, let serverState, let privacySpend):
            return await storeCandidate(
                round: round, parentVersion: parentVersion, weights: weights, serverState: serverState,
                privacySpend: privacySpend)
        case .privacyBudgetReached(let spent, let projected, let budget):
            await recordPrivacyBudgetReached(spent: spent, projected: projected, budget: budget)
            return []
        case .reject(let round, let version, let evaluation, let fitMetrics, let examples, let clients, let reason):
            do {
                try await store.reject(
                    version: version, metrics: Self.metrics(evaluation, fitMetrics, examples, clients), reason: reason)
            } catch {
                metrics.checkpointWritten(success: false, duration: .zero, bytes: nil)
                storeFailing = true
                logger.error("recording the rejection failed", metadata: ["round": "\(round)", "error": "\(error)"])
            }
            return machine.rejectionRecorded(round: round, now: clock.now)
        case .commit(let round, let version, let evaluation, let fitMetrics, let examples, let clients):
            do {
                try await store.commit(
                    version: version, metrics: Self.metrics(evaluation, fitMetrics, examples, clients))
                metrics.modelVersion(version)
                storeFailing = false
                await applyRetention()
                return machine.committed(round: round, now: clock.now)
            } catch {
                metrics.checkpointWritten(success: false, duration: .zero, bytes: nil)
                storeFailing = true
                logger.error("commit failed", metadata: ["round": "\(round)", "error": "\(error)"])
                return machine.commitFailed(round: round, message: "\(error)", now: clock.now)
            }
        case .roundFinished(let report):
            var record = Self.record(report, startedAt: roundStartedAt.removeValue(forKey: report.round))
            if let aggregation = aggregationDetails.removeValue(forKey: report.round) {
                record.detail = [record.detail, aggregation].compactMap { $0 }.joined(separator: "; ")
            }
            await recordRound(record)
            // Subscribers hear of a round once its history row was written (or queued for a retry).
            subscribers = subscribers.filter {
                if case .terminated = $0.yield(report) { return false }
                return true
            }
            return []
        case .phaseChanged, .resultAccepted, .tasksAvailable, .selectionEnded, .clientDropped, .backingOff,
            .clientWentSilent,
            .clientReturned:
            return []
        }
    }

    /// `--keep-last`: after a commit, old versions beyond the newest N go (refs, tags and candidates stay).
    private func applyRetention() async {
        guard let keepLast = configuration.keepLast else { return }
        do {
            let deleted = try await store.prune(keepLast: keepLast, actor: "coordinator")
            if !deleted.isEmpty {
                logger.info(
                    "retention deleted old versions",
                    metadata: [
                        "keep_last": "\(keepLast)", "deleted": "\(deleted.map { "v\($0)" }.joined(separator: " "))",
                    ])
            }
        } catch {
            logger.error("retention failed", metadata: ["error": "\(error)"])
        }
    }

    /// Shows the wait failing rounds impose now (`rondo_round_backoff_seconds`) whenever it changed.
    private func observeBackoff() {
        let backoff = machine.failureBackoff
        guard backoff != shownBackoff else { return }
        metrics.roundBackoff(backoff)
        shownBackoff = backoff
    }

    private func storeCandidate(
        round: Int, parentVersion: Int, weights: ModelWeights, serverState: ServerOptimizerState?,
        privacySpend: PrivacySpend?
    ) async -> [RoundAction<Instant>] {
        let started = clock.now
        let file = SafeTensorsFile(
            weights: weights, metadata: ["round": String(round), "parent_version": String(parentVersion)])
        guard file.encodedByteCount <= ServedModel.maxByteCount else {
            let error = ServedModel.tooLarge(file.encodedByteCount)
            logger.error(
                "the aggregated model is too large to hold", metadata: ["round": "\(round)", "error": "\(error)"])
            return machine.candidateStoreFailed(round: round, message: "\(error)", now: clock.now)
        }
        do {
            let (version, sha) = try await store.storeCandidate(
                round: round, parentVersion: parentVersion, file: file,
                strategy: strategyRecord(privacySpend: privacySpend),
                serverState: serverState?.file, privacySpend: privacySpend)
            // The ledger row is committed: the spend counts now, even if holding the candidate fails below.
            machine.privacySpendStored(round: round)
            if let privacySpend { privacySpent(privacySpend) }
            metrics.checkpointWritten(
                success: true, duration: started.duration(to: clock.now), bytes: file.encodedByteCount)
            storeFailing = false
            // The engine reads the candidate from the served buffer; the averaged tensors go once this returns.
            let served = try ServedModel(version: version, sha256: sha, file: file)
            models.insert(served)
            return machine.candidateStored(
                round: round,
                candidate: GlobalModel(
                    version: version, sha256: sha, weights: served.weights, serverState: serverState),
                now: clock.now)
        } catch {
            metrics.checkpointWritten(success: false, duration: started.duration(to: clock.now), bytes: nil)
            storeFailing = true
            logger.error("storing the aggregated model failed", metadata: ["round": "\(round)", "error": "\(error)"])
            return machine.candidateStoreFailed(round: round, message: "\(error)", now: clock.now)
        }
    }

    /// A liveness change, naming the client so the QuorumAtRisk runbook can name the missing sites.
    private func logLiveness(_ message: Logger.Message, _ level: Logger.Level, _ client: ClientID, since: Instant) {
        logger.log(
            level: level, message,
            metadata: [
                "client_id": "\(client)", "client_name": "\(ClientText.forLog(registry.name(of: client) ?? "?"))",
                "silent_seconds": "\(Int(since.duration(to: clock.now).seconds))",
            ])
    }

    /// Hands waiting tasks to parked long-polls.
    private func wake(_ clients: [ClientID]) {
        for client in clients { polls.wake(client) { deliver(to: client) } }
    }

    /// Adds the round's `trace_id` and `span_id` to a round-scoped log line.
    func roundScoped(_ metadata: Logger.Metadata) -> Logger.Metadata {
        metadata.merging(tracing.logMetadata) { own, _ in own }
    }

    private func logFinished(_ report: Report) {
        var metadata: Logger.Metadata = [
            "round": "\(report.round)", "selected": "\(report.selected)", "accepted": "\(report.accepted)",
            "dropouts": "\(report.fitDropoutCount)", "duration_seconds": "\(report.duration.seconds)",
        ]
        if let evaluation = report.evaluation {
            metadata["eval_loss"] = "\(evaluation.loss)"
            for (name, value) in evaluation.metrics { metadata["eval_\(name)"] = "\(value)" }
        }
        // The message names the outcome as `rondo rounds`, `/v1/rounds` and `rondo_rounds_total` do.
        let status = RoundStatus(finishing: report.outcome)
        metadata["outcome"] = "\(status.rawValue)"
        switch report.outcome {
        case .committed:
            metadata["version"] = "\(report.resultVersion ?? 0)"
            logger.info("round committed", metadata: roundScoped(metadata))
        case .failed(let failure):
            metadata["reason"] = "\(failure.code.rawValue)"
            metadata["detail"] = "\(failure.message)"
            logger.warning("round \(status.rawValue)", metadata: roundScoped(metadata))
        }
    }
}
