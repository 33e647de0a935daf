/// How a round closes: the store's outcomes for its candidate, the regression guard, commit or failure,
/// and the report.
extension RoundStateMachine {
    // MARK: Storage outcomes

    /// The server stored the aggregate as `candidate`; evaluation (or the commit) follows.
    public mutating func candidateStored(round: Int, candidate: GlobalModel, now: Instant) -> [Action] {
        guard case .aggregating(var progress) = phase, progress.round == round else { return [] }
        progress.candidate = candidate
        if let spend = progress.privacySpend { privacy?.record(spend) }  // unless `privacySpendStored` did
        let available = availableClients
        guard let count = configuration.selection.evaluateSampleSize(available: available.count) else {
            return commit(progress, now: now)
        }
        let chosen = SelectionPolicy.sample(count, from: available, using: &generator)
        let tasks = makeTasks(
            for: chosen, round: round, kind: .evaluate, model: candidate,
            deadline: now.advanced(by: configuration.evaluateTimeout), config: configuration.evaluateConfig)
        phase = .evaluating(
            progress, tasks: tasks, evaluation: FederatedEvaluation(weightCap: configuration.weightCap),
            deadline: now.advanced(by: configuration.evaluateTimeout))
        return announcePhase() + [.tasksAvailable(chosen)]
    }

    /// The server recorded the guard's rejection; the round ends and the model stays as it was.
    public mutating func rejectionRecorded(round: Int, now: Instant) -> [Action] {
        guard case .rejecting(let progress, let reason) = phase, progress.round == round else { return [] }
        // The guard working as intended is not a failure to back off from.
        failedRounds += 1
        return finish(progress, outcome: .failed(RoundFailure(.rejectedByGuard, reason)), resultVersion: nil, now: now)
    }

    /// The server could not store the aggregate; the round fails and the model stays as it was.
    public mutating func candidateStoreFailed(round: Int, message: String, now: Instant) -> [Action] {
        guard case .aggregating(let progress) = phase, progress.round == round else { return [] }
        return fail(progress, RoundFailure(.storeFailed, message), now: now)
    }

    /// The candidate is now the current model.
    public mutating func committed(round: Int, now: Instant) -> [Action] {
        guard case .committing(let progress) = phase, progress.round == round, let candidate = progress.candidate else {
            return []
        }
        model = candidate
        committedRounds += 1
        consecutiveFailures = 0
        if let regressionGuard = configuration.regressionGuard, let summary = progress.evaluation,
            let value = regressionGuard.value(in: summary), regressionGuard.improves(value, on: bestMetricValue)
        {
            bestMetricValue = value
        }
        return finish(progress, outcome: .committed, resultVersion: candidate.version, now: now)
    }

    /// The commit failed; the round fails and the model stays as it was.
    public mutating func commitFailed(round: Int, message: String, now: Instant) -> [Action] {
        guard case .committing(let progress) = phase, progress.round == round else { return [] }
        return fail(progress, RoundFailure(.commitFailed, message), now: now)
    }

    // MARK: Closing

    mutating func closePhaseIfDone(now: Instant) -> [Action] {
        switch phase {
        case .training(let progress, let tasks, _, _) where tasks.isEmpty:
            guard progress.accepted >= configuration.minFitResults else {
                return fail(
                    progress,
                    RoundFailure(
                        .quorumNotReached,
                        "\(progress.accepted) of \(progress.selected) selected clients answered; \(configuration.minFitResults) needed"
                    ),
                    now: now)
            }
        case .evaluating(var progress, let tasks, let evaluation, _) where tasks.isEmpty:
            if evaluation.clients >= configuration.minEvaluateResults {
                progress.evaluation = evaluation.summary()
            }
            return commit(progress, now: now)
        default:
            return []
        }
        // Aggregate only once the switch is over: its copy of the phase holds a reference to the sums until then,
        // and with two references taking the average could not free them as it goes.
        return aggregate(now: now)
    }

