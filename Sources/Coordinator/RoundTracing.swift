import FederationCore
import FederationTelemetry
import Logging
import Tracing

/// The spans of the round in progress: a root span per round, a child per phase, a child of the phase per
/// client task. Owned by `RoundDriver` (actor-isolated state, so a plain struct).
///
/// A round is one trace; each task's span context is what its `traceparent` carries to the client, so the
/// client's download/train/upload spans land under it.
struct RoundTracing {
    let tracer: RondoTracer
    private var round: (number: Int, span: RondoSpan)?
    private var phase: (name: RoundPhase, span: RondoSpan)?
    private var tasks: [ClientID: (id: TaskID, span: RondoSpan)] = [:]

    init(tracer: RondoTracer) {
        self.tracer = tracer
    }

    /// `trace_id` and `span_id` of the innermost open span of the round, for round-scoped log lines.
    var logMetadata: Logger.Metadata {
        guard let span = phase?.span ?? round?.span else { return [:] }
        return ["trace_id": "\(span.trace.traceIDHex)", "span_id": "\(span.trace.spanIDHex)"]
    }

    mutating func roundStarted(round number: Int, baseVersion: Int, selected: Int, strategy: String) {
        let span = tracer.startSpan("rondo.round", context: .topLevel, ofKind: .server)
        span.attributes["rondo.round"] = number
        span.attributes["rondo.base_version"] = baseVersion
        span.attributes["rondo.selected"] = selected
        span.attributes["rondo.strategy"] = strategy
        round = (number, span)
    }

    /// The round's trace id (hex), for audit events written during it.
    var traceID: String? { round?.span.trace.traceIDHex }

    /// Notes on the round's span what a robust aggregator did (client ids go to spans, never to metric labels).
    func robustlyAggregated(_ summary: RobustAggregationSummary, inRound number: Int) {
        guard let round, round.number == number else { return }
        round.span.attributes["rondo.aggregation.excluded"] = summary.outcome.excluded.map(\.rawValue)
            .joined(separator: ",")
        let trimmed = summary.mostTrimmed
        if !trimmed.isEmpty {
            round.span.attributes["rondo.aggregation.most_trimmed"] = trimmed.map(\.client.rawValue)
                .joined(separator: ",")
        }
    }

    /// What a differentially private round spent, on its span: the clip norm and ε after it.
    func privacySpent(_ spend: PrivacySpend, epsilon: Double) {
        guard let round, round.number == spend.round else { return }
        round.span.attributes["rondo.privacy.clip_norm"] = spend.clipNorm
        round.span.attributes["rondo.privacy.epsilon"] = epsilon
    }

    /// Ends the previous phase span and opens one for `phase` (none while selecting or finished).
    ///
    /// Only applies to the round being traced: when one action both finishes a round and starts the next,
    /// the machine is already in the new round's phase before the old round's report is handled.
    mutating func phaseChanged(to phase: RoundPhase, inRound number: Int?) {
        guard let round, round.number == number, self.phase?.name != phase else { return }
        self.phase?.span.end()
        self.phase = nil
        let name: String
        switch phase {
        case .training: name = "round.fit"
        case .aggregating: name = "round.aggregate"
        case .evaluating: name = "round.evaluate"
        case .committing: name = "checkpoint.commit"
        case .selecting, .finished: return
        }
        let span = tracer.startSpan(name, context: round.span.context)
        span.attributes["rondo.round"] = round.number
        self.phase = (phase, span)
    }

    /// The span of a task handed to a client, created on first delivery; its context goes out as `traceparent`.
    mutating func taskDelivered(_ task: RoundTask<ContinuousClock.Instant>) -> TraceContext? {
        if let existing = tasks[task.client], existing.id == task.id { return existing.span.trace }
        guard let parent = phase?.span ?? round?.span else { return nil }
        let span = tracer.startSpan("client.task", context: parent.context, ofKind: .client)
        span.attributes["rondo.round"] = task.round
        span.attributes["rondo.task.kind"] = task.kind.rawValue
        span.attributes["rondo.task.id"] = task.id.rawValue
        span.attributes["rondo.client.id"] = task.client.rawValue
        span.attributes["rondo.model_version"] = task.modelVersion
        tasks[task.client] = (task.id, span)
        return span.trace
    }

    mutating func taskAnswered(_ taskID: TaskID, client: ClientID) {
        guard let task = tasks[client], task.id == taskID else { return }
        task.span.setStatus(SpanStatus(code: .ok))
        task.span.end()
        tasks[client] = nil
    }

    mutating func taskDropped(client: ClientID, reason: DropoutReason) {
        guard let task = tasks.removeValue(forKey: client) else { return }
        task.span.attributes["rondo.dropout.reason"] = reason.rawValue
        // A release at the round's goal is goal-count selection working, not a failure.
        if reason != .released {
            task.span.setStatus(SpanStatus(code: .error, message: "dropout: \(reason.rawValue)"))
        }
        task.span.end()
    }

    func resultRefused(client: ClientID, reason: String) {
        tasks[client]?.span.addEvent(SpanEvent(name: "result_rejected", attributes: ["rondo.reason": .string(reason)]))
    }

    func guardRejected(version: Int, reason: String) {
        round?.span.addEvent(
            SpanEvent(
                name: "guard_rejected",
                attributes: ["rondo.version": .int64(Int64(version)), "rondo.reason": .string(reason)]))
    }

    mutating func roundFinished(_ report: RoundReport<ContinuousClock.Instant>) {
        for (_, task) in tasks { task.span.end() }
        tasks = [:]
        phase?.span.end()
        phase = nil
        guard let round, round.number == report.round else { return }
        round.span.attributes["rondo.accepted"] = report.accepted
        round.span.attributes["rondo.dropouts"] = report.fitDropoutCount
        round.span.attributes["rondo.rejected"] = report.rejected.values.reduce(0, +)
        switch report.outcome {
        case .committed:
            round.span.attributes["rondo.outcome"] = "committed"
            if let version = report.resultVersion { round.span.attributes["rondo.result_version"] = version }
            round.span.setStatus(SpanStatus(code: .ok))
        case .failed(let failure):
            round.span.attributes["rondo.outcome"] = failure.code.rawValue
            round.span.setStatus(SpanStatus(code: .error, message: failure.message))
        }
        round.span.end()
        self.round = nil
    }

    /// A rollback is its own short trace with who, why, from and to.
    func rolledBack(from: Int, to: Int, actor: String, reason: String) {
        let span = tracer.startSpan("rollback", context: .topLevel)
        span.attributes["rondo.from_version"] = from
        span.attributes["rondo.to_version"] = to
        span.attributes["rondo.actor"] = actor
        span.attributes["rondo.reason"] = reason
        span.end()
    }
}
