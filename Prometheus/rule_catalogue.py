"""Rondo's Prometheus rules as data: recording rules and alerts, before Prometheus/mixin.yaml's settings are applied.

Prometheus/generate_rules.py renders them. Placeholders: ${fed} (the federation labels, comma-separated),
${up} (the coordinators' selector in `up`) and ${federation} (a Go template naming the alert's federation).
Each alert's `runbook` names its page in Prometheus/runbooks/.
"""

# Each rule: `comment` (optional, written above it), then its Prometheus keys. Alerts name a `runbook`.
RECORDING_RULES = [
    {
        "comment": "Usual round time: the 90th percentile over the last hour (seconds).",
        "record": "rondo:round_duration_seconds:p90_1h",
        "expr": "histogram_quantile(0.9, sum by (${fed}, le) (rate(rondo_round_duration_seconds_bucket[1h])))",
    },
    {
        "comment": "How long without a commit counts as stuck: 5 x the usual round time, at least 10 minutes (3 rounds\n"
        "that run into the default fit + evaluate timeouts, 180 s each, and their backoff stay below it). When no\n"
        "round ended in the last hour the usual time is unknown and the floor applies.\n"
        "Change the multiple or the floor here; RondoRoundStuck follows (its time to detect is this + 1m15s).",
        "record": "rondo:round_stuck_threshold_seconds",
        "expr": "clamp_min(5 * rondo:round_duration_seconds:p90_1h > 0, 600)\n"
        "  or on (${fed})\n"
        "600 * group by (${fed}) (rondo_last_committed_round_timestamp_seconds)\n",
    },
    {
        "comment": "The last time rounds were held on purpose: the evaluation time whenever the federation is paused or\n"
        "draining, no sample while it runs. RondoRoundStuck and RondoCheckpointTooOld count from the later of\n"
        "this and the last commit, so they neither fire during a pause nor right after a resume.",
        "record": "rondo:federation_held_timestamp_seconds",
        "expr": "max by (${fed}) (timestamp(rondo_federation_paused == 1 or rondo_federation_draining == 1))",
    },
    {
        "comment": "Share of selected clients that dropped out, over 15 minutes. Over-selected clients released at a\n"
        "round's goal (reason released) are neither: goal-count selection releases them by design.",
        "record": "rondo:dropout_ratio:rate15m",
        "expr": "sum by (${fed}) (rate(rondo_dropouts_total{reason!=\"released\"}[15m]))\n"
        "  / clamp_min(\n"
        "      sum by (${fed}) (rate(rondo_dropouts_total{reason!=\"released\"}[15m]))\n"
        "    + sum by (${fed}) (rate(rondo_results_total{outcome=\"accepted\"}[15m])),\n"
        "    1e-9)\n",
    },
    {
        "comment": "Share of results refused, over 10 minutes.",
        "record": "rondo:rejection_ratio:rate10m",
        "expr": "sum by (${fed}) (rate(rondo_result_rejections_total[10m]))\n"
        "  / clamp_min(\n"
        "      sum by (${fed}) (rate(rondo_result_rejections_total[10m]))\n"
        "    + sum by (${fed}) (rate(rondo_results_total{outcome=\"accepted\"}[10m])),\n"
        "    1e-9)\n",
    },
    {
        "comment": "High availability (serve --store postgres://...): the start time of the process that leads each\n"
        "federation. Only a process that took the leader lease counts rondo_leader_changes_total above 0, and a leader\n"
        "that loses the lease exits (status 75), so the counter never exceeds 1 in one process and increase() of it\n"
        "never sees a takeover; every takeover does bring a new leader process, i.e. a new value here.\n"
        "RondoLeaderFlapping counts its changes. A lone coordinator on SQLite has no lease (its counter stays 0): no\n"
        "series.",
        "record": "rondo:leader_process_start_time_seconds",
        "expr": "max by (${fed}) (\n"
        "  process_start_time_seconds and rondo_leader == 1 and rondo_leader_changes_total > 0\n"
        ")\n",
    },
] + [
    {
        **(
            {"comment": "Round failure ratio (failed or aborted rounds / finished rounds) for the error-budget alerts."}
            if window == "5m"
            else {}
        ),
        "record": f"rondo:round_failure_ratio:rate{window}",
        "expr": f"sum by (${{fed}}) (rate(rondo_rounds_total{{outcome=~\"failed|aborted\"}}[{window}]))\n"
        f"  / clamp_min(sum by (${{fed}}) (rate(rondo_rounds_total[{window}])), 1e-9)\n",
    }
    for window in ("5m", "30m", "1h", "6h")
]

