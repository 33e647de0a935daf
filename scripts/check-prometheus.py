"""Checks the Prometheus artifacts beyond what promtool checks. Run by `make prometheus-check` (part of
`make test`) after promtool check config / check rules / test rules.

- Prometheus/rules/*.yml, Deploy/kubernetes/prometheusrule.yaml and the unit tests' runbook_url lines are what
  Prometheus/generate_rules.py makes of Prometheus/mixin.yaml (never hand-edited copies).
- Every alert has a severity, summary, a description naming its federation, and a runbook_url that is an
  absolute https URL under the configured runbookBaseURL whose file exists in Prometheus/runbooks/; every
  runbook is linked and states its "Time to detect".
- Every aggregation keeps the federation labels (`by (cluster, namespace, job)`) and every join matches on
  them, so two federations can share one Prometheus.
- The unit tests hold, for every alert, a case where it fires and one where it must not, and a firing case
  with two federations in which only the broken one fires.
"""
import importlib.util
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "Prometheus"
RUNBOOKS = PROMETHEUS / "runbooks"


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


problems = []
generator = load(PROMETHEUS / "generate_rules.py", "generate_rules")
config = generator.load_config()
base = config["runbookBaseURL"]
federation_labels = config["federationLabels"]

# 1. Generated files are fresh.
for path, text in generator.render(config).items():
    if not path.is_file() or path.read_text() != text:
        problems.append(f"{path.relative_to(ROOT)} is stale: run .venv/bin/python Prometheus/generate_rules.py")
kubernetes = load(ROOT / "Deploy" / "kubernetes" / "generate_prometheusrule.py", "generate_prometheusrule")
if (ROOT / "Deploy" / "kubernetes" / "prometheusrule.yaml").read_text() != kubernetes.render():
    problems.append("Deploy/kubernetes/prometheusrule.yaml differs from Deploy/kubernetes/generate_prometheusrule.py")

# 2. Alerts and runbooks.
alerts, expressions = {}, []
for rule_file in sorted((PROMETHEUS / "rules").glob("*.yml")):
    for group in yaml.safe_load(rule_file.read_text())["groups"]:
        for rule in group["rules"]:
            expressions.append((rule.get("alert") or rule.get("record"), rule["expr"]))
            if "alert" in rule:
                alerts[rule["alert"]] = rule

linked = set()
for name, rule in sorted(alerts.items()):
    labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
    if not name.startswith("Rondo"):
        problems.append(f"{name}: alert names start with Rondo")
    if labels.get("severity") not in {"critical", "warning", "info"}:
        problems.append(f"{name}: severity must be critical, warning or info")
    for key in ("summary", "description", "runbook_url"):
        if not annotations.get(key):
            problems.append(f"{name}: missing {key}")
    if f"$labels.{federation_labels[-1]}" not in annotations.get("description", ""):
        problems.append(f"{name}: the description must name the federation ({{{{ $labels.{federation_labels[-1]} }}}})")
    url = annotations.get("runbook_url", "")
    if not url.startswith("https://") or not url.startswith(base + "/"):
        problems.append(f"{name}: runbook_url {url!r} is not an absolute https URL under runbookBaseURL {base}")
        continue
    runbook = url.removeprefix(base + "/")
    if "/" in runbook or not (RUNBOOKS / runbook).is_file():
        problems.append(f"{name}: runbook_url {url} names {runbook}, which is not a file in Prometheus/runbooks/")
        continue
    linked.add(runbook)
for runbook in sorted(set(RUNBOOKS.glob("*.md")) - {RUNBOOKS / "README.md"}):
    if runbook.name not in linked:
        problems.append(f"Prometheus/runbooks/{runbook.name}: no alert links it")
    if not re.search(r"^\*\*Time to detect\.\*\*", runbook.read_text(), flags=re.MULTILINE):
        problems.append(f"Prometheus/runbooks/{runbook.name}: no '**Time to detect.**' line")

# 3. Federation labels survive every aggregation and join.
AGGREGATION = re.compile(
    r"\b(sum|avg|min|max|count|group|stddev|stdvar|topk|bottomk|quantile|count_values)\s*"
    r"(?:(by|without)\s*\(([^()]*)\)\s*)?\(")
MATCHING = re.compile(r"\b(on|ignoring)\s*\(([^()]*)\)")
for name, expr in expressions:
    for operator, clause, grouping in AGGREGATION.findall(expr):
        listed = {label.strip() for label in grouping.split(",") if label.strip()}
        if clause != "by" or not set(federation_labels) <= listed:
            problems.append(f"{name}: `{operator}` must aggregate `by ({', '.join(federation_labels)}, ...)`")
    for clause, grouping in MATCHING.findall(expr):
        listed = {label.strip() for label in grouping.split(",") if label.strip()}
        keeps = set(federation_labels) <= listed if clause == "on" else not listed & set(federation_labels)
        if not keeps:
            problems.append(f"{name}: joins must match `on ({', '.join(federation_labels)})`, found {clause} ({grouping})")

# 4. Unit test coverage.
SERIES_LABEL = re.compile(r'(\w+)\s*=\s*"([^"]*)"')
fires, quiet, two_federations = set(), set(), set()
for test_file in sorted((PROMETHEUS / "tests").glob("*.yml")):
    for test in yaml.safe_load(test_file.read_text())["tests"]:
        federations = set()
        for series in test.get("input_series", []):
            labels = dict(SERIES_LABEL.findall(series["series"]))
            if labels.get(federation_labels[-1]):
                federations.add(tuple(labels.get(label, "") for label in federation_labels))
        for case in test.get("alert_rule_test", []):
            expected = case.get("exp_alerts") or []
            (fires if expected else quiet).add(case["alertname"])
            if expected and len(federations) >= 2 and all(federation_labels[-1] in a["exp_labels"] for a in expected):
                two_federations.add(case["alertname"])
for name in sorted(alerts):
    if name not in fires:
        problems.append(f"{name}: no test case where it fires")
    if name not in quiet:
        problems.append(f"{name}: no test case where it must not fire")
    if name not in two_federations:
        problems.append(f"{name}: no test case where it fires for one of two federations only")

# 5. Deployment and provisioning files must at least be valid YAML with the expected kinds.
for path in sorted((ROOT / "Deploy").rglob("*.y*ml")) + sorted((ROOT / "Grafana" / "provisioning").rglob("*.yaml")):
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as error:
        problems.append(f"{path}: {error}")
        continue
    if "kubernetes" in path.relative_to(ROOT).parts and not all("kind" in d and "apiVersion" in d for d in documents):
        problems.append(f"{path}: every Kubernetes document needs apiVersion and kind")

for problem in problems:
    print("PROBLEM", problem)
print(f"{len(alerts)} alerts, {len(expressions)} rules checked: {'ok' if not problems else 'FAILED'}")
sys.exit(1 if problems else 0)
