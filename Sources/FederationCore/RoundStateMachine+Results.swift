/// Results from clients: checked, validated, folded into the round.
extension RoundStateMachine {
    // MARK: Results

    /// Accepts a fit result: validates it against the round's base model and folds it into the average.
    /// - Throws: `UpdateRejection`. A refused result changes nothing but the round's `rejected` count: the task
    ///   stays open, so the client may still send a valid result before the deadline.
    public mutating func fitResult(
        _ taskID: TaskID, client: ClientID, weights: ModelWeights, numExamples: Int,
        metrics: [String: Double], now: Instant
    ) throws(UpdateRejection) -> [Action] {
        let task = try checkTask(taskID, of: client)
        guard task.kind == .fit, case .training(let progress, _, _, _) = phase else {
            throw UpdateRejection(.late, "task \(taskID) is not an open fit task")
        }
        let checked: CheckedUpdate
        do throws(UpdateRejection) {
            checked = try configuration.validator.check(
                FitResult(weights: weights, numExamples: numExamples, metrics: metrics), against: progress.base)
        } catch {
            fitRejected(taskID, client: client, error, now: now)
            throw error
        }
        return try fitResult(taskID, client: client, update: checked, now: now)
    }

    /// Accepts a fit result already checked against the round's base model (an upload checked while it
    /// streamed in) and folds it into the average.
    /// - Throws: `UpdateRejection`, as the other `fitResult`; `late` also when the update was checked against
    ///   another model than the round's base.
    public mutating func fitResult(_ taskID: TaskID, client: ClientID, update: CheckedUpdate, now: Instant)
        throws(UpdateRejection) -> [Action]
    {
        let task = try checkTask(taskID, of: client)
        guard task.kind == .fit, case .training(var progress, var tasks, var average, let deadline) = phase else {
            throw UpdateRejection(.late, "task \(taskID) is not an open fit task")
        }
        guard update.baseVersion == progress.base.version else {
            throw UpdateRejection(
                .late,
                "the update was checked against version \(update.baseVersion), the round trains from \(progress.base.version)"
            )
        }
        clients[client]?.lastSeen = now
        do throws(UpdateRejection) {
            try EvaluationReport.checkExampleCount(update.numExamples, max: configuration.maxExamplesPerResult)
            guard update.metrics.values.allSatisfy(\.isFinite) else {
                throw UpdateRejection(.nonFinite, "a training metric is NaN or infinite")
            }
            try EvaluationReport.checkMetricNames(update.metrics)
            try EvaluationReport.checkMagnitudes(update.metrics)
        } catch {
            progress.rejected[error.reason, default: 0] += 1
            phase = .training(progress, tasks: tasks, average: average, deadline: deadline)
            throw error
        }
        // Leave no second reference to the sums while folding, so they are updated in place, not copied.
        phase = .idle
        do {
            let clipNorm = privacy?.clipNorm ?? configuration.clipNorm
            try average.fold(update, client: client, clipNorm: clipNorm, uniform: privacy != nil)
            if let clipNorm = privacy?.clipNorm, update.norm <= clipNorm { progress.unclipped += 1 }
        } catch {
            // Part of the update may be in the sums: the average is unusable, so the round fails.
            return fail(
                progress, RoundFailure(.storeFailed, "reading a checked update back failed: \(error)"), now: now)
        }
        progress.accepted += 1
        progress.examples = progress.examples.saturatingAdd(update.numExamples)
        progress.fitReports.append(EvaluationReport(loss: 0, numExamples: update.numExamples, metrics: update.metrics))
        tasks[taskID] = nil
        // `consume`: no local copy of the sums may outlive this line, or closing the round (in `finishTask`)
        // could not release them tensor by tensor while it writes the average.
        phase = .training(progress, tasks: consume tasks, average: consume average, deadline: deadline)
        return [.resultAccepted(taskID, client: client, kind: .fit, updateNorm: update.norm)]
            + finishTask(taskID, of: client, end: .answered, now: now) + releaseOverSelected(now: now)
    }

