"""Writes Grafana/dashboards/*.json from the panel lists below, so every dashboard shares one layout
convention (stable uids, tags, a Prometheus datasource variable, trace links). Run after editing:
    python3 Grafana/build_dashboards.py
The JSON files are committed; a test checks they match this script's output.

Conventions (scripts/check-dashboards.py checks them against a live federation):
- Every query selects with `sel(...)`, so it filters by the `$cluster`, `$namespace` and `$job` template
  variables, and aggregates `by (cluster, namespace, job, ...)` (`ID`): two federations on one Prometheus
  never mix.
- No panel shows NaN when the federation is stuck: quantiles go through `quantile()` (no series when nothing
  was observed in the window), ratios divide by `(denominator > 0)`, and such panels say why they are empty
  (`no_value`).
- Annotations use `increase(...) > 0`, which counts a counter reset (a coordinator restart: N -> 0) as no
  event, where `changes()` would mark it.
"""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from dashboard_parts import (  # noqa: E402  (next to this file)
    HERE, RATE, sel, by, quantile, mean, rate_by, since,
    value_map, panel, stat, row, right_axis, annotation, RESTARTS, dashboard,
    up, firing,
)


SINCE_COMMIT = since("rondo_last_committed_round_timestamp_seconds")

overview = dashboard("rondo-overview", "Rondo / Federation overview", [
    row("Is it healthy?"),
    up(3),
    firing(3),
    stat("Last commit", [SINCE_COMMIT], 3, unit="s", no_value="no round committed yet", legends=["ago"],
         description="Time since the last committed round; RondoRoundStuck compares it with a threshold (Rounds / Time "
                     "since last commit)."),
    stat("Federation", [f"{sel('rondo_federation_paused')} + 2 * {sel('rondo_federation_draining')}"], 3,
         mappings=value_map({"0": ("running", "green"), "1": ("paused", "orange"), "2": ("draining", "orange"),
                             "3": ("draining", "orange")}),
         description="paused: an operator paused it (no new rounds); draining: the coordinator finishes its "
                     "round before stopping (rondo_federation_paused, rondo_federation_draining)."),
    stat("Quorum", [sel("rondo_clients_connected"), sel("rondo_clients_required")], 4,
         legends=["connected", "required"], options={"textMode": "value_and_name"},
         description="Connected clients vs the connected clients a round needs before it starts. "
                     "RondoQuorumAtRisk fires after 5 minutes below."),
    stat("Phase", [f"max by ({by('phase')}) ({sel('rondo_round_phase')}) == 1"], 3, legends=["{{phase}}"],
         options={"textMode": "name"}),
    stat("Round", [sel("rondo_round")], 2),
    stat("Model version", [sel("rondo_model_version")], 3),
    panel("Model version timeline", [sel("rondo_model_version")], width=24, height=6, legends=["current model"], decimals=0,
          custom={"lineInterpolation": "stepAfter", "showPoints": "never", "fillOpacity": 10},
          description="The version the next round trains from; it steps back on a rollback. Annotations mark "
                      "rollbacks, guard rejections, operator actions and coordinator restarts."),
    row("Rounds"),
    panel("Rounds by outcome", [f"sum by ({by('outcome')}) (increase({sel('rondo_rounds_total')}[$__range]))"],
          "bargauge", legends=["{{outcome}}"], width=8),
    panel("Round duration", [quantile(q, "rondo_round_duration_seconds") for q in ("0.5", "0.9", "0.99")],
          unit="s", legends=["p50", "p90", "p99"], traces=True, width=8, no_value="no round finished in the range"),
    panel("Phase duration p90", [quantile("0.9", "rondo_round_phase_duration_seconds", "phase")], unit="s",
          legends=["{{phase}}"], width=8, no_value="no phase ended in the range"),
    panel("Time since last commit", [SINCE_COMMIT, sel("rondo:round_stuck_threshold_seconds")], unit="s",
          legends=["since last commit", "stuck threshold"], width=12, no_value="no round committed yet",
          description="RondoRoundStuck fires when the first line stays above the second for 5 minutes."),
    panel("Round backoff", [sel("rondo_round_backoff_seconds"),
                            rate_by("rondo_round_backoffs_total", function="increase")],
          unit="s", legends=["wait before the next round", "rounds held back"], width=12,
          overrides=[right_axis("B", "short")],
          description="Failing rounds make the next one wait (exponential backoff); 0 once a round commits. "
                      "RondoRoundsBackingOff fires at 16 s."),
    row("Leadership"),
    panel("Leader per replica", [sel("rondo_leader")], "state-timeline", legends=["{{instance}}"], width=10, height=6,
          mappings=value_map({"1": ("leader", "green"), "0": ("standby", "blue")}),
          options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
          description="rondo_leader of each coordinator replica: 1 while it holds the leader lease of the "
                      "PostgreSQL store (--store), 0 while it stands by. A lone coordinator on SQLite always leads. "
                      "No replica leading: RondoNoLeader."),
    stat("Leading now", [f"sum by ({by()}) ({sel('rondo_leader')})"], 3, height=6, decimals=0,
         mappings=value_map({"0": ("none", "red"), "1": ("1", "green")}), steps=[("red", None), ("green", 1),
                                                                              ("orange", 2)],
         description="Replicas reporting rondo_leader 1. 0: no leader (RondoNoLeader); 2 for a moment: a leader "
                     "cut off from the database has not yet noticed that a standby took over (it cannot commit)."),
    stat("Takeovers", [f"changes({sel('rondo:leader_process_start_time_seconds')}[$__range])"
                       f" or 0 * max by ({by()}) ({sel('rondo_leader')})"], 3, height=6, decimals=0,
         steps=[("green", None), ("orange", 1), ("red", 4)],
         description="Times the leader lease changed hands in the range: changes of the leading process "
                     "(rondo:leader_process_start_time_seconds; a leader that loses the lease exits, so "
                     "rondo_leader_changes_total is 1 in every process that took it and never more). 0 on SQLite. "
                     "More than 3 in 15 minutes: RondoLeaderFlapping."),
    panel("Leader lease age", [f"{sel('rondo_leader_lease_age_seconds')} or 0 * {sel('rondo_leader')}"], unit="s",
          legends=["{{instance}}"], width=8, height=6,
          description="Seconds since the lease was last renewed, as each replica last saw it: the leader renews every "
                      "third of --lease-ttl (0 after each renewal; it climbs while renewals fail and the leader steps "
                      "down at the TTL), a standby reads the leader's renewal time. 0 on SQLite (no lease)."),
    row("Selection"),
    panel("Selection windows by outcome", [rate_by("rondo_selection_windows_total", "outcome", function="increase")],
          unit="short", legends=["{{outcome}}"], width=8,
          description="Goal-count selection (--goal-count): a window ends when goal × over-selection clients are "
                      "connected (goal_reached), or at --selection-timeout with the minimum (timed_out_with_minimum) "
                      "or below it (timed_out_below_minimum: no round opened). RondoSelectionBelowMinimum fires when "
                      "the last kind keeps coming. No series without a goal."),
    panel("Check-ins at selection", [sel("rondo_selection_checked_in"), sel("rondo_selection_goal"),
                                     sel("rondo_selection_minimum")],
          legends=["checked in when the last window ended", "goal count", "minimum"], width=8, decimals=0,
          description="Clients connected when the last selection window ended, against the goal and the minimum a "
                      "timed-out window needs (both 0 without a goal)."),
    panel("Selection wait", [quantile("0.9", "rondo_selection_wait_seconds")], unit="s", legends=["p90"], width=8,
          no_value="no selection window ended in the range",
          description="How long selection windows waited for their check-ins (0 when enough clients were already "
                      "connected)."),
    panel("Pace steering", [sel("rondo_selection_retry_after_spread_seconds"),
                            rate_by("rondo_selection_idle_polls_total")],
          unit="s", legends=["idle clients come back within (s)", "idle polls per second"], width=24, height=6,
          overrides=[right_axis("B", "ops")],
          description="Each poll that ends without a task is told when to come back (Retry-After), drawn from 0 to "
                      "the first line: connected clients over --poll-rate, capped at the heartbeat interval. 0 means "
                      "the federation is small enough that clients come back at once."),
    row("Strategy"),
    panel("Aggregation strategy", [sel("rondo_strategy_info") + " == 1"], legends=["{{strategy}}"], width=6,
          decimals=0, description="The strategy in force (--strategy); each checkpoint records its parameters."),
    panel("Server-optimizer steps", [sel("rondo_server_optimizer_steps")], legends=["steps behind the current model"],
          width=6, decimals=0,
          description="Steps of the server optimizer's state behind the current model (fedavgm, fedadam, fedyogi, "
                      "fedadagrad); 0 for fedavg. A rollback goes back to its version's count; a drop to 0 otherwise "
                      "means the state started afresh (see the coordinator's log)."),
    panel("Results left out, updates clipped",
          [rate_by("rondo_aggregation_excluded_clients_total", "strategy", function="increase"),
           rate_by("rondo_updates_clipped_total", function="increase")],
          unit="short", legends=["left out by {{strategy}}", "clipped to --clip-update-norm"], width=12,
          description="Results a robust aggregator (krum) left out of rounds, and updates scaled down to "
                      "--clip-update-norm, in the range. Which clients: the round's history row, the "
                      "robust_aggregation events (/v1/events) and the round's span."),
    row("Privacy"),
    panel("Privacy spent (epsilon)", [sel("rondo_privacy_epsilon"), sel("rondo_privacy_epsilon_budget")],
          legends=["epsilon at delta", "budget (--dp-epsilon-budget; 0: none)"], width=12, decimals=3,
          description="Differential privacy (--dp-noise-multiplier): the RDP accountant's epsilon over every private "
                      "round in the store's privacy ledger, against the budget. A round that would pass the budget is "
                      "not started (the federation finishes). No series: differential privacy is off."),
    panel("Clip norm and noise", [sel("rondo_privacy_clip_norm"), sel("rondo_privacy_noise_multiplier")],
          legends=["clip norm (next round)", "noise multiplier z"], width=6, decimals=3,
          description="The norm updates are clipped to (adapted each round with --dp-adaptive-clipping) and the noise "
                      "standard deviation on their sum over that norm."),
    stat("Budget reached", [sel("rondo_privacy_budget_reached")], 3, decimals=0,
         steps=[("green", None), ("red", 1)],
         description="1 once a round was refused because it would pass the privacy budget."),
    stat("Delta", [sel("rondo_privacy_delta")], 3, unit="none",
         description="The delta epsilon is reported at (--dp-delta)."),
    row("Clients"),
    panel("Clients", [sel("rondo_clients_connected"), sel("rondo_clients_required"), sel("rondo_clients_registered"),
                      sel("rondo_clients_selected"), sel("rondo_round_quorum")],
          legends=["connected", "required to start", "registered", "selected last round",
                   "quorum (accepted fit results needed)"]),
    panel("Results by outcome", [rate_by("rondo_results_total", "kind", "outcome")],
          unit="ops", legends=["{{kind}} {{outcome}}"]),
    panel("Dropouts by reason", [rate_by("rondo_dropouts_total", "kind", "reason")],
          unit="ops", legends=["{{kind}} {{reason}}"], traces=True,
          description="Failed client.task spans carry rondo.dropout.reason."),
    panel("Rejections by reason", [rate_by("rondo_result_rejections_total", "reason")],
          unit="ops", legends=["{{reason}}"]),
    panel("Task duration p90", [quantile("0.9", "rondo_task_duration_seconds", "kind")], unit="s",
          legends=["{{kind}}"], no_value="no task result accepted in the range",
          description="Time from handing a task out to its accepted result; open the round's trace for one task.",
          traces=True),
    panel("Bytes in / out", [f"rate({sel('rondo_update_bytes_received_total')}[{RATE}])",
                             f"rate({sel('rondo_model_bytes_sent_total')}[{RATE}])"],
          unit="Bps", legends=["updates received", "models sent"]),
    row("Model and updates"),
    panel("Global evaluation accuracy", [sel("rondo_eval_accuracy")], unit="percentunit", legends=["accuracy"]),
    panel("Global evaluation loss", [sel("rondo_eval_loss")], legends=["loss"]),
    panel("Update norm", [quantile(q, "rondo_update_norm") for q in ("0.5", "0.9")], legends=["p50", "p90"],
          width=8, no_value="no update accepted in the range",
          description="L2 norm of accepted updates (result minus base). A jump in p90 points at a diverging or "
                      "misbehaving site."),
    panel("Update size", [quantile(q, "rondo_update_size_bytes") for q in ("0.5", "0.9")], unit="bytes",
          legends=["p50", "p90"], width=8, no_value="no update received in the range",
          description="Fit-result uploads (coarse buckets: 1 KiB, 16 KiB, 256 KiB, 1 MiB, 16 MiB, ...)."),
    panel("Aggregation time per update", [quantile(q, "rondo_aggregation_duration_seconds") for q in ("0.5", "0.99")],
          unit="s", legends=["p50", "p99"], width=8, no_value="no update folded in the range",
          description="Validating and folding one update into the running average."),
    panel("Uploads in progress and aborted",
          [sel("rondo_uploads_in_progress"), f"increase({sel('rondo_uploads_aborted_total')}[{RATE}])"],
          legends=["holding an upload slot", "cut off mid-body"], width=24,
          description="Fit-result uploads stream into the fold, at most --max-concurrent-uploads at once (the rest "
                      "wait unread). Uploads cut off mid-body (client gone, stalled) leave the round unchanged; many "
                      "of them point at a flaky link or an overloaded site."),
], annotations=[
    annotation("Rollbacks", "increase(" + sel("rondo_rollbacks_total", 'trigger="manual"') + "[2m]) > 0", "orange",
               text="manual rollback"),
    annotation("Guard rejections", "increase(" + sel("rondo_rounds_total", 'outcome="rejected"') + "[2m]) > 0", "red",
               text="the regression guard rejected the round's model"),
    annotation("Operator actions", "increase(" + sel("rondo_admin_actions_total", 'action!="rollback"') + "[2m]) > 0",
               "purple", text="{{action}}", tags="action"),
    RESTARTS,
])

