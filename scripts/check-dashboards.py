"""Live check of the Grafana dashboards and Prometheus rules against a running federation.

Starts `rondo demo --keep-serving` and a real Prometheus (Debian's) on free 127.0.0.1 ports with the repo's
rules, waits for several scrapes, then runs every PromQL expression of every dashboard panel and annotation
through Prometheus' HTTP API (Grafana-only variables substituted) and fails if one errors or returns no
series. Also checks that every rule group loaded healthy and that the committed dashboard JSON is what
Grafana/build_dashboards.py produces. Cleans up every process it started.

    python scripts/check-dashboards.py .build/debug/rondo
"""
import importlib.util
import json
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
SUBSTITUTIONS = {"$__rate_interval": "30s", "$__range": "5m", "$__interval": "10s"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
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


def main():
    rondo = pathlib.Path(sys.argv[1]).resolve()
    problems = []

    spec = importlib.util.spec_from_file_location("build_dashboards", ROOT / "Grafana" / "build_dashboards.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    rendered = builder.render()
    for name, text in rendered.items():
        committed = ROOT / "Grafana" / "dashboards" / name
        if not committed.is_file() or committed.read_text() != text:
            problems.append(f"{committed} differs from Grafana/build_dashboards.py output (run it and commit)")

    work = pathlib.Path(tempfile.mkdtemp(prefix="rondo-dashboards-"))
    rondo_port, prometheus_port = free_port(), free_port()
    processes = []
    try:
        processes.append(subprocess.Popen(
            [str(rondo), "demo", "--clients", "4", "--rounds", "1000000", "--port", str(rondo_port),
             "--data-dir", str(work / "data"), "--keep-serving", "--no-guard"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for(lambda: get(f"http://127.0.0.1:{rondo_port}/healthz")["status"] == "ok", 60, "the coordinator")

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

        for name, text in rendered.items():
            board = json.loads(text)
            expressions = [(p["title"], t["expr"]) for p in board["panels"] for t in p["targets"]]
            expressions += [(f"annotation {a['name']}", a["expr"]) for a in board["annotations"]["list"]]
            for title, expr in expressions:
                for variable, value in SUBSTITUTIONS.items():
                    expr = expr.replace(variable, value)
                answer = get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
                if answer.get("status") != "success":
                    problems.append(f"{name} / {title}: {answer.get('error')}")
                elif not answer["data"]["result"] and not title.startswith("annotation"):
                    problems.append(f"{name} / {title}: no series for {expr}")
                print(f"{name} / {title}: {len(answer['data']['result'])} series")

        groups = get(f"{base}/api/v1/rules")["data"]["groups"]
        if {g["name"] for g in groups} != {"rondo-recording", "rondo-alerts"}:
            problems.append(f"rule groups loaded: {[g['name'] for g in groups]}")
        for group in groups:
            for rule in group["rules"]:
                if rule.get("health") != "ok":
                    problems.append(f"rule {rule['name']}: health {rule.get('health')} {rule.get('lastError', '')}")
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
