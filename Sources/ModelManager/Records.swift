/// The lifecycle state of a checkpoint version.
public enum CheckpointStatus: String, Sendable, Codable, CaseIterable {
    /// Aggregated and stored, awaiting evaluation and commit; clients may download it to evaluate it.
    case candidate
    /// A round committed it; it was `current` at least once.
    case committed
    /// The regression guard refused it; it never became `current`.
    case rejected
    /// Its round never finished (coordinator restart or abort).
    case aborted
    /// Brought in from a file (`checkpoints import`, `serve --initial-model`).
    case imported
}

/// What a checkpoint records about the round that produced it.
public struct CheckpointMetrics: Sendable, Codable, Equatable {
    public var evalLoss: Double?
    /// Federated evaluation metrics (e.g. `accuracy`), weighted by examples.
    public var evalMetrics: [String: Double]
    public var evalClients: Int?
    /// Training metrics reported by clients, weighted by examples.
    public var fitMetrics: [String: Double]
    /// Clients whose updates were aggregated.
    public var clients: Int?
    /// Examples behind the aggregate.
    public var examples: Int?

    public init(
        evalLoss: Double? = nil, evalMetrics: [String: Double] = [:], evalClients: Int? = nil,
        fitMetrics: [String: Double] = [:], clients: Int? = nil, examples: Int? = nil
    ) {
        self.evalLoss = evalLoss
        self.evalMetrics = evalMetrics
        self.evalClients = evalClients
        self.fitMetrics = fitMetrics
        self.clients = clients
        self.examples = examples
    }

    /// The value of an evaluation metric by name; `loss` is the evaluation loss.
    public func value(of metric: String) -> Double? {
        metric == "loss" ? evalLoss : evalMetrics[metric]
    }

    enum CodingKeys: String, CodingKey {
        case evalLoss = "eval_loss"
        case evalMetrics = "eval_metrics"
        case evalClients = "eval_clients"
        case fitMetrics = "fit_metrics"
        case clients, examples
    }
}

/// One stored checkpoint version (without its bytes).
public struct CheckpointRecord: Sendable, Codable, Equatable {
    public var version: Int
    public var round: Int
    public var parentVersion: Int?
    /// Seconds since 1970.
    public var createdAt: Double
    /// Lower-case hex SHA-256 of the safetensors bytes.
    public var sha256: String
    public var sizeBytes: Int
    public var tensorCount: Int
    public var status: CheckpointStatus
    /// Why the status is what it is (guard verdict, abort reason).
    public var statusReason: String?
    /// Set by `verify` when the stored bytes no longer match `sha256`; such a version cannot be rolled back to.
    public var integrityError: String?
    public var metrics: CheckpointMetrics
    /// The aggregation strategy and parameters that produced the version (nil: made before strategies were
    /// recorded, or not by a round: imported).
    public var strategy: StrategyRecord? = nil

    enum CodingKeys: String, CodingKey {
        case version, round, status, metrics, strategy
        case parentVersion = "parent_version"
        case createdAt = "created_at"
        case sha256
        case sizeBytes = "size_bytes"
        case tensorCount = "tensor_count"
        case statusReason = "status_reason"
        case integrityError = "integrity_error"
    }
}

/// The strategy a checkpoint was aggregated with, as recorded.
public struct StrategyRecord: Sendable, Codable, Equatable {
    /// `StrategyName`'s raw value (`fedavg`, `fedadam`, …).
    public var name: String
    /// Every parameter the strategy took, by its name.
    public var parameters: [String: Double]
    /// Under differential privacy, what the version's round ran with and the privacy spent once it was made;
    /// nil without differential privacy (and in records written before it existed).
    public var privacy: PrivacyRecord?

    public init(name: String, parameters: [String: Double], privacy: PrivacyRecord? = nil) {
        self.name = name
        self.parameters = parameters
        self.privacy = privacy
    }
}

/// A checkpoint's differential privacy: the settings its round ran with and the ε spent once it was made.
public struct PrivacyRecord: Sendable, Codable, Equatable {
    /// The noise multiplier z the round was accounted with.
    public var noiseMultiplier: Double
    /// The clip norm the round's updates were clipped to.
    public var clipNorm: Double
    /// The sampling rate the round was accounted with.
    public var samplingRate: Double
    /// The δ that `epsilon` is given at.
    public var delta: Double
    /// ε over every private round up to and including this one; nil when unbounded (a round without noise).
    public var epsilon: Double?

    public init(noiseMultiplier: Double, clipNorm: Double, samplingRate: Double, delta: Double, epsilon: Double?) {
        self.noiseMultiplier = noiseMultiplier
        self.clipNorm = clipNorm
        self.samplingRate = samplingRate
        self.delta = delta
        self.epsilon = epsilon
    }

    enum CodingKeys: String, CodingKey {
        case delta, epsilon
        case noiseMultiplier = "noise_multiplier"
        case clipNorm = "clip_norm"
        case samplingRate = "sampling_rate"
    }
}

/// How a round ended, as persisted.
public enum RoundStatus: String, Sendable, Codable, CaseIterable {
    case running, committed, failed, rejected, aborted
}