    /// Ends a training phase whose tasks are all done and that reached its quorum: takes the average out of
    /// the phase and asks for it to be stored as the candidate.
    private mutating func aggregate(now: Instant) -> [Action] {
        guard case .training(var progress, _, var average, _) = phase else {
            preconditionFailure("aggregating outside a training phase")
        }
        // Drop the phase's reference to the sums first, so taking the average releases them block by block.
        phase = .aggregating(progress)
        let sumNoise: Double
        let denominator = privateDenominator(progress)
        do {
            sumNoise = try privacySumNoise(cohort: denominator)
        } catch {
            return fail(progress, RoundFailure(.aggregationFailed, "\(error)"), now: now)
        }
        let aggregate: ModelWeights
        let outcome: AggregationOutcome?
        if privacy != nil {
            guard
                let noised = average.takePrivately(
                    denominator: denominator, sumNoise: sumNoise, using: &privacy!.noise)
            else { preconditionFailure("accepted updates, none folded") }
            // Noise can overflow a narrow dtype (F16 holds 65,504): such a model is never stored or released.
            guard noised.tensors.allSatisfy({ TensorElements.allFinite($0.tensor) }) else {
                return fail(
                    progress,
                    RoundFailure(
                        .aggregationFailed, "the noised average overflows its dtype; lower the noise or the clip norm"),
                    now: now)
            }
            (aggregate, outcome) = (noised, nil)
            progress.privacySpend = privacySpend(progress, cohort: denominator)
        } else {
            do {
                guard let taken = try average.take(configuration.strategy) else {
                    preconditionFailure("accepted updates, none folded")
                }
                (aggregate, outcome) = taken
            } catch {
                return fail(
                    progress, RoundFailure(.storeFailed, "reading a kept update back failed: \(error)"), now: now)
            }
        }
        phase = .aggregating(progress)
        // The strategy's server step (FedAvg and the robust aggregators keep their aggregate as it is).
        let next: ModelWeights
        let state: ServerOptimizerState?
        do {
            (next, state) = try ServerOptimizer.step(
                configuration.strategy, base: progress.base.weights, average: aggregate,
                state: progress.base.serverState)
        } catch {
            return fail(progress, RoundFailure(.aggregationFailed, "\(error)"), now: now)
        }
        let report: [Action] =
            outcome.map {
                [.robustlyAggregated(round: progress.round, strategy: configuration.strategy.name, outcome: $0)]
            } ?? []
        return announcePhase() + report + [
            .storeCandidate(
                round: progress.round, parentVersion: progress.base.version, weights: next, serverState: state,
                privacySpend: progress.privacySpend)
        ]
    }

    mutating func commit(_ progress: RoundProgress, now: Instant) -> [Action] {
        guard let candidate = progress.candidate else { preconditionFailure("commit without a candidate") }
        if let regressionGuard = configuration.regressionGuard, let summary = progress.evaluation,
            let value = regressionGuard.value(in: summary), let best = bestMetricValue,
            let reason = regressionGuard.verdict(value: value, best: best)
        {
            phase = .rejecting(progress, reason: reason)
            return announcePhase() + [
                .reject(
                    round: progress.round, version: candidate.version, evaluation: progress.evaluation,
                    fitMetrics: fitMetrics(progress), examples: progress.examples, clients: progress.accepted,
                    reason: reason)
            ]
        }
        phase = .committing(progress)
        return announcePhase() + [
            .commit(
                round: progress.round, version: candidate.version, evaluation: progress.evaluation,
                fitMetrics: fitMetrics(progress), examples: progress.examples, clients: progress.accepted)
        ]
    }

    /// The accepted results' training metrics, weighted like the average (so under the same weight cap).
    func fitMetrics(_ progress: RoundProgress) -> [String: Double] {
        var evaluation = FederatedEvaluation(weightCap: configuration.weightCap)
        for report in progress.fitReports { evaluation.add(report) }
        return evaluation.summary()?.metrics ?? [:]
    }

    mutating func fail(_ progress: RoundProgress, _ failure: RoundFailure, now: Instant) -> [Action] {
        failedRounds += 1
        consecutiveFailures += 1
        let delay = failureBackoff
        var actions: [Action] = []
        if delay > .zero {
            nextRoundNotBefore = now.advanced(by: delay)
            actions.append(
                .backingOff(until: now.advanced(by: delay), delay: delay, consecutiveFailures: consecutiveFailures))
        }
        return actions + finish(progress, outcome: .failed(failure), resultVersion: nil, now: now)
    }

    mutating func finish(
        _ progress: RoundProgress, outcome: Report.Outcome, resultVersion: Int?, now: Instant
    ) -> [Action] {
        phase = .idle
        let announced = announcePhase()
        let report = Report(
            round: progress.round, outcome: outcome, baseVersion: progress.base.version, resultVersion: resultVersion,
            selected: progress.selected, accepted: progress.accepted, rejected: progress.rejected,
            fitDropouts: progress.fitDropouts, evaluationDropouts: progress.evaluationDropouts,
            examples: progress.examples, fitMetrics: fitMetrics(progress), evaluation: progress.evaluation,
            startedAt: progress.startedAt, finishedAt: now)
        return announced + [.roundFinished(report)] + startRoundIfReady(now: now)
    }

    /// A `phaseChanged` action when the phase differs from the one last announced.
    mutating func announcePhase() -> [Action] {
        let current = phaseName
        guard current != announcedPhase else { return [] }
        defer { announcedPhase = current }
        return [.phaseChanged(from: announcedPhase, to: current, round: openRound)]
    }
}
