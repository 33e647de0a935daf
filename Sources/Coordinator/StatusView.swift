import FederationCore
import Foundation
import ModelManager

/// `GET /v1/status` and `rondo status`: where the federation stands and what it runs with.
///
/// It carries every field of the wire protocol's `StatusMessage` (so SDKs that read that keep working) plus
/// what an operator needs during an incident: the refs, the last round's outcome, the last commit's age, and
/// the effective configuration (a bad `--fit-config learning_rate=20` is visible here).
public struct StatusView: Codable, Sendable {
    public var status: WireProtocol.StatusMessage
    @Nullable public var currentVersion: Int?
    @Nullable public var bestVersion: Int?
    /// The most recent finished round and how it ended.
    @Nullable public var lastRound: Int?
    @Nullable public var lastRoundOutcome: RoundStatus?
    @Nullable public var lastCommitAt: Timestamp?
    /// Seconds since the last commit, when the answer was made.
    @Nullable public var lastCommitAgeSeconds: Double?
    public var configuration: ConfigurationView
    /// Differential privacy's state; null when it is off.
    @Nullable public var privacy: PrivacyView?

    enum CodingKeys: String, CodingKey {
        case configuration, privacy
        case currentVersion = "current_version"
        case bestVersion = "best_version"
        case lastRound = "last_round"
        case lastRoundOutcome = "last_round_outcome"
        case lastCommitAt = "last_commit_at"
        case lastCommitAgeSeconds = "last_commit_age_seconds"
    }

    public init(
        status: WireProtocol.StatusMessage, refs: [String: Int], lastRound: RoundRecord?,
        lastCommit: RoundRecord?, configuration: ConfigurationView, privacy: PrivacyView? = nil, now: Date = Date()
    ) {
        self.privacy = privacy
        self.status = status
        currentVersion = refs[CheckpointRef.current.rawValue]
        bestVersion = refs[CheckpointRef.best.rawValue]
        self.lastRound = lastRound?.round
        lastRoundOutcome = lastRound?.status
        let committedAt = lastCommit?.finishedAt
        lastCommitAt = committedAt.map { Timestamp(secondsSince1970: $0) }
        lastCommitAgeSeconds = committedAt.map { max(0, now.timeIntervalSince1970 - $0) }
        self.configuration = configuration
    }

    public init(from decoder: any Decoder) throws {
        status = try WireProtocol.StatusMessage(from: decoder)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        _currentVersion = try container.decode(Nullable<Int>.self, forKey: .currentVersion)
        _bestVersion = try container.decode(Nullable<Int>.self, forKey: .bestVersion)
        _lastRound = try container.decode(Nullable<Int>.self, forKey: .lastRound)
        _lastRoundOutcome = try container.decode(Nullable<RoundStatus>.self, forKey: .lastRoundOutcome)
        _lastCommitAt = try container.decode(Nullable<Timestamp>.self, forKey: .lastCommitAt)
        _lastCommitAgeSeconds = try container.decode(Nullable<Double>.self, forKey: .lastCommitAgeSeconds)
        configuration = try container.decode(ConfigurationView.self, forKey: .configuration)
        _privacy =
            try container.decodeIfPresent(Nullable<PrivacyView>.self, forKey: .privacy) ?? Nullable(wrappedValue: nil)
    }

    public func encode(to encoder: any Encoder) throws {
        try status.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(_currentVersion, forKey: .currentVersion)
        try container.encode(_bestVersion, forKey: .bestVersion)
        try container.encode(_lastRound, forKey: .lastRound)
        try container.encode(_lastRoundOutcome, forKey: .lastRoundOutcome)
        try container.encode(_lastCommitAt, forKey: .lastCommitAt)
        try container.encode(_lastCommitAgeSeconds, forKey: .lastCommitAgeSeconds)
        try container.encode(configuration, forKey: .configuration)
        try container.encode(_privacy, forKey: .privacy)
    }
}

