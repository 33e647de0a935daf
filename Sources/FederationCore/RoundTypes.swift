/// A model the federation can hand out: its version number, the SHA-256 of its safetensors bytes, and weights.
public struct GlobalModel: Sendable, Equatable {
    /// Monotonically increasing version; the initial model is version 1.
    public var version: Int
    /// Lower-case hex SHA-256 of the encoded safetensors bytes (the download ETag).
    public var sha256: String
    public var weights: ModelWeights
    /// The server optimizer's state after the step that produced this version (nil for FedAvg, and for
    /// versions made otherwise: imported, or by a strategy without state).
    public var serverState: ServerOptimizerState?

    public init(version: Int, sha256: String, weights: ModelWeights, serverState: ServerOptimizerState? = nil) {
        self.version = version
        self.sha256 = sha256
        self.weights = weights
        self.serverState = serverState
    }
}

/// One task as handed to one client.
public struct RoundTask<Instant: InstantProtocol & Sendable>: Sendable, Equatable where Instant.Duration == Duration {
    public var id: TaskID
    public var round: Int
    public var kind: TaskKind
    public var client: ClientID
    /// The model version the client must download and start from.
    public var modelVersion: Int
    public var modelSHA256: String
    /// After this instant the task counts as a timeout dropout.
    public var deadline: Instant
    /// Hyper-parameters for the client (`local_epochs`, `learning_rate`, …), as strings like Flower's config.
    public var config: [String: String]
}

/// Why a selected client produced no result.
public enum DropoutReason: String, Sendable, CaseIterable, Hashable {
    /// The deadline passed, or the client fell silent (no heartbeat or poll within the liveness timeout).
    case timeout
    /// The client left (`DELETE /v1/clients/{id}`).
    case disconnect
    /// The client reported that its task failed.
    case error
    /// The round reached its goal count before this over-selected client answered (see `SelectionGoal`): it
    /// was released, not lost.
    case released
}

/// The externally visible phase of the federation, for status and metrics.
public enum RoundPhase: String, Sendable, CaseIterable, Codable {
    /// Waiting for enough connected clients to start a round.
    case selecting
    case training
    /// Aggregated; the candidate model is being stored.
    case aggregating
    case evaluating
    case committing
    /// `maxRounds` rounds have run; nothing more will start.
    case finished
}

/// Why a round failed: a stable code (a bounded metric label) and a human message.
public struct RoundFailure: Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        case quorumNotReached = "quorum_not_reached"
        case storeFailed = "store_failed"
        case commitFailed = "commit_failed"
        /// The regression guard refused the aggregated model.
        case rejectedByGuard = "guard_rejected"
        /// The round was cut short (a rollback during the round, an operator's abort).
        case aborted
        /// The strategy's server step produced a value that is not finite (an overflow in the model's dtype, or
        /// parameters that blow the step up); the model stays as it was.
        case aggregationFailed = "aggregation_failed"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// What happened in one round, emitted when it ends.
public struct RoundReport<Instant: InstantProtocol & Sendable>: Sendable where Instant.Duration == Duration {
    public enum Outcome: Sendable, Equatable {
        case committed
        case failed(RoundFailure)
    }

    public var round: Int
    public var outcome: Outcome
    public var baseVersion: Int
    /// The committed version, when the round committed.
    public var resultVersion: Int?
    public var selected: Int
    /// Fit results accepted into the aggregate.
    public var accepted: Int
    /// Fit or evaluation results refused while the round was open, by reason.
    public var rejected: [UpdateRejection.Reason: Int]
    /// Selected clients that gave no fit result, by reason.
    public var fitDropouts: [DropoutReason: Int]
    /// Evaluation clients that gave no report, by reason.
    public var evaluationDropouts: [DropoutReason: Int]
    /// Examples behind the aggregate.
    public var examples: Int
    /// Training metrics reported by clients, averaged weighted by examples.
    public var fitMetrics: [String: Double]
    public var evaluation: EvaluationSummary?
    public var startedAt: Instant
    public var finishedAt: Instant

    public var duration: Duration { startedAt.duration(to: finishedAt) }
    /// Selected clients that gave no fit result (evaluation dropouts are not counted here).
    public var fitDropoutCount: Int { fitDropouts.values.reduce(0, +) }
}

/// An instruction from the round state machine to the server that drives it.
public enum RoundAction<Instant: InstantProtocol & Sendable>: Sendable where Instant.Duration == Duration {
    /// A round began with these clients selected.
    case roundStarted(round: Int, baseVersion: Int, selected: [ClientID])
    /// A goal-count selection window ended (`selected` is 0 when it timed out below the minimum), `waited`
    /// after it opened with `checkedIn` clients connected.
    case selectionEnded(outcome: SelectionOutcome, checkedIn: Int, selected: Int, waited: Duration)
    /// These clients have a task waiting: wake their long-polls.
    case tasksAvailable([ClientID])
    /// A client produced no result for its task.
    case clientDropped(ClientID, kind: TaskKind, reason: DropoutReason)
    /// Store the aggregated weights as a new (uncommitted) version, then call `candidateStored` or
    /// `candidateStoreFailed`. Under differential privacy, `privacySpend` goes into the privacy ledger in the
    /// same transaction.
    case storeCandidate(
        round: Int, parentVersion: Int, weights: ModelWeights, serverState: ServerOptimizerState?,
        privacySpend: PrivacySpend?)
    /// The next round would take ε past the privacy budget: it was not started, and the federation finished.
    case privacyBudgetReached(spent: Double, projected: Double, budget: Double)
    /// A robust aggregator closed the round's training: which clients it left out or cut (for the round
    /// record, an event, the round's span and a counter). Comes just before `storeCandidate`.
    case robustlyAggregated(round: Int, strategy: StrategyName, outcome: AggregationOutcome)
    /// The regression guard refused the candidate: record it as rejected, then call `rejectionRecorded`.
    case reject(
        round: Int, version: Int, evaluation: EvaluationSummary?, fitMetrics: [String: Double], examples: Int,
        clients: Int, reason: String)
    /// Make the candidate the current model, then call `committed` or `commitFailed`.
    case commit(
        round: Int, version: Int, evaluation: EvaluationSummary?, fitMetrics: [String: Double], examples: Int,
        clients: Int)
    /// The round ended; the report says how.
    case roundFinished(RoundReport<Instant>)
    /// The federation moved from one phase to another (`round` is the open round, nil once none is open).
    /// Announced where the change happens, so a phase that lasts only while one action is carried out
    /// (aggregating) is still seen.
    case phaseChanged(from: RoundPhase, to: RoundPhase, round: Int?)
    /// A client's result was accepted; `updateNorm` is the L2 norm of a fit update (nil for evaluations).
    case resultAccepted(TaskID, client: ClientID, kind: TaskKind, updateNorm: Double?)
    /// Rounds keep failing: the next one waits until `until` (`consecutiveFailures` in a row so far).
    case backingOff(until: Instant, delay: Duration, consecutiveFailures: Int)
    /// A client was not heard from (no request, no parked long-poll) for the liveness timeout since `lastSeen`:
    /// it counts as disconnected from now on.
    case clientWentSilent(ClientID, lastSeen: Instant)
    /// A disconnected client (gone silent, or known from before a restart) was heard from again; it had not been
    /// heard from since `silentSince`.
    case clientReturned(ClientID, silentSince: Instant)
}
