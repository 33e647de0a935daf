"""Building blocks of Rondo's dashboards: query helpers, panels, rows, template variables and the dashboard
frame (Grafana/build_dashboards.py lays them out; its docstring states the conventions they keep)."""
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
# The labels that tell one federation from another (Prometheus/mixin.yaml's federationLabels): `cluster` and
# `namespace` may be absent (a regex matcher ".*" also matches a missing label), `job` is the scrape job.
FEDERATION = ("cluster", "namespace", "job")
ID = ", ".join(FEDERATION)
FILTER = ", ".join(f'{label}=~"${label}"' for label in FEDERATION)


TRACES_LINK = {
    "title": "Find the round's trace in Tempo",
    "url": "/explore?left=" + '{"datasource":"tempo","queries":[{"refId":"A","queryType":"traceqlSearch","query":"{ name = \\"rondo.round\\" }"}]}',
    "targetBlank": True,
}


def sel(metric, matchers=""):
    """`metric{matchers, cluster=~"$cluster", namespace=~"$namespace", job=~"$job"}`."""
    return f"{metric}{{{matchers + ', ' if matchers else ''}{FILTER}}}"


def by(*labels):
    return ", ".join((ID,) + labels)


def quantile(q, histogram, *labels):
    """The q-quantile of a histogram over the rate window, only where something was observed in it (a bare
    histogram_quantile over all-zero rates is NaN)."""
    group = by(*labels)
    return (f"histogram_quantile({q}, sum by (le, {group}) (rate({sel(histogram + '_bucket')}[{RATE}])))"
            f" and on ({group}) sum by ({group}) (rate({sel(histogram + '_count')}[{RATE}])) > 0")


def mean(histogram, *labels):
    """Mean observation over the rate window; no series (not NaN) when nothing was observed."""
    group = by(*labels)
    return (f"sum by ({group}) (rate({sel(histogram + '_sum')}[{RATE}]))"
            f" / (sum by ({group}) (rate({sel(histogram + '_count')}[{RATE}])) > 0)")


def rate_by(metric, *labels, matchers="", function="rate"):
    """`sum by (cluster, namespace, job, labels) (rate(metric{...}[$__rate_interval]))`."""
    return f"sum by ({by(*labels)}) ({function}({sel(metric, matchers)}[{RATE}]))"


def since(timestamp):
    """Seconds since a Unix-time gauge; no series while it is 0 (never happened)."""
    return f"time() - {sel(timestamp)} and {sel(timestamp)} > 0"


def thresholds(*steps):
    """(color, from value) steps; the first applies from -inf."""
    return {"mode": "absolute",
            "steps": [{"color": color, "value": None if i == 0 else value} for i, (color, value) in enumerate(steps)]}


def value_map(values, nan=None):
    """Grafana value mappings: {value: (text, color)}, plus NaN/null shown as text."""
    mappings = []
    if values:
        mappings.append({"type": "value", "options": {
            key: {"text": text, "color": color, "index": i} for i, (key, (text, color)) in enumerate(values.items())}})
    if nan:
        mappings.append({"type": "special", "options": {"match": "nan", "result": {"text": nan, "index": len(values or ())}}})
    return mappings


def panel(title, exprs, kind="timeseries", unit=None, legends=None, width=12, description="", traces=False,
          height=8, no_value=None, mappings=None, steps=None, options=None, custom=None, overrides=None,
          decimals=None):
    instant = kind in ("stat", "bargauge")
    targets = []
    for i, expr in enumerate(exprs):
        target = {"refId": chr(65 + i), "datasource": DS, "expr": expr,
                  "legendFormat": (legends or [""] * len(exprs))[i]}
        if instant:
            target.update({"instant": True, "range": False})
        targets.append(target)
    defaults = {}
    if unit:
        defaults["unit"] = unit
    if decimals is not None:
        defaults["decimals"] = decimals
    if no_value:
        defaults["noValue"] = no_value
    if mappings or no_value:
        defaults["mappings"] = mappings or value_map(None, nan=no_value)
    if steps:
        defaults["thresholds"] = thresholds(*steps)
    elif kind in ("stat", "bargauge"):
        defaults["thresholds"] = thresholds(("blue", None))  # not Grafana's default red above 80
    if custom:
        defaults["custom"] = custom
    result = {"type": kind, "title": title, "description": description, "datasource": DS, "targets": targets,
              "gridPos": {"w": width, "h": height}, "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
              "options": {}}
    if kind == "stat":
        result["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                             "colorMode": "value" if steps or mappings else "none", "graphMode": "none",
                             "textMode": "auto", "justifyMode": "auto", "orientation": "auto"}
    result["options"].update(options or {})
    if traces:
        result["links"] = [TRACES_LINK]
    return result


