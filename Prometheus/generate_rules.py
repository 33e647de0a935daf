"""Rondo's Prometheus rules, written once here and rendered with the settings in Prometheus/mixin.yaml into
    Prometheus/rules/rondo-recording.yml      (recording rules)
    Prometheus/rules/rondo-alerts.yml         (alerts; each links its runbook in Prometheus/runbooks/)
    Deploy/kubernetes/prometheusrule.yaml     (the same groups as a prometheus-operator PrometheusRule)
and keeps the runbook_url lines of the hand-written unit tests in Prometheus/tests/ on the configured base.
Never edit those files by hand: change the rules (Prometheus/rule_catalogue.py) or mixin.yaml, then run
    .venv/bin/python Prometheus/generate_rules.py
scripts/check-prometheus.py fails when a committed file differs from what this produces.

In the rules, three placeholders stand for the settings:
    ${fed}          the federation labels, comma-separated (`cluster, namespace, job`): `sum by (${fed})`,
                    `on (${fed})`. Every aggregation and join keeps them, so federations never mix.
    ${up}           the coordinatorSelector label matchers, for `up{${up}}`.
    ${federation}   a Go template naming the alert's federation from those labels (`team-a/rondo`).
and each alert's `runbook` becomes its runbook_url annotation, <runbookBaseURL>/<runbook>.md.
"""
import pathlib
import re
import sys

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIG = ROOT / "Prometheus" / "mixin.yaml"
RECORDING = ROOT / "Prometheus" / "rules" / "rondo-recording.yml"
ALERTS = ROOT / "Prometheus" / "rules" / "rondo-alerts.yml"
KUBERNETES = ROOT / "Deploy" / "kubernetes" / "prometheusrule.yaml"

from rule_catalogue import ALERT_RULES, RECORDING_RULES  # noqa: E402  (next to this file)

GROUPS = [("rondo-recording", RECORDING_RULES, RECORDING), ("rondo-alerts", ALERT_RULES, ALERTS)]
KEY_ORDER = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")


def load_config(path=CONFIG):
    config = yaml.safe_load(path.read_text())
    base, labels = config["runbookBaseURL"], config["federationLabels"]
    if not base.startswith("https://") or base.endswith("/"):
        raise SystemExit(f"{path}: runbookBaseURL must be an https:// URL without a trailing slash")
    if not labels or not all(re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", label) for label in labels):
        raise SystemExit(f"{path}: federationLabels must be a non-empty list of label names")
    return config


def federation_template(labels):
    """`{{ with $labels.cluster }}{{ . }}/{{ end }}...{{ $labels.job }}`: the present labels, joined by `/`."""
    *outer, last = labels
    return "".join(f"{{{{ with $labels.{label} }}}}{{{{ . }}}}/{{{{ end }}}}" for label in outer) + (
        f"{{{{ $labels.{last} }}}}"
    )


def substitute(text, config):
    values = {
        "fed": ", ".join(config["federationLabels"]),
        "up": config["coordinatorSelector"],
        "federation": federation_template(config["federationLabels"]),
    }
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)  # an unknown placeholder is a KeyError


def rules(config):
    """The groups, settings applied, as plain data: [(name, [(comment, rule)], output path)]."""
    groups = []
    for name, templates, path in GROUPS:
        rendered = []
        for template in templates:
            unknown = set(template) - set(KEY_ORDER) - {"comment", "runbook"}
            assert not unknown, f"{template.get('alert') or template.get('record')}: unknown keys {unknown}"
            rule = {}
            for key in KEY_ORDER:
                if key in template:
                    value = template[key]
                    rule[key] = (
                        {k: substitute(v, config) for k, v in value.items()}
                        if isinstance(value, dict)
                        else substitute(value, config)
                    )
            if "runbook" in template:
                rule["annotations"]["runbook_url"] = f"{config['runbookBaseURL']}/{template['runbook']}.md"
            rendered.append((template.get("comment"), rule))
        groups.append((name, rendered, path))
    return groups


def scalar(value):
    """A one-line YAML scalar, quoted only when YAML needs it."""
    text = yaml.safe_dump(value, width=1_000_000, allow_unicode=True)
    return text.removesuffix("\n...\n").rstrip("\n")


def emit_groups(groups, indent=""):
    lines = [f"{indent}groups:"]
    for name, rendered, _ in groups:
        lines += [f"{indent}  - name: {name}", f"{indent}    rules:"]
        for number, (comment, rule) in enumerate(rendered):
            if number and (comment or "alert" in rule):
                lines.append("")
            lines += [f"{indent}      # {line}" if line else f"{indent}      #" for line in (comment or "").splitlines()]
            first = True
            for key, value in rule.items():
                prefix = f"{indent}      - " if first else f"{indent}        "
                first = False
                if isinstance(value, dict):
                    lines.append(f"{prefix}{key}:")
                    lines += [f"{indent}          {k}: {scalar(v)}" for k, v in value.items()]
                elif "\n" in value.rstrip("\n"):
                    lines.append(f"{prefix}{key}: |")
                    lines += [f"{indent}          {line}" if line else "" for line in value.rstrip("\n").split("\n")]
                else:
                    lines.append(f"{prefix}{key}: {scalar(value.rstrip(chr(10)))}")
    return "\n".join(lines) + "\n"


def render(config=None):
    """Every generated file's text, by path."""
    config = config or load_config()
    groups = rules(config)
    header = (
        "# Generated by Prometheus/generate_rules.py from the rules it holds and Prometheus/mixin.yaml - do not edit.\n"
    )
    files = {path: header + emit_groups([group]) for group in groups for path in [group[2]]}
    files[KUBERNETES] = (
        header
        + "apiVersion: monitoring.coreos.com/v1\n"
        + "kind: PrometheusRule\n"
        + "metadata:\n"
        + "  name: rondo\n"
        + "  labels:\n"
        + "".join(f"    {scalar(k)}: {scalar(v)}\n" for k, v in config["prometheusRuleLabels"].items())
        + "spec:\n"
        + emit_groups(groups, indent="  ")
    )
    # The hand-written unit tests expect each alert's runbook_url: keep them on the configured base.
    for path in sorted((ROOT / "Prometheus" / "tests").glob("*.yml")):
        files[path] = re.sub(
            r"(runbook_url: )\S+/(\w+\.md)$",
            lambda m: f"{m.group(1)}{config['runbookBaseURL']}/{m.group(2)}",
            path.read_text(),
            flags=re.MULTILINE,
        )
    # The emitter writes YAML by hand (for comments and block expressions): it must read back as the rules.
    expected = [{"name": name, "rules": [rule for _, rule in rendered]} for name, rendered, _ in groups]
    for path, group in zip((RECORDING, ALERTS), expected):
        assert yaml.safe_load(files[path])["groups"] == [group], path
    kubernetes = yaml.safe_load(files[KUBERNETES])
    assert kubernetes["spec"]["groups"] == expected and kubernetes["metadata"]["labels"] == config["prometheusRuleLabels"]
    return files


def main():
    for path, text in render().items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
