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
        guard task.kind == .fit, case .training(var progress, var tasks, var average, let deadline) = phase else {
            throw UpdateRejection(.late, "task \(taskID) is not an open fit task")
        }
        clients[client]?.lastSeen = now
        let norm: Double
        do throws(UpdateRejection) {
            try EvaluationReport.checkExampleCount(numExamples, max: configuration.maxExamplesPerResult)
            guard metrics.values.allSatisfy(\.isFinite) else {
                throw UpdateRejection(.nonFinite, "a training metric is NaN or infinite")
            }
            try EvaluationReport.checkMetricNames(metrics)
            try EvaluationReport.checkMagnitudes(metrics)
            norm = try configuration.validator.validate(weights, against: progress.base.weights)
        } catch {
            progress.rejected[error.reason, default: 0] += 1
            phase = .training(progress, tasks: tasks, average: average, deadline: deadline)
            throw error
        }
        average.fold(weights, numExamples: numExamples)
        progress.accepted += 1
        progress.examples = progress.examples.saturatingAdd(numExamples)
        progress.fitReports.append(EvaluationReport(loss: 0, numExamples: numExamples, metrics: metrics))
        tasks[taskID] = nil
        phase = .training(progress, tasks: tasks, average: average, deadline: deadline)
        return [.resultAccepted(taskID, client: client, kind: .fit, updateNorm: norm)]
            + finishTask(taskID, of: client, end: .answered, now: now)
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
