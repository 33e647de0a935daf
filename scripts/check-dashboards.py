"""Live check of the Grafana dashboards and Prometheus rules against a running federation.

    python scripts/check-dashboards.py .build/debug/rondo

Without a federation:
- the committed dashboard JSON is what Grafana/build_dashboards.py produces;
- every metric selector in a panel or annotation filters by the federation variables ($cluster, $namespace,
  $job, each a template variable), so two federations on one Prometheus can be told apart;
- each annotation, run by `promtool test rules` over made-up series, marks its event and does not mark a
  coordinator restart (a counter going N -> 0, or a scrape gap then 0).

Then it starts `rondo demo --keep-serving` and a real Prometheus (Debian's) on free 127.0.0.1 ports with the
repo's rules, resolves the template variables as Grafana would (label_values), and runs every panel and
annotation query through Prometheus' HTTP API, twice:
1. while rounds run: no query errors, every panel query returns series, none returns NaN;
2. after an operator rollback and a pause, once no round has finished within the rate window (a stuck
   federation): no query errors and no NaN (an empty panel shows its "no ... in the range" text), the
   paused state, the rollback and the pause show, and the firing-alerts count equals Prometheus' own.
It also checks that every metric family the coordinator exports (its `# HELP` lines, so families without
samples count) and the catalogue declares is used by a panel, an annotation or a rule, that queries name no
unknown metric, and that every rule group loaded healthy. Cleans up every process it started.
"""
import importlib.util
import json
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUNNING = {"$__rate_interval": "30s", "$__range": "5m", "$__interval": "10s"}
# Shorter windows once paused, so "nothing finished in the window" comes soon.
STUCK = {"$__rate_interval": "10s", "$__range": "5m", "$__interval": "10s"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right",
            "inf", "nan", "atan2"}