    /// Once a round with a selection goal has accepted `goal` results, ends the tasks still open as `released`
    /// (the last one closes the training phase): over-selected stragglers do not hold the round up.
    mutating func releaseOverSelected(now: Instant) -> [Action] {
        guard case .training(let progress, let tasks, _, _) = phase, let goal = configuration.selection.goal?.count,
            progress.accepted >= goal, !tasks.isEmpty
        else { return [] }
        let open = tasks.keys.sorted(by: { $0.rawValue < $1.rawValue })
        return open.flatMap { endTask($0, dropout: .released, now: now) }
    }

    /// Counts a fit result refused before it reached the round (while it streamed in) in the round's
    /// `rejected` tally, as a refusal by `fitResult` is. Does nothing when the task is not open.
    public mutating func fitRejected(_ taskID: TaskID, client: ClientID, _ rejection: UpdateRejection, now: Instant) {
        guard (try? checkTask(taskID, of: client)) != nil,
            case .training(var progress, let tasks, let average, let deadline) = phase
        else { return }
        clients[client]?.lastSeen = now
        progress.rejected[rejection.reason, default: 0] += 1
        phase = .training(progress, tasks: tasks, average: average, deadline: deadline)
    }

    /// Accepts an evaluation report for the round's candidate model.
    /// - Throws: `UpdateRejection` when the task is not an open evaluate task of this client or the numbers are invalid.
    public mutating func evaluationResult(
        _ taskID: TaskID, client: ClientID, report: EvaluationReport, now: Instant
    ) throws(UpdateRejection) -> [Action] {
        let task = try checkTask(taskID, of: client)
        guard task.kind == .evaluate, case .evaluating(var progress, var tasks, var evaluation, let deadline) = phase
        else {
            throw UpdateRejection(.late, "task \(taskID) is not an open evaluate task")
        }
        clients[client]?.lastSeen = now
        do throws(UpdateRejection) {
            try report.validate(maxExamples: configuration.maxExamplesPerResult)
            try configuration.regressionGuard?.check(report)
        } catch {
            progress.rejected[error.reason, default: 0] += 1
            phase = .evaluating(progress, tasks: tasks, evaluation: evaluation, deadline: deadline)
            throw error
        }
        phase = .idle  // no second reference: the task is removed in place, not from a copy of every task
        evaluation.add(report)
        tasks[taskID] = nil
        phase = .evaluating(progress, tasks: tasks, evaluation: evaluation, deadline: deadline)
        return [.resultAccepted(taskID, client: client, kind: .evaluate, updateNorm: nil)]
            + finishTask(taskID, of: client, end: .answered, now: now)
    }

    /// The open task `taskID`, checked to belong to `client`.
    /// - Throws: `UpdateRejection` — `unknownTask`, `notYourTask`, `duplicate` or `late` — when no result for
    ///   it can be accepted from this client now.
    public func checkTask(_ taskID: TaskID, of client: ClientID) throws(UpdateRejection) -> Task {
        let open: OpenTask?
        switch phase {
        case .training(_, let tasks, _, _): open = tasks[taskID]
        case .evaluating(_, let tasks, _, _): open = tasks[taskID]
        default: open = nil
        }
        if let open {
            guard open.task.client == client else {
                throw UpdateRejection(.notYourTask, "task \(taskID) was given to another client")
            }
            return open.task
        }
        switch endedTasks[taskID] {
        case .answered?: throw UpdateRejection(.duplicate, "task \(taskID) was already answered")
        case .dropped(let reason)?:
            throw UpdateRejection(.late, "task \(taskID) already ended as a \(reason.rawValue) dropout")
        case nil:
            if let round = taskID.round, round >= 1, round <= currentRound {
                throw UpdateRejection(.late, "round \(round) no longer accepts results for task \(taskID)")
            }
            throw UpdateRejection(.unknownTask, "no task \(taskID)")
        }
    }
}
