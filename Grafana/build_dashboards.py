"""Writes Grafana/dashboards/*.json from the panel lists below, so every dashboard shares one layout
convention (stable uids, tags, a Prometheus datasource variable, trace links). Run after editing:
    python3 Grafana/build_dashboards.py
The JSON files are committed; a test checks they match this script's output."""
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"


TRACES_LINK = {
    "title": "Find the round's trace in Tempo",
    "url": "/explore?left=" + '{"datasource":"tempo","queries":[{"refId":"A","queryType":"traceqlSearch","query":"{ name = \\"rondo.round\\" }"}]}',
    "targetBlank": True,
}


def panel(title, exprs, kind="timeseries", unit=None, legends=None, width=12, description="", traces=False):
    targets = [
        {"refId": chr(65 + i), "datasource": DS, "expr": expr, "legendFormat": (legends or [""] * len(exprs))[i]}
        for i, expr in enumerate(exprs)
    ]
    result = {"type": kind, "title": title, "description": description, "datasource": DS, "targets": targets,
              "gridPos": {"w": width, "h": 8}, "fieldConfig": {"defaults": {}, "overrides": []}, "options": {}}
    if unit:
        result["fieldConfig"]["defaults"]["unit"] = unit
    if traces:
        result["links"] = [TRACES_LINK]
    return result


def dashboard(uid, title, panels, annotations=()):
    x = y = 0
    for index, item in enumerate(panels):
        item["id"] = index + 1
        width = item["gridPos"]["w"]
        if x + width > 24:
            x, y = 0, y + 8
        item["gridPos"].update({"x": x, "y": y})
        x += width
    return {
        "uid": uid, "title": title, "tags": ["rondo", "federated-learning"], "timezone": "browser",
        "schemaVersion": 39, "version": 1, "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "label": "Prometheus", "current": {}, "hide": 0}]},
        "annotations": {"list": [
            {"name": name, "datasource": DS, "enable": True, "iconColor": color, "expr": expr,
             "titleFormat": name, "step": "60s"} for name, expr, color in annotations]},
        "links": [{"title": "Traces (Tempo)", "type": "link", "url": "/explore?left={\"datasource\":\"tempo\"}",
                   "icon": "external link", "targetBlank": True}],
        "panels": panels,
    }


overview = dashboard("rondo-overview", "Rondo / Federation overview", [
    panel("Round", ["rondo_round"], "stat", width=4),
    panel("Phase", ["max by (phase) (rondo_round_phase) == 1"], "stat", legends=["{{phase}}"], width=4),
    panel("Model version", ["rondo_model_version"], "stat", width=4),
    panel("Rounds by outcome", [f"sum by (outcome) (increase(rondo_rounds_total[$__range]))"], "bargauge",
          legends=["{{outcome}}"], width=12),
    panel("Round duration", [
        f"histogram_quantile({q}, sum by (le) (rate(rondo_round_duration_seconds_bucket[{RATE}])))"
        for q in ("0.5", "0.9", "0.99")], unit="s", legends=["p50", "p90", "p99"], traces=True),
    panel("Phase duration p90", [
        f"histogram_quantile(0.9, sum by (le, phase) (rate(rondo_round_phase_duration_seconds_bucket[{RATE}])))"],
        unit="s", legends=["{{phase}}"]),
    panel("Clients connected vs required", ["rondo_clients_connected", "rondo_clients_required", "rondo_clients_selected"],
          legends=["connected", "required", "selected last round"]),
    panel("Results by outcome", [f"sum by (kind, outcome) (rate(rondo_results_total[{RATE}]))"], unit="ops",
          legends=["{{kind}} {{outcome}}"]),
    panel("Dropouts by reason", [f"sum by (kind, reason) (rate(rondo_dropouts_total[{RATE}]))"], unit="ops",
          legends=["{{kind}} {{reason}}"], traces=True,
          description="Failed client.task spans carry rondo.dropout.reason."),
    panel("Rejections by reason", [f"sum by (reason) (rate(rondo_result_rejections_total[{RATE}]))"], unit="ops",
          legends=["{{reason}}"]),
    panel("Global evaluation accuracy", ["rondo_eval_accuracy"], unit="percentunit", legends=["accuracy"]),
    panel("Global evaluation loss", ["rondo_eval_loss"], legends=["loss"]),
    panel("Task duration p90", [
        f"histogram_quantile(0.9, sum by (le, kind) (rate(rondo_task_duration_seconds_bucket[{RATE}])))"],
        unit="s", legends=["{{kind}}"],
        description="Time from handing a task out to its accepted result; open the round's trace for one task.",
        traces=True),
    panel("Bytes in / out", [f"rate(rondo_update_bytes_received_total[{RATE}])", f"rate(rondo_model_bytes_sent_total[{RATE}])"],
          unit="Bps", legends=["updates received", "models sent"]),
], annotations=[
    ("Rollbacks", "changes(rondo_rollbacks_total{trigger=\"manual\"}[2m]) > 0", "orange"),
    ("Guard rejections", "changes(rondo_rollbacks_total{trigger=\"guard\"}[2m]) > 0", "red"),
])

health = dashboard("rondo-coordinator-health", "Rondo / Coordinator health", [
    panel("HTTP requests by route", [f"sum by (route) (rate(rondo_http_requests_total[{RATE}]))"], unit="reqps",
          legends=["{{route}}"]),
    panel("HTTP error ratio", [
        f"(sum(rate(rondo_http_requests_total{{status=~\"4..|5..\"}}[{RATE}])) or vector(0)) / sum(rate(rondo_http_requests_total[{RATE}]))"],
        unit="percentunit", legends=["4xx+5xx"]),
    panel("HTTP latency p90 by route", [
        f"histogram_quantile(0.9, sum by (le, route) (rate(rondo_http_request_duration_seconds_bucket[{RATE}])))"],
        unit="s", legends=["{{route}}"], description="Long-polls count their full wait.", traces=True),
    panel("Process CPU", [f"rate(process_cpu_seconds_total[{RATE}])"], unit="percentunit", legends=["cpu"]),
    panel("Resident memory", ["process_resident_memory_bytes"], unit="bytes", legends=["rss"]),
    panel("Open file descriptors", ["process_open_fds"], legends=["fds"]),
    panel("Checkpoint write duration p90", [
        f"histogram_quantile(0.9, sum by (le) (rate(rondo_checkpoint_write_duration_seconds_bucket[{RATE}])))"],
        unit="s", legends=["p90"]),
    panel("Checkpoint age", ["time() - rondo_last_checkpoint_success_timestamp_seconds"], unit="s", legends=["age"]),
    panel("Checkpoint writes", [f"sum by (outcome) (rate(rondo_checkpoint_writes_total[{RATE}]))"], unit="ops",
          legends=["{{outcome}}"]),
    panel("Trace exporter", [f"rate(rondo_trace_spans_exported_total[{RATE}])", f"rate(rondo_trace_spans_dropped_total[{RATE}])",
                             f"rate(rondo_trace_export_failures_total[{RATE}])"], unit="ops",
          legends=["exported", "dropped", "export failures"]),
])



def render():
    """File name -> JSON text of every dashboard."""
    return {f"{board['uid']}.json": json.dumps(board, indent=2, sort_keys=True) + "\n" for board in (overview, health)}


if __name__ == "__main__":
    for name, text in render().items():
        (HERE / "dashboards" / name).write_text(text)
