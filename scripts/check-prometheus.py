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

for problem in problems:
    print("PROBLEM", problem)
print(f"{len(alerts)} alerts checked: {'ok' if not problems else 'FAILED'}")
sys.exit(1 if problems else 0)