/// The coordinator's effective configuration, as `serve` logs it at start and `/v1/status` shows it. Secrets
/// (tokens, keys) are never part of it: only whether they are set.
public struct ConfigurationView: Codable, Sendable, Equatable {
    public var fractionFit: Double
    public var minFitClients: Int
    public var minAvailableClients: Int
    public var minFitResults: Int
    public var fractionEvaluate: Double
    public var minEvaluateClients: Int
    public var minEvaluateResults: Int
    public var fitTimeoutSeconds: Double
    public var evaluateTimeoutSeconds: Double
    public var livenessTimeoutSeconds: Double
    public var heartbeatIntervalSeconds: Double
    @Nullable public var maxRounds: Int?
    /// The config every fit task carries (`--fit-config`), e.g. `learning_rate`.
    public var fitConfig: [String: String]
    public var evaluateConfig: [String: String]
    /// The regression guard, or null when it is off.
    @Nullable public var regressionGuard: RegressionGuardView?
    @Nullable public var maxUpdateNorm: Double?
    /// Updates farther than this from the base are scaled down to it before averaging; null: off.
    @Nullable public var clipUpdateNorm: Double?
    @Nullable public var maxWeightShare: Double?
    public var maxUpdateBytes: Int
    public var maxClients: Int
    public var refusedSubmissionsPerSecond: Double
    public var registrationsPerSecond: Double
    @Nullable public var drainTimeoutSeconds: Double?
    /// Versions `serve --keep-last` keeps (current, best and tagged ones always stay); null: keep all.
    @Nullable public var keepLast: Int?
    public var tls: Bool
    public var enrolmentTokenSet: Bool
    public var metricsTokenSet: Bool
    public var seed: UInt64
    /// The aggregation strategy and every parameter it runs with.
    public var strategy: StrategyView

    public init(_ configuration: CoordinatorConfiguration) {
        let rounds = configuration.rounds
        fractionFit = rounds.selection.fractionFit
        minFitClients = rounds.selection.minFitClients
        minAvailableClients = rounds.selection.minAvailableClients
        minFitResults = rounds.minFitResults
        fractionEvaluate = rounds.selection.fractionEvaluate
        minEvaluateClients = rounds.selection.minEvaluateClients
        minEvaluateResults = rounds.minEvaluateResults
        fitTimeoutSeconds = rounds.fitTimeout.seconds
        evaluateTimeoutSeconds = rounds.evaluateTimeout.seconds
        livenessTimeoutSeconds = rounds.livenessTimeout.seconds
        heartbeatIntervalSeconds = configuration.effectiveHeartbeatInterval.seconds
        maxRounds = rounds.maxRounds
        fitConfig = rounds.fitConfig
        evaluateConfig = rounds.evaluateConfig
        regressionGuard = rounds.regressionGuard.map {
            RegressionGuardView(metric: $0.metric, higherIsBetter: $0.higherIsBetter, maxRegression: $0.maxRegression)
        }
        maxUpdateNorm = rounds.validator.maxUpdateNorm
        clipUpdateNorm = rounds.clipNorm
        maxWeightShare = rounds.weightCap?.maxShare
        maxUpdateBytes = configuration.limits.maxUpdateBytes
        maxClients = configuration.limits.maxClients
        refusedSubmissionsPerSecond = configuration.limits.refusedSubmissionsPerClientPerSecond
        registrationsPerSecond = configuration.limits.registrationsPerSecond
        drainTimeoutSeconds = configuration.effectiveDrainTimeout.seconds
        keepLast = configuration.keepLast
        tls = configuration.tls != nil
        enrolmentTokenSet = configuration.enrolmentToken != nil
        metricsTokenSet = configuration.metricsToken != nil
        seed = configuration.seed
        strategy = StrategyView(rounds.strategy)
    }

    enum CodingKeys: String, CodingKey {
        case tls, seed, strategy
        case fractionFit = "fraction_fit"
        case minFitClients = "min_fit_clients"
        case minAvailableClients = "min_available_clients"
        case minFitResults = "min_fit_results"
        case fractionEvaluate = "fraction_evaluate"
        case minEvaluateClients = "min_evaluate_clients"
        case minEvaluateResults = "min_evaluate_results"
        case fitTimeoutSeconds = "fit_timeout_seconds"
        case evaluateTimeoutSeconds = "evaluate_timeout_seconds"
        case livenessTimeoutSeconds = "liveness_timeout_seconds"
        case heartbeatIntervalSeconds = "heartbeat_interval_seconds"
        case maxRounds = "max_rounds"
        case fitConfig = "fit_config"
        case evaluateConfig = "evaluate_config"
        case regressionGuard = "regression_guard"
        case maxUpdateNorm = "max_update_norm"
        case clipUpdateNorm = "clip_update_norm"
        case maxWeightShare = "max_weight_share"
        case maxUpdateBytes = "max_update_bytes"
        case maxClients = "max_clients"
        case refusedSubmissionsPerSecond = "refused_submissions_per_second"
        case registrationsPerSecond = "registrations_per_second"
        case drainTimeoutSeconds = "drain_timeout_seconds"
        case keepLast = "keep_last"
        case enrolmentTokenSet = "enrolment_token_set"
        case metricsTokenSet = "metrics_token_set"
    }
}

/// The regression guard as `/v1/status` shows it.
public struct RegressionGuardView: Codable, Sendable, Equatable {
    public var metric: String
    public var higherIsBetter: Bool
    public var maxRegression: Double

    enum CodingKeys: String, CodingKey {
        case metric
        case higherIsBetter = "higher_is_better"
        case maxRegression = "max_regression"
    }
}