/// One round's history row.
public struct RoundRecord: Sendable, Codable, Equatable {
    public var round: Int
    public var status: RoundStatus
    public var startedAt: Double
    public var finishedAt: Double?
    public var baseVersion: Int
    public var resultVersion: Int?
    public var selected: Int
    public var answered: Int
    public var dropped: Int
    public var rejected: Int
    /// A stable reason code for failed, rejected and aborted rounds.
    public var reason: String?
    public var detail: String?
    public var evalLoss: Double?
    public var evalMetrics: [String: Double]

    public init(
        round: Int, status: RoundStatus, startedAt: Double, finishedAt: Double? = nil, baseVersion: Int,
        resultVersion: Int? = nil, selected: Int, answered: Int = 0, dropped: Int = 0, rejected: Int = 0,
        reason: String? = nil, detail: String? = nil, evalLoss: Double? = nil, evalMetrics: [String: Double] = [:]
    ) {
        self.round = round
        self.status = status
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.baseVersion = baseVersion
        self.resultVersion = resultVersion
        self.selected = selected
        self.answered = answered
        self.dropped = dropped
        self.rejected = rejected
        self.reason = reason
        self.detail = detail
        self.evalLoss = evalLoss
        self.evalMetrics = evalMetrics
    }

    enum CodingKeys: String, CodingKey {
        case round, status, selected, answered, dropped, rejected, reason, detail
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case baseVersion = "base_version"
        case resultVersion = "result_version"
        case evalLoss = "eval_loss"
        case evalMetrics = "eval_metrics"
    }
}

/// A registered client as persisted: never its token, only the token's hash.
public struct ClientRecord: Sendable, Codable, Equatable {
    public var clientID: String
    public var name: String
    public var tokenSHA256: String
    public var firstSeen: Double
    public var lastSeen: Double
    public var leftAt: Double?
    /// When an operator revoked the client's token; a revoked client is refused for good.
    public var revokedAt: Double?
    /// SHA-256 of the identity key the client registered with, if any: registering again with the same key
    /// returns this client, so a restarted site keeps its id.
    public var identitySHA256: String?

    enum CodingKeys: String, CodingKey {
        case name
        case clientID = "client_id"
        case tokenSHA256 = "token_sha256"
        case identitySHA256 = "identity_sha256"
        case firstSeen = "first_seen"
        case lastSeen = "last_seen"
        case leftAt = "left_at"
        case revokedAt = "revoked_at"
    }
}

/// What an audit event records; the raw value is stored and shown in `/v1/events`.
public enum EventKind: String, Sendable, Codable, CaseIterable {
    /// A model became current by import (`rondo checkpoints import`, or the initial model).
    case `import`
    /// A version was inserted as committed and made current in one step (`CheckpointStore.insert`; a round's
    /// own commit is recorded in the round history instead).
    case commit
    case rollback
    case tag
    /// Old checkpoints were deleted (`rondo checkpoints prune`).
    case prune
    /// The regression guard refused a round's candidate.
    case guardRejected = "guard_rejected"
    /// A round was cut short (an operator's abort, a restart, a drain timeout).
    case roundAborted = "round_aborted"
    case clientRevoked = "client_revoked"
    case federationPaused = "federation_paused"
    case federationResumed = "federation_resumed"
    /// A model with a different tensor layout was imported with `--force`.
    case layoutChanged = "layout_changed"
    /// A robust aggregator left clients' results out of a round (Krum) or cut their values (trimmed mean).
    case robustAggregation = "robust_aggregation"
    /// A round was not started because it would take ε past the privacy budget; the federation finished.
    case privacyBudgetReached = "privacy_budget_reached"
}

/// A ref the coordinator maintains itself (operators' tags are the other refs).
public enum CheckpointRef: String, Sendable, CaseIterable {
    /// The model the next round trains from.
    case current
    /// The committed model with the best guarded metric so far.
    case best
}

/// One audit-log entry.
public struct EventRecord: Sendable, Codable, Equatable {
    public var id: Int
    public var at: Double
    public var kind: EventKind
    /// Who did it: `coordinator`, `cli:<user>`, `admin`.
    public var actor: String
    public var round: Int?
    public var version: Int?
    public var traceID: String?
    public var detail: [String: String]

    enum CodingKeys: String, CodingKey {
        case id, at, kind, actor, round, version, detail
        case traceID = "trace_id"
    }
}

/// The outcome of `CheckpointStore.verify()`.
public struct VerificationReport: Sendable, Codable, Equatable {
    public var checkpointsChecked: Int
    /// One line per problem; empty when everything is intact.
    public var problems: [String]
    /// The engine's whole-database check (`ok` when healthy): SQLite's `PRAGMA integrity_check`; on PostgreSQL
    /// `ok` once every chunk has been read back.
    public var integrityCheck: String

    public var isHealthy: Bool { problems.isEmpty && integrityCheck == "ok" }

    enum CodingKeys: String, CodingKey {
        case problems
        case checkpointsChecked = "checkpoints_checked"
        case integrityCheck = "integrity_check"
    }
}