def stat(title, exprs, width, **kwargs):
    return panel(title, exprs, "stat", width=width, height=kwargs.pop("height", 4), **kwargs)


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24, "h": 1}}


def right_axis(ref_id, unit):
    """Field override: the query ref_id's series on a right-hand axis in its own unit."""
    return {"matcher": {"id": "byFrameRefID", "options": ref_id},
            "properties": [{"id": "unit", "value": unit}, {"id": "custom.axisPlacement", "value": "right"}]}


def variable(name, query, include_all):
    result = {"name": name, "label": name, "type": "query", "datasource": DS,
              "query": {"query": query, "refId": f"{name}-variable"}, "definition": query,
              "refresh": 2, "sort": 1, "hide": 0, "multi": False, "includeAll": include_all, "current": {},
              "options": [], "regex": ""}
    if include_all:
        result["allValue"] = ".*"
    return result


TEMPLATING = [
    {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus", "current": {}, "hide": 0},
    # Absent on a single-cluster Prometheus: then only All (.*) is offered, which also matches no label.
    variable("cluster", "label_values(rondo_build_info, cluster)", include_all=True),
    # Set by the Prometheus Operator (two federations in two namespaces share the job name); else absent.
    variable("namespace", 'label_values(rondo_build_info{cluster=~"$cluster"}, namespace)', include_all=True),
    # One federation (scrape job) at a time; two on one Prometheus are told apart by it.
    variable("job", 'label_values(rondo_build_info{cluster=~"$cluster", namespace=~"$namespace"}, job)',
             include_all=False),
]


def annotation(name, expr, color, text="", tags=""):
    return {"name": name, "datasource": DS, "enable": True, "iconColor": color, "expr": expr, "titleFormat": name,
            "textFormat": text, "tagKeys": tags, "step": "60s"}


# A coordinator (re)start: its process started within the last 2 minutes. Unlike changes() of the start time,
# it also marks a restart after an outage longer than the window. Its counters restart at 0 then, which the
# other annotations' increase() treats as a reset, not as an event.
RESTARTS = annotation(
    "Coordinator restarts", f"{sel('process_start_time_seconds')} > time() - 120", "blue",
    text="coordinator process started (counters restart at 0)")


def dashboard(uid, title, panels, annotations=()):
    x = y = line_height = 0
    for index, item in enumerate(panels):
        item["id"] = index + 1
        width, height = item["gridPos"]["w"], item["gridPos"]["h"]
        if item["type"] == "row" or x + width > 24:
            x, y, line_height = 0, y + line_height, 0
        item["gridPos"].update({"x": x, "y": y})
        x += width
        line_height = max(line_height, height)
    return {
        "uid": uid, "title": title, "tags": ["rondo", "federated-learning"], "timezone": "browser",
        "schemaVersion": 39, "version": 1, "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": TEMPLATING},
        "annotations": {"list": list(annotations)},
        "links": [{"title": "Traces (Tempo)", "type": "link", "url": "/explore?left={\"datasource\":\"tempo\"}",
                   "icon": "external link", "targetBlank": True}],
        "panels": panels,
    }


def up(width):
    return stat("Coordinator up", [sel("up")], width, legends=["{{instance}}"], no_value="not scraped",
                mappings=value_map({"1": ("up", "green"), "0": ("DOWN", "red")}),
                description="Prometheus' scrape of the coordinator (`up`).")


def firing(width):
    return stat(
        "Firing Rondo alerts", ["count(" + sel("ALERTS", 'alertname=~"Rondo.*", alertstate="firing"') + ") or vector(0)"],
        width, steps=[("green", None), ("red", 1)],
        description="Rondo alerts firing now (pending ones not counted); 0 when none. Alertmanager lists them.")