health = dashboard("rondo-coordinator-health", "Rondo / Coordinator health", [
    row("Coordinator"),
    up(4),
    stat("Build", [sel("rondo_build_info")], 8, legends=["{{version}} ({{revision}})"], options={"textMode": "name"},
         description="rondo_build_info: the version and git revision the coordinator was built from."),
    stat("Uptime", [since("process_start_time_seconds")], 4,
         unit="s", description="Since the coordinator process started (process_start_time_seconds); counters "
                               "restart at 0 then."),
    stat("Last checkpoint", [since("rondo_last_checkpoint_success_timestamp_seconds")], 4,
         unit="s", legends=["ago"], no_value="no checkpoint written yet"),
    firing(4),
    row("HTTP and admission"),
    panel("HTTP requests by route", [rate_by("rondo_http_requests_total", "route")],
          unit="reqps", legends=["{{route}}"], width=8),
    panel("HTTP error ratio", [
        "(" + rate_by("rondo_http_requests_total", matchers='status=~"4..|5.."')
        + " or 0 * " + rate_by("rondo_http_requests_total") + ") / (" + rate_by("rondo_http_requests_total") + " > 0)"],
        unit="percentunit", legends=["4xx+5xx"], width=8, no_value="no request in the range"),
    panel("HTTP latency p90 by route", [quantile("0.9", "rondo_http_request_duration_seconds", "route")],
          unit="s", legends=["{{route}}"], description="Long-polls count their full wait.", traces=True, width=8,
          no_value="no request in the range"),
    panel("Refusals by limit", [rate_by("rondo_limit_refusals_total", "limit")],
          unit="reqps", legends=["{{limit}}"], width=8,
          description="Requests refused by a configured limit (clients, long polls, rates, connections, slow "
                      "bodies, queued rollbacks)."),
    panel("Auth refusals by reason", [rate_by("rondo_auth_refusals_total", "reason")],
          unit="reqps", legends=["{{reason}}"], width=8,
          description="unauthenticated: no or unknown token; forbidden: a viewer token calling an action; "
                      "revoked: a revoked client's token."),
    panel("Operator actions", [rate_by("rondo_admin_actions_total", "action", function="increase")],
          legends=["{{action}}"], width=8, custom={"drawStyle": "bars", "fillOpacity": 80},
          description="Admin API actions carried out; `rondo events` (GET /v1/events) says who and why."),
    row("Process"),
    panel("Process CPU", [f"rate({sel('process_cpu_seconds_total')}[{RATE}])"], unit="percentunit", legends=["cpu"],
          width=8),
    panel("Resident memory", [sel("process_resident_memory_bytes")], unit="bytes", legends=["rss"], width=8),
    panel("Open file descriptors", [sel("process_open_fds")], legends=["fds"], width=8),
    row("Checkpoints"),
    panel("Checkpoint write duration p90", [quantile("0.9", "rondo_checkpoint_write_duration_seconds")],
          unit="s", legends=["p90"], width=6, no_value="no checkpoint written in the range"),
    panel("Checkpoint age", [since("rondo_last_checkpoint_success_timestamp_seconds")],
          unit="s", legends=["age"], width=6, no_value="no checkpoint written yet"),
    panel("Checkpoint writes", [rate_by("rondo_checkpoint_writes_total", "outcome")],
          unit="ops", legends=["{{outcome}}"], width=6),
    panel("Checkpoint size", [mean("rondo_checkpoint_size_bytes")], unit="bytes", legends=["mean"], width=6,
          no_value="no checkpoint written in the range",
          description="Mean size of the checkpoints stored in the window."),
    row("Tracing"),
    panel("Trace exporter", [f"rate({sel('rondo_trace_spans_exported_total')}[{RATE}])",
                             f"rate({sel('rondo_trace_spans_dropped_total')}[{RATE}])",
                             f"rate({sel('rondo_trace_export_failures_total')}[{RATE}])"], unit="ops",
          legends=["exported", "dropped", "export failures"], width=24),
], annotations=[RESTARTS])


def render():
    """File name -> JSON text of every dashboard."""
    return {f"{board['uid']}.json": json.dumps(board, indent=2, sort_keys=True) + "\n" for board in (overview, health)}


if __name__ == "__main__":
    for name, text in render().items():
        (HERE / "dashboards" / name).write_text(text)