# Made-up series for each annotation, at 1-minute steps from 0, and the minutes at which the annotation
# must (True) or must not (False) mark. A counter: +1 at 3m, the coordinator restarts at 7m (N -> 0), is
# down from 11m to 14m, back at 0 from 15m. changes() would mark 7m, 8m; increase() must not.
COUNTER = "0 0 0 1 1 1 1 0 0 0 0 stale stale stale stale 0 0 0 0"
COUNTER_MARKS = {3: True, 4: True, 6: False, 7: False, 8: False, 9: False, 15: False, 16: False, 18: False}
ANNOTATION_SCENARIOS = {
    "Rollbacks": ({'rondo_rollbacks_total{job="rondo", trigger="manual"}': COUNTER}, COUNTER_MARKS),
    "Guard rejections": ({'rondo_rounds_total{job="rondo", outcome="rejected"}': COUNTER,
                          'rondo_rounds_total{job="rondo", outcome="committed"}': "0+1x18"}, COUNTER_MARKS),
    "Operator actions": ({'rondo_admin_actions_total{job="rondo", action="pause"}': COUNTER,
                          'rondo_admin_actions_total{job="rondo", action="rollback"}': "0 0 0 1 1 1 1 1 1 1"},
                         COUNTER_MARKS),
    # Started at 0 s, restarted at 8m after a 2-minute gap: the restart is marked as what it is.
    "Coordinator restarts": ({'process_start_time_seconds{job="rondo"}': "0 0 0 0 0 0 stale stale 480 480 480 480"},
                             {1: True, 5: False, 8: True, 9: True, 11: False}),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def call(url, token, method="GET", body=None):
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_for(check, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if check():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def substitute(expr, values):
    for variable in sorted(values, key=len, reverse=True):
        expr = expr.replace(variable, values[variable])
    return expr


def queries(board):
    """(what, panel type, expr) of every panel target and annotation."""
    found = [(f"{p['title']} [{t['refId']}]", p["type"], t["expr"]) for p in board["panels"] for t in p.get("targets", [])]
    return found + [(f"annotation {a['name']}", "annotation", a["expr"]) for a in board["annotations"]["list"]]


def selectors(expr):
    """(metric name, its {...} text or None) of every vector selector in a PromQL expression."""
    masked = re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: '"' + "x" * (len(m.group()) - 2) + '"', expr)
    braces = {m.start(): m.end() for m in re.finditer(r"\{[^}]*\}", masked)}
    for start, end in braces.items():
        masked = masked[:start] + " " * (end - start) + masked[end:]
    blank = lambda m: " " * len(m.group())  # noqa: E731
    masked = re.sub(r"\[[^\]]*\]", blank, masked)
    masked = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", blank, masked)
    for match in re.finditer(r'(?<![\w.:"])[A-Za-z_:][\w:]*', masked):
        name, after = match.group(), match.end()
        while after < len(masked) and masked[after] == " " and after not in braces:
            after += 1
        if name.lower() in KEYWORDS or (after < len(masked) and masked[after] == "("):
            continue
        yield name, expr[after:braces[after]] if after in braces else None


def families(name):
    """A series name -> the family it belongs to (histogram parts to the histogram)."""
    return {name, re.sub(r"_(bucket|sum|count)$", "", name)}


def check_static(rendered, problems):
    boards = {name: json.loads(text) for name, text in rendered.items()}
    for name, text in rendered.items():
        committed = ROOT / "Grafana" / "dashboards" / name
        if not committed.is_file() or committed.read_text() != text:
            problems.append(f"{committed} differs from Grafana/build_dashboards.py output (run it and commit)")

    federation = None
    mixin = ROOT / "Prometheus" / "mixin.yaml"
    if mixin.is_file():
        try:
            import yaml
            federation = yaml.safe_load(mixin.read_text()).get("federationLabels")
        except ImportError:
            pass
    for name, board in boards.items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        labels = [v for v in variables if v != "datasource"]
        if "datasource" not in variables or "job" not in labels or "cluster" not in labels:
            problems.append(f"{name}: template variables {list(variables)} lack datasource, cluster or job")
        if federation and set(labels) != set(federation):
            problems.append(f"{name}: variables {labels} differ from Prometheus/mixin.yaml federationLabels {federation}")
        for label in labels:
            variable = variables[label]
            if label != "job" and not (variable.get("includeAll") and variable.get("allValue") == ".*"):
                problems.append(f"{name}: ${label} may be absent, so it needs All with allValue .*")
        for panel in board["panels"]:
            for item in [panel] + panel.get("targets", []):
                if panel["type"] != "row" and item.get("datasource", {}).get("uid") != "${datasource}":
                    problems.append(f"{name} / {panel['title']}: datasource is not ${{datasource}}")
        for what, _, expr in queries(board):
            for metric, matchers in selectors(expr):
                missing = [label for label in labels if f'{label}=~"${label}"' not in (matchers or "")]
                if missing:
                    problems.append(f"{name} / {what}: {metric} is not filtered by {', '.join('$' + m for m in missing)}")
    return boards


def check_annotation_scenarios(boards, work, problems):
    """promtool runs each annotation over made-up series (counter increments, resets, scrape gaps)."""
    annotations = {a["name"]: a["expr"] for board in boards.values() for a in board["annotations"]["list"]}
    tests = []
    for name, expr in sorted(annotations.items()):
        if name not in ANNOTATION_SCENARIOS:
            problems.append(f"annotation {name} has no scenario in ANNOTATION_SCENARIOS (restart safety untested)")
            continue
        series, marks = ANNOTATION_SCENARIOS[name]
        expr = substitute(expr, {"$cluster": ".*", "$namespace": ".*", "$job": ".*"})
        tests.append({"name": name, "interval": "1m",
                      "input_series": [{"series": s, "values": v} for s, v in series.items()],
                      "promql_expr_test": [
                          {"expr": f"count({expr}) or vector(0)", "eval_time": f"{minute}m",
                           "exp_samples": [{"labels": "{}", "value": 1 if marked else 0}]}
                          for minute, marked in sorted(marks.items())]})
    if not tests:
        return
    path = work / "annotation-tests.yml"
    path.write_text(json.dumps({"rule_files": [], "evaluation_interval": "1m", "tests": tests}, indent=1))
    result = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        problems.append("annotations mark the wrong moments (promtool):\n" + result.stdout + result.stderr)
    else:
        print(f"annotations: {len(tests)} restart/increment scenarios pass (promtool)")


def resolve_variables(board, base, problems):
    """Template variable -> the value Grafana would substitute on opening the dashboard."""
    values = {}
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        definition = substitute(variable["definition"], values)
        match = re.fullmatch(r"label_values\((?:(.*),\s*)?(\w+)\)", definition)
        if not match:
            problems.append(f"${variable['name']}: cannot resolve {definition}")
            values["$" + variable["name"]] = ".*"
            continue
        url = f"{base}/api/v1/label/{match.group(2)}/values"
        if match.group(1):
            url += "?" + urllib.parse.urlencode({"match[]": match.group(1)})
        options = sorted(get(url)["data"])
        if variable.get("includeAll"):
            values["$" + variable["name"]] = variable.get("allValue", ".*")
        elif options:
            values["$" + variable["name"]] = options[0]
        else:
            problems.append(f"${variable['name']}: {definition} has no value, so the dashboard would show nothing")
            values["$" + variable["name"]] = ".*"
    return values


def run_queries(boards, base, variables, windows, problems, stuck):
    """Runs every query; returns {(board name, what): result}."""
    results = {}
    for name, board in boards.items():
        for what, kind, expr in queries(board):
            expr = substitute(substitute(expr, variables[name]), windows)
            try:
                answer = get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
            except urllib.error.HTTPError as error:
                answer = json.loads(error.read() or b"{}")
            if answer.get("status") != "success":
                problems.append(f"{name} / {what}: {answer.get('error')} in {expr}")
                continue
            result = answer["data"]["result"]
            results[(name, what)] = result
            nan = [s["metric"] for s in result if s["value"][1] == "NaN"]
            if nan:
                problems.append(f"{name} / {what}: NaN {'while stuck ' if stuck else ''}for {nan}: {expr}")
            elif not result and kind != "annotation" and not stuck:
                problems.append(f"{name} / {what}: no series for {expr}")
            print(f"{name} / {what}: {len(result)} series{' (shows its no-data text)' if not result else ''}")
    return results


def value(results, key, problems):
    if key not in results:
        problems.append(f"{key[0]} / {key[1]}: no such query (renamed?)")
        return None
    return [float(s["value"][1]) for s in results[key]]


def main():
    rondo = pathlib.Path(sys.argv[1]).resolve()
    problems = []

    spec = importlib.util.spec_from_file_location("build_dashboards", ROOT / "Grafana" / "build_dashboards.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    rendered = builder.render()
    boards = check_static(rendered, problems)

    work = pathlib.Path(tempfile.mkdtemp(prefix="rondo-dashboards-"))
    check_annotation_scenarios(boards, work, problems)
    rondo_port, prometheus_port = free_port(), free_port()
    processes = []
    try:
        processes.append(subprocess.Popen(
            # Goal-count selection: a round wants 3 results from 4 clients asked (3 × 1.25, rounded up).
            # Differential privacy with little noise, so the Privacy row has series.
            [str(rondo), "demo", "--clients", "4", "--rounds", "1000000", "--port", str(rondo_port),
             "--data-dir", str(work / "data"), "--keep-serving", "--no-guard", "--goal-count", "3",
             "--over-selection", "1.25", "--dp-noise-multiplier", "0.3", "--dp-clip-norm", "10"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        rondo_base = f"http://127.0.0.1:{rondo_port}"
        wait_for(lambda: get(f"{rondo_base}/healthz")["status"] == "ok", 60, "the coordinator")

        config = (ROOT / "Prometheus" / "prometheus.yml").read_text()
        config = config.replace("scrape_interval: 15s", "scrape_interval: 2s")
        config = config.replace("evaluation_interval: 15s", "evaluation_interval: 2s")
        config = config.replace('"127.0.0.1:8470"', f'"127.0.0.1:{rondo_port}"')
        config = config.replace("- rules/", f"- {ROOT}/Prometheus/rules/")
        (work / "prometheus.yml").write_text(config)
        processes.append(subprocess.Popen(
            ["prometheus", f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prometheus_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        base = f"http://127.0.0.1:{prometheus_port}"
        wait_for(lambda: urllib.request.urlopen(f"{base}/-/ready", timeout=5).status == 200, 60, "Prometheus")
        # Several scrapes, so rate() over 30s windows has data.
        wait_for(lambda: len(get(f"{base}/api/v1/query?query=rondo_round")["data"]["result"]) > 0, 60, "a scrape")
        time.sleep(20)

        variables = {name: resolve_variables(board, base, problems) for name, board in boards.items()}
        print("template variables:", variables)
        print("-- while rounds run")
        run_queries(boards, base, variables, RUNNING, problems, stuck=False)

        # Every exported family (# HELP, with or without samples) and every catalogue entry is used somewhere.
        with urllib.request.urlopen(f"{rondo_base}/metrics", timeout=5) as response:
            exposition = response.read().decode()
        exported = set(re.findall(r"^# HELP (\S+)", exposition, re.M))
        catalogue = set(re.findall(r'Definition\(\s*"([a-z_:]+)"', (
            ROOT / "Sources" / "FederationTelemetry" / "MetricCatalogue.swift").read_text()))
        if catalogue - exported:
            print("note: in the catalogue but not exported by this binary:", sorted(catalogue - exported))
        groups = get(f"{base}/api/v1/rules")["data"]["groups"]
        rule_exprs = [rule["query"] for group in groups for rule in group["rules"]]
        recorded = {rule["name"] for group in groups for rule in group["rules"] if rule["type"] == "recording"}
        used = {}
        for name, board in boards.items():
            for what, _, expr in queries(board):
                for metric, _ in selectors(expr):
                    for family in families(metric):
                        used.setdefault(family, f"{name} / {what}")
                    if not (families(metric) & (exported | catalogue | recorded | {"up", "ALERTS"})):
                        problems.append(f"{name} / {what}: unknown metric {metric}")
        for expr in rule_exprs:
            for metric, _ in selectors(expr):
                for family in families(metric):
                    used.setdefault(family, "a rule")
        unused = sorted((exported | catalogue) - set(used))
        for metric in unused:
            problems.append(f"{metric} is exported but no panel, annotation or rule uses it")
        print(f"{len(exported | catalogue)} metric families, {len(unused)} unused")

        # An operator rolls back and pauses; once no round finishes within the window, the federation looks
        # stuck to every rate() and quantile.
        token = (work / "data" / "admin-token").read_text().strip()
        status = call(f"{rondo_base}/v1/status", token)
        call(f"{rondo_base}/v1/checkpoints/{status['model_version'] - 1}/rollback", token, "POST",
             {"reason": "check-dashboards"})
        call(f"{rondo_base}/v1/federation/pause", token, "POST")
        wait_for(lambda: call(f"{rondo_base}/v1/status", token)["phase"] in ("selecting", "finished"), 60,
                 "the open round to end after the pause")
        raw = "histogram_quantile(0.5, sum by (le) (rate(rondo_round_duration_seconds_bucket[10s])))"
        wait_for(lambda: get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": raw}))
                 ["data"]["result"][0]["value"][1] == "NaN", 60, "no round finishing within 10s (a bare quantile is NaN)")
        time.sleep(3)  # one more scrape and rule evaluation
        print("-- paused, no round finished within the rate window (a bare quantile is NaN now)")
        stuck = run_queries(boards, base, variables, STUCK, problems, stuck=True)
        overview = "rondo-overview.json"
        if value(stuck, (overview, "Federation [A]"), problems) != [1.0]:
            problems.append(f"the Federation stat does not show paused: {stuck.get((overview, 'Federation [A]'))}")
        for annotation in ("Rollbacks", "Operator actions"):
            if value(stuck, (overview, f"annotation {annotation}"), problems) == []:
                problems.append(f"annotation {annotation} does not mark the rollback and pause just done")
        firing = get(f"{base}/api/v1/query?" + urllib.parse.urlencode(
            {"query": 'count(ALERTS{alertname=~"Rondo.*", alertstate="firing"}) or vector(0)'}))["data"]["result"]
        shown = value(stuck, (overview, "Firing Rondo alerts [A]"), problems)
        if shown != [float(firing[0]["value"][1])]:
            problems.append(f"Firing Rondo alerts shows {shown}, Prometheus has {firing[0]['value'][1]} firing: "
                            "alerts lose the federation labels")
        print(f"firing Rondo alerts: {shown}")

        for group in groups:
            for rule in group["rules"]:
                if rule.get("health") != "ok":
                    problems.append(f"rule {rule['name']}: health {rule.get('health')} {rule.get('lastError', '')}")
        if {g["name"] for g in groups} != {"rondo-recording", "rondo-alerts"}:
            problems.append(f"rule groups loaded: {[g['name'] for g in groups]}")
        print(f"{sum(len(g['rules']) for g in groups)} rules loaded")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)

    for problem in problems:
        print("PROBLEM", problem)
    print("dashboards and rules:", "ok" if not problems else "FAILED")
    sys.exit(1 if problems else 0)


main()
