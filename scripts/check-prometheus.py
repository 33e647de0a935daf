"""Checks the Prometheus artifacts beyond what promtool checks: every alert has a severity, summary,
description and a runbook_url that exists, and the unit tests hold a case where it fires and one where it
must not. Run by `make test` after promtool check config / check rules / test rules."""
import pathlib
import sys

import yaml

root = pathlib.Path(__file__).resolve().parent.parent / "Prometheus"
alerts = {}
for rule_file in (root / "rules").glob("*.yml"):
    for group in yaml.safe_load(rule_file.read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                alerts[rule["alert"]] = rule

fires, quiet = set(), set()
for test_file in (root / "tests").glob("*.yml"):
    for test in yaml.safe_load(test_file.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])

problems = []
for name, rule in sorted(alerts.items()):
    labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
    if not name.startswith("Rondo"):
        problems.append(f"{name}: alert names start with Rondo")
    if labels.get("severity") not in {"critical", "warning", "info"}:
        problems.append(f"{name}: severity must be critical, warning or info")
    for key in ("summary", "description", "runbook_url"):
        if not annotations.get(key):
            problems.append(f"{name}: missing {key}")
    runbook = root.parent / annotations.get("runbook_url", "")
    if not runbook.is_file():
        problems.append(f"{name}: runbook {runbook} does not exist")
    if name not in fires:
        problems.append(f"{name}: no test case where it fires")
    if name not in quiet:
        problems.append(f"{name}: no test case where it must not fire")

# The Kubernetes PrometheusRule must be generated from these files, never a hand-kept copy.
generator = root.parent / "Deploy" / "kubernetes" / "generate_prometheusrule.py"
namespace = {"__file__": str(generator), "__name__": "generate_prometheusrule"}
exec(compile(generator.read_text(), str(generator), "exec"), namespace)
if (root.parent / "Deploy" / "kubernetes" / "prometheusrule.yaml").read_text() != namespace["render"]():
    problems.append("Deploy/kubernetes/prometheusrule.yaml is stale: run Deploy/kubernetes/generate_prometheusrule.py")
# The generated rules still hold the same groups and rules as the files.
generated = yaml.safe_load(namespace["render"]())["spec"]["groups"]
if sum(len(g["rules"]) for g in generated) != sum(
    len(g["rules"]) for f in (root / "rules").glob("*.yml") for g in yaml.safe_load(f.read_text())["groups"]
):
    problems.append("the generated PrometheusRule lost rules")

# Deployment and provisioning files must at least be valid YAML with the expected kinds.
for path in sorted((root.parent / "Deploy").rglob("*.y*ml")) + sorted((root.parent / "Grafana" / "provisioning").rglob("*.yaml")):
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as error:
        problems.append(f"{path}: {error}")
        continue
    if path.parent.name == "kubernetes" and not all("kind" in d and "apiVersion" in d for d in documents):
        problems.append(f"{path}: every Kubernetes document needs apiVersion and kind")

for problem in problems:
    print("PROBLEM", problem)
print(f"{len(alerts)} alerts checked: {'ok' if not problems else 'FAILED'}")
sys.exit(1 if problems else 0)
