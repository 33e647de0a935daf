import FederationCore

/// Every metric Rondo exposes, defined once: name, type, help, labels with their bounded value sets, and
/// histogram buckets.
///
/// Emitters and the Prometheus factory both read this table, so a metric cannot be emitted under a name,
/// label or bucket layout it does not declare, and `/metrics` carries `# HELP` for every family. Label values
/// come from closed sets (phases, outcomes, reasons, kinds, route templates, status codes): never a client
/// id, a round number or a version.
public enum MetricCatalogue {
    public enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    public struct Definition: Sendable {
        public var name: String
        public var kind: Kind
        public var help: String
        /// Label name → every value it may take; nil means an open but bounded set (HTTP routes, status codes).
        public var labels: [(name: String, values: [String]?)]
        /// Upper bounds for histograms, in the metric's base unit.
        public var buckets: [Double]

        init(_ name: String, _ kind: Kind, _ help: String, labels: [(String, [String]?)] = [], buckets: [Double] = []) {
            self.name = name
            self.kind = kind
            self.help = help
            self.labels = labels.map { (name: $0.0, values: $0.1) }
            self.buckets = buckets
        }
    }

    static let roundSeconds: [Double] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800]
    static let shortSeconds: [Double] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]
    static let byteSizes: [Double] = [
        1024, 16384, 262_144, 1_048_576, 16_777_216, 67_108_864, 268_435_456, 1_073_741_824, 4_294_967_296,
    ]

    static let phases = RoundPhase.allCases.map(\.rawValue)
    static let kinds = TaskKind.allCases.map(\.rawValue)
    /// How a round ended; the Coordinator maps each to `RoundStatus` with the same names.
    static let outcomes = ["committed", "failed", "rejected", "aborted"]
    static let resultOutcomes = ["accepted", "rejected", "late", "duplicate"]
    static let rejectionReasons =
        UpdateRejection.Reason.allCases.map(\.rawValue) + ["invalid_safetensors", "too_large", "wrong_media_type"]
    static let dropoutReasons = DropoutReason.allCases.map(\.rawValue)

    public static let buildInfo = Definition(
        "rondo_build_info", .gauge, "Always 1; labels carry the build.", labels: [("version", nil), ("revision", nil)])
    public static let round = Definition("rondo_round", .gauge, "Number of the most recent round started.")
    public static let phase = Definition(
        "rondo_round_phase", .gauge, "1 for the federation's current phase, 0 for the others.",
        labels: [("phase", phases)])
    public static let modelVersion = Definition(
        "rondo_model_version", .gauge, "Checkpoint version the next round trains from (the current ref).")
    public static let rounds = Definition(
        "rondo_rounds_total", .counter, "Rounds finished, by outcome.", labels: [("outcome", outcomes)])
    public static let roundDuration = Definition(
        "rondo_round_duration_seconds", .histogram, "Time from a round's start to its end.", buckets: roundSeconds)
    public static let phaseDuration = Definition(
        "rondo_round_phase_duration_seconds", .histogram, "Time spent in each round phase.",
        labels: [("phase", phases)], buckets: roundSeconds)
    public static let lastCommit = Definition(
        "rondo_last_committed_round_timestamp_seconds", .gauge, "Unix time of the last committed round.")
    public static let clientsConnected = Definition(
        "rondo_clients_connected", .gauge, "Clients seen within the liveness timeout or with a poll parked.")
    public static let clientsRegistered = Definition(
        "rondo_clients_registered", .gauge, "Clients registered and not departed.")
    public static let clientsSelected = Definition(
        "rondo_clients_selected", .gauge, "Clients selected for the most recent round.")
    public static let clientsRequired = Definition(
        "rondo_clients_required", .gauge, "Connected clients needed before a round starts.")
    public static let quorum = Definition(
        "rondo_round_quorum", .gauge, "Accepted fit results a round needs (min_fit_results).")
    public static let results = Definition(
        "rondo_results_total", .counter, "Task results received, by task kind and outcome.",
        labels: [("kind", kinds), ("outcome", resultOutcomes)])
    public static let rejections = Definition(
        "rondo_result_rejections_total", .counter, "Results refused, by reason.", labels: [("reason", rejectionReasons)]
    )
    public static let dropouts = Definition(
        "rondo_dropouts_total", .counter, "Selected clients that gave no result, by task kind and reason.",
        labels: [("kind", kinds), ("reason", dropoutReasons)])
    public static let taskDuration = Definition(
        "rondo_task_duration_seconds", .histogram, "Time from handing a task to a client to its accepted result.",
        labels: [("kind", kinds)], buckets: roundSeconds)
    public static let updateSize = Definition(
        "rondo_update_size_bytes", .histogram, "Size of fit-result uploads.", buckets: byteSizes)
    public static let updateNorm = Definition(
        "rondo_update_norm", .histogram, "L2 norm of accepted updates (result minus base).",
        buckets: [0.01, 0.1, 0.5, 1, 2, 5, 10, 50, 100, 1000])
    public static let updatesClipped = Definition(
        "rondo_updates_clipped_total", .counter,
        "Accepted updates scaled down to the clip norm before averaging (--clip-update-norm, or differential privacy's --dp-clip-norm)."
    )
    public static let bytesReceived = Definition(
        "rondo_update_bytes_received_total", .counter, "Bytes of fit results received.")
    public static let uploadsAborted = Definition(
        "rondo_uploads_aborted_total", .counter,
        "Fit-result uploads cut off before their last byte (client gone, stalled) or that could not be spooled (disk full or failing); the round is left unchanged."
    )
    public static let uploadsInProgress = Definition(
        "rondo_uploads_in_progress", .gauge,
        "Fit-result uploads holding an upload slot (being received, checked, spooled or folded).")
    public static let bytesSent = Definition("rondo_model_bytes_sent_total", .counter, "Bytes of model downloads sent.")
    public static let aggregationDuration = Definition(
        "rondo_aggregation_duration_seconds", .histogram,
        "Time to validate and fold one update into the running average.", buckets: shortSeconds)
    public static let evalLoss = Definition(
        "rondo_eval_loss", .gauge, "Federated evaluation loss of the most recently evaluated model.")
    public static let evalAccuracy = Definition(
        "rondo_eval_accuracy", .gauge, "Federated evaluation accuracy of the most recently evaluated model.")
    public static let roundBackoffs = Definition(
        "rondo_round_backoffs_total", .counter,
        "Times the next round was held back because rounds kept failing (exponential backoff).")
    public static let roundBackoff = Definition(
        "rondo_round_backoff_seconds", .gauge,
        "The wait failing rounds impose before each next round; 0 once a round commits, the model is rolled back, or the federation is paused or finished."
    )
    public static let checkpointWrites = Definition(
        "rondo_checkpoint_writes_total", .counter,
        "Checkpoint writes (candidate stores, commits, recorded rejections), by outcome; every failed one counts.",
        labels: [("outcome", ["success", "failure"])])
    public static let checkpointWriteDuration = Definition(
        "rondo_checkpoint_write_duration_seconds", .histogram, "Time to write a checkpoint to the store.",
        buckets: shortSeconds + [30, 60])
    public static let checkpointSize = Definition(
        "rondo_checkpoint_size_bytes", .histogram, "Size of stored checkpoints.", buckets: byteSizes)
    public static let lastCheckpoint = Definition(
        "rondo_last_checkpoint_success_timestamp_seconds", .gauge, "Unix time of the last successful checkpoint write.")
    public static let rollbacks = Definition(
        "rondo_rollbacks_total", .counter,
        "Operator rollbacks: times the current model was set back to an earlier version, each one counted. A guard "
            + "rejection rolls nothing back; it is rondo_rounds_total{outcome=\"rejected\"}.",
        labels: [("trigger", ["manual"])])
    public static let paused = Definition(
        "rondo_federation_paused", .gauge, "1 while an operator has paused the federation (no new rounds), else 0.")
    public static let draining = Definition(
        "rondo_federation_draining", .gauge, "1 while the coordinator finishes its round before stopping, else 0.")
    public static let adminActions = Definition(
        "rondo_admin_actions_total", .counter, "Operator actions carried out, by action.",
        labels: [("action", ["rollback", "tag", "pause", "resume", "abort_round", "revoke_client"])])
    public static let authRefusals = Definition(
        "rondo_auth_refusals_total", .counter,
        "Requests refused by authentication or authorisation, by reason.",
        labels: [("reason", ["unauthenticated", "forbidden", "revoked"])])
    public static let limitRefusals = Definition(
        "rondo_limit_refusals_total", .counter, "Requests refused by a configured limit, by limit.",
        labels: [
            (
                "limit",
                [
                    "clients", "long_polls", "client_long_polls", "register_rate", "submit_rate", "connections",
                    "slow_body", "queued_rollbacks",
                ]
            )
        ])
    public static let selectionWindows = Definition(
        "rondo_selection_windows_total", .counter,
        "Goal-count selection windows ended, by outcome (timed_out_below_minimum opened no round).",
        labels: [("outcome", SelectionOutcome.allCases.map(\.rawValue))])
    public static let selectionWait = Definition(
        "rondo_selection_wait_seconds", .histogram, "Time from a selection window opening to its end.",
        buckets: roundSeconds)
    public static let selectionCheckedIn = Definition(
        "rondo_selection_checked_in", .gauge, "Clients checked in (connected) when the last selection window ended.")
    public static let selectionGoal = Definition(
        "rondo_selection_goal", .gauge, "The selection goal count (0 without a goal: Flower-style sampling).")
    public static let selectionMinimum = Definition(
        "rondo_selection_minimum", .gauge, "Check-ins a timed-out selection window needs to open a round.")
    public static let retryAfterSpread = Definition(
        "rondo_selection_retry_after_spread_seconds", .gauge,
        "Pace steering: idle clients are told to come back within 0 to this many seconds (connected clients over"
            + " the poll rate, capped at the heartbeat interval; 0 when off or below the rate).")
    public static let idlePolls = Definition(
        "rondo_selection_idle_polls_total", .counter,
        "Polls that ended without a task (answered 204, with pace steering's Retry-After when it is on).")
    public static let httpRequests = Definition(
        "rondo_http_requests_total", .counter, "HTTP requests, by method, route template and status.",
        labels: [("method", nil), ("route", nil), ("status", nil)])
    public static let httpDuration = Definition(
        "rondo_http_request_duration_seconds", .histogram,
        "HTTP request latency (long-polls included), by method and route template.",
        labels: [("method", nil), ("route", nil)], buckets: shortSeconds + [30, 60])
    public static let spansExported = Definition(
        "rondo_trace_spans_exported_total", .counter, "Spans accepted by the OTLP receiver.")
    public static let spansDropped = Definition(
        "rondo_trace_spans_dropped_total", .counter, "Spans dropped: queue full, or export failed after retries.")
    public static let exportFailures = Definition(
        "rondo_trace_export_failures_total", .counter, "OTLP export batches that failed after all retries.")
    public static let processCPU = Definition(
        "process_cpu_seconds_total", .counter, "User and system CPU time of the coordinator process.")
    public static let processMemory = Definition(
        "process_resident_memory_bytes", .gauge, "Resident memory of the coordinator process.")
    public static let processFDs = Definition(
        "process_open_fds", .gauge, "Open file descriptors of the coordinator process.")
    public static let strategyInfo = Definition(
        "rondo_strategy_info", .gauge, "Always 1; the label names the aggregation strategy in force (--strategy).",
        labels: [("strategy", StrategyName.allCases.map(\.rawValue))])
    public static let robustExclusions = Definition(
        "rondo_aggregation_excluded_clients_total", .counter,
        "Results a robust aggregator left out of a round (Krum, Multi-Krum), by strategy; which clients is in the round record, the robust_aggregation event and the round's span.",
        labels: [("strategy", StrategyName.allCases.map(\.rawValue))])
    public static let serverOptimizerSteps = Definition(
        "rondo_server_optimizer_steps", .gauge,
        "Server-optimizer steps behind the current model (0: FedAvg, or a state started afresh); a rollback goes back to its version's count."
    )
    public static let privacyEpsilon = Definition(
        "rondo_privacy_epsilon", .gauge,
        "Privacy spent so far under differential privacy: the RDP accountant's epsilon at rondo_privacy_delta over every round in the privacy ledger (+Inf after a round without noise)."
    )
    public static let privacyDelta = Definition(
        "rondo_privacy_delta", .gauge, "The delta that rondo_privacy_epsilon is reported at (--dp-delta).")
    public static let privacyBudget = Definition(
        "rondo_privacy_epsilon_budget", .gauge,
        "The epsilon no round may take the federation past (--dp-epsilon-budget); 0 when no budget is set.")
    public static let privacyBudgetReached = Definition(
        "rondo_privacy_budget_reached", .gauge,
        "1 once a round was refused because it would exceed the privacy budget (the federation finished), else 0.")
    public static let privacyClipNorm = Definition(
        "rondo_privacy_clip_norm", .gauge,
        "The clip norm the next round's updates are clipped to (fixed, or adapted to --dp-target-quantile).")
    public static let privacyNoiseMultiplier = Definition(
        "rondo_privacy_noise_multiplier", .gauge,
        "The noise multiplier z: the noise standard deviation on the sum of clipped updates over the clip norm.")
    public static let leader = Definition(
        "rondo_leader", .gauge,
        "1 while this coordinator holds the leader lease of its PostgreSQL store (or runs on SQLite, alone), 0 while it stands by."
    )
    public static let leaderChanges = Definition(
        "rondo_leader_changes_total", .counter,
        "Times this process took the leader lease: 0 or 1, since a leader that loses the lease exits (takeovers are changes of the leading process: rondo:leader_process_start_time_seconds)."
    )
    public static let leaseAge = Definition(
        "rondo_leader_lease_age_seconds", .gauge,
        "Seconds since the leader lease was last renewed, as this process last saw it (the leader renews every third of the TTL)."
    )
    public static let processStart = Definition(
        "process_start_time_seconds", .gauge, "Unix time the coordinator process started.")

    /// The whole catalogue.
    public static let all: [Definition] = [
        buildInfo, round, phase, modelVersion, rounds, roundDuration, phaseDuration, lastCommit, clientsConnected,
        clientsRegistered, clientsSelected, clientsRequired, quorum, results, rejections, dropouts, taskDuration,
        updateSize, updateNorm, updatesClipped, bytesReceived, uploadsAborted, uploadsInProgress, bytesSent,
        aggregationDuration,
        evalLoss, evalAccuracy, roundBackoffs,
        roundBackoff, checkpointWrites,
        checkpointWriteDuration, checkpointSize, lastCheckpoint, rollbacks, paused, draining, adminActions,
        authRefusals, limitRefusals, selectionWindows, selectionWait, selectionCheckedIn, selectionGoal,
        selectionMinimum, retryAfterSpread, idlePolls, strategyInfo, serverOptimizerSteps, robustExclusions,
        privacyEpsilon, privacyDelta, privacyBudget, privacyBudgetReached, privacyClipNorm, privacyNoiseMultiplier,
        leader, leaderChanges, leaseAge,
        spansExported, spansDropped,
        exportFailures,
        httpRequests, httpDuration, processCPU,
        processMemory, processFDs, processStart,
    ]

    static let byName: [String: Definition] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// The definition of a metric name, if the catalogue has it.
    public static func definition(named name: String) -> Definition? { byName[name] }
}