# Time to detect (scrape every 15 s, evaluate every 15 s) is worked out in each runbook; keep them in step.
ALERT_RULES = [
    {
        "alert": "RondoCoordinatorDown",
        "expr": "up{${up}} == 0 or absent(up{${up}})",
        "for": "2m",
        "labels": {"severity": "critical"},
        "annotations": {
            "summary": "Rondo coordinator is down or not scraped",
            "description": "{{ if $labels.instance }}Prometheus has not scraped federation ${federation} ({{ $labels.instance }})"
            " for 2 minutes.{{ else }}No Rondo coordinator has been scraped for 2 minutes (no up{${up}} series)."
            "{{ end }}",
        },
        "runbook": "RondoCoordinatorDown",
    },
    {
        "comment": "High availability: replicas on one PostgreSQL store, one holding the leader lease (rondo_leader 1; a\n"
        "lone coordinator on SQLite always reports 1). Fires when the federation's replicas are scraped but none leads.\n"
        "When no replica is scraped at all there is no series: RondoCoordinatorDown covers that. Keep `for` above\n"
        "--lease-ttl (default 3 s): after a leader dies without releasing the lease, a standby waits out the TTL.",
        "alert": "RondoNoLeader",
        "expr": "max by (${fed}) (rondo_leader) < 1",
        "for": "30s",
        "labels": {"severity": "critical"},
        "annotations": {
            "summary": "No coordinator replica holds the leader lease",
            "description": "Federation ${federation}: every coordinator replica scraped reports rondo_leader 0"
            " (standing by) and none leads; no round runs until one takes the leader lease.",
        },
        "runbook": "RondoNoLeader",
    },
    {
        "comment": "Each change of the leading process is a takeover (see rondo:leader_process_start_time_seconds). Fires\n"
        "on the fourth within 15 minutes, resolves once fewer remain in the window.",
        "alert": "RondoLeaderFlapping",
        "expr": "changes(rondo:leader_process_start_time_seconds[15m]) > 3",
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "The leader lease keeps changing hands",
            "description": "Federation ${federation}: the leader changed {{ $value | printf \"%.0f\" }} times in the"
            " last 15 minutes; each takeover aborts the open round.",
        },
        "runbook": "RondoLeaderFlapping",
    },
    {
        "comment": "Paused, draining or finished federations commit nothing on purpose; after a pause or a drain the\n"
        "threshold counts from the resume.",
        "alert": "RondoRoundStuck",
        "expr": "time() - (rondo_last_committed_round_timestamp_seconds > 0)\n"
        "  > on (${fed}) group_left rondo:round_stuck_threshold_seconds\n"
        "unless on (${fed}) (rondo_federation_paused == 1 or rondo_federation_draining == 1)\n"
        "unless on (${fed}) (\n"
        "  time() - max_over_time(rondo:federation_held_timestamp_seconds[3h])\n"
        "    <= on (${fed}) rondo:round_stuck_threshold_seconds\n"
        ")\n"
        "unless on (${fed}) rondo_round_phase{phase=\"finished\"} == 1\n",
        "for": "1m",
        "labels": {"severity": "critical"},
        "annotations": {
            "summary": "No round has committed for far longer than usual",
            "description": "Federation ${federation} has not committed a round for {{ $value | printf \"%.0f\" }} s,"
            " more than 5x its usual round time (at least 10 minutes), and it is not paused.",
        },
        "runbook": "RondoRoundStuck",
    },
    {
        "comment": "No round starts while paused, draining or finished, so missing clients hold nothing up then.",
        "alert": "RondoQuorumAtRisk",
        "expr": "rondo_clients_connected < rondo_clients_required\n"
        "unless on (${fed}) (\n"
        "  rondo_round_phase{phase=\"finished\"} == 1 or rondo_federation_paused == 1 or rondo_federation_draining == 1\n"
        ")\n",
        "for": "2m",
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "Fewer clients connected than a round needs",
            "description": "Federation ${federation} has {{ $value }} clients connected, fewer than a round needs"
            " (rondo_clients_required).",
        },
        "runbook": "RondoQuorumAtRisk",
    },
    {
        "alert": "RondoHighDropoutRate",
        "expr": "rondo:dropout_ratio:rate15m > 0.3",
        "for": "15m",
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "Many selected clients drop out of rounds",
            "description": "In federation ${federation}, {{ $value | printf \"%.2f\" }} of selected clients dropped out"
            " over 15 minutes.",
        },
        "runbook": "RondoHighDropoutRate",
    },
    {
        "alert": "RondoUpdateRejectionsSpiking",
        "expr": "rondo:rejection_ratio:rate10m > 0.1\n"
        "and on (${fed}) sum by (${fed}) (rate(rondo_result_rejections_total[10m])) > 0.01\n",
        "for": "10m",
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "Client results are being refused",
            "description": "In federation ${federation}, {{ $value | printf \"%.2f\" }} of results were refused over"
            " 10 minutes.",
        },
        "runbook": "RondoUpdateRejectionsSpiking",
    },
    {
        "alert": "RondoAccuracyRegression",
        "expr": "rondo_eval_accuracy < max_over_time(rondo_eval_accuracy[6h]) - 0.05",
        "for": "10m",
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "Global evaluation accuracy fell below its recent best",
            "description": "Federation ${federation}: evaluation accuracy is {{ $value | printf \"%.3f\" }}, more than"
            " 0.05 below its 6-hour maximum.",
        },
        "runbook": "RondoAccuracyRegression",
    },
    {
        "comment": "Fires on the first rejection and resolves 15 minutes after the last one, so a fix can be confirmed.",
        "alert": "RondoGuardRejectedRounds",
        "expr": "increase(rondo_rounds_total{outcome=\"rejected\"}[15m]) > 0",
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "The regression guard refused models",
            "description": "Federation ${federation}: the regression guard rejected {{ $value | printf \"%.0f\" }}"
            " round models in the last 15 minutes.",
        },
        "runbook": "RondoGuardRejectedRounds",
    },
    {
        "alert": "RondoRollbackHappened",
        "expr": "increase(rondo_rollbacks_total{trigger=\"manual\"}[15m]) > 0",
        "labels": {"severity": "info"},
        "annotations": {
            "summary": "The global model was rolled back",
            "description": "Federation ${federation}: {{ $value | printf \"%.0f\" }} manual rollbacks in the last 15"
            " minutes.",
        },
        "runbook": "RondoRollbackHappened",
    },
    {
        "alert": "RondoCheckpointWritesFailing",
        "expr": "increase(rondo_checkpoint_writes_total{outcome=\"failure\"}[10m]) > 0",
        "labels": {"severity": "critical"},
        "annotations": {
            "summary": "Checkpoint writes are failing",
            "description": "Federation ${federation}: {{ $value | printf \"%.0f\" }} checkpoint writes (stores or"
            " commits) failed in the last 10 minutes.",
        },
        "runbook": "RondoCheckpointWritesFailing",
    },
    {
        "alert": "RondoRoundsBackingOff",
        "expr": "rondo_round_backoff_seconds >= 16",
        "for": "5m",
        "labels": {"severity": "critical"},
        "annotations": {
            "summary": "Rounds keep failing and the coordinator is backing off",
            "description": "Federation ${federation}: five or more rounds failed in a row; the next round waits"
            " {{ $value | printf \"%.0f\" }} s.",
        },
        "runbook": "RondoRoundsBackingOff",
    },
    {
        "alert": "RondoSelectionBelowMinimum",
        "expr": "increase(rondo_selection_windows_total{outcome=\"timed_out_below_minimum\"}[15m]) >= 3",
        "for": "10m",
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "Goal-count selection keeps timing out below its minimum",
            "description": "Federation ${federation}: {{ $value | printf \"%.0f\" }} selection windows in the last"
            " 15 minutes timed out with fewer clients checked in than the goal's minimum share; no round opened in"
            " them.",
        },
        "runbook": "RondoSelectionBelowMinimum",
    },
    {
        "alert": "RondoCheckpointTooOld",
        "expr": "time() - (rondo_last_checkpoint_success_timestamp_seconds > 0) > 3600\n"
        "unless on (${fed}) (rondo_federation_paused == 1 or rondo_federation_draining == 1)\n"
        "unless on (${fed}) (time() - max_over_time(rondo:federation_held_timestamp_seconds[3h]) <= 3600)\n"
        "unless on (${fed}) rondo_round_phase{phase=\"finished\"} == 1\n",
        "for": "10m",
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "No checkpoint written for over an hour",
            "description": "Federation ${federation}: the last successful checkpoint write was"
            " {{ $value | printf \"%.0f\" }} s ago.",
        },
        "runbook": "RondoCheckpointTooOld",
    },
    {
        "alert": "RondoTraceExportFailing",
        "expr": "increase(rondo_trace_export_failures_total[10m]) > 0 or increase(rondo_trace_spans_dropped_total[10m]) > 0",
        "for": "10m",
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "Trace export is failing or dropping spans",
            "description": "Federation ${federation}: {{ $value | printf \"%.0f\" }} trace export failures or dropped"
            " spans in the last 10 minutes.",
        },
        "runbook": "RondoTraceExportFailing",
    },
    {
        "comment": "SLO: 99 % of rounds succeed (error budget 1 %). Multi-window burn-rate alerts.",
        "alert": "RondoRoundErrorBudgetFastBurn",
        "expr": "rondo:round_failure_ratio:rate1h > (14.4 * 0.01) and rondo:round_failure_ratio:rate5m > (14.4 * 0.01)",
        "for": "2m",
        "labels": {"severity": "critical"},
        "annotations": {
            "summary": "Rounds fail fast enough to spend the monthly error budget in two days",
            "description": "In federation ${federation}, {{ $value | printf \"%.2f\" }} of rounds failed over the last"
            " hour.",
        },
        "runbook": "RondoRoundErrorBudgetBurn",
    },
    {
        "alert": "RondoRoundErrorBudgetSlowBurn",
        "expr": "rondo:round_failure_ratio:rate6h > (6 * 0.01) and rondo:round_failure_ratio:rate30m > (6 * 0.01)",
        "for": "15m",
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "Rounds fail fast enough to spend the monthly error budget in five days",
            "description": "In federation ${federation}, {{ $value | printf \"%.2f\" }} of rounds failed over the last"
            " six hours.",
        },
        "runbook": "RondoRoundErrorBudgetBurn",
    },
    {
        "comment": "Differential privacy: epsilon spent against the budget (--dp-epsilon-budget). The gauges move only when a\n"
        "round's noised aggregate is stored, so the alert fires from the first evaluation that sees the crossing.\n"
        "An unbounded epsilon (a round without noise) is +Inf and fires too.",
        "alert": "RondoPrivacyBudgetNearlySpent",
        "expr": "rondo_privacy_epsilon / (rondo_privacy_epsilon_budget > 0) >= 0.8",
        "for": "1m",
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "The privacy budget is nearly spent",
            "description": "Federation ${federation}: {{ $value | humanizePercentage }} of the epsilon budget is"
            " spent; a round that would pass the budget is not started and the federation finishes.",
        },
        "runbook": "RondoPrivacyBudgetNearlySpent",
    },
]
