"""Writes Deploy/kubernetes/prometheusrule.yaml (a prometheus-operator PrometheusRule) together with
Prometheus/rules/*.yml: both come from Prometheus/generate_rules.py and the settings in Prometheus/mixin.yaml,
so the cluster runs exactly the rules promtool tests. Never edit the output by hand:
    .venv/bin/python Deploy/kubernetes/generate_prometheusrule.py     (same as Prometheus/generate_rules.py)
scripts/check-prometheus.py fails when a committed file differs from what the generator produces."""
import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
_spec = importlib.util.spec_from_file_location("generate_rules", ROOT / "Prometheus" / "generate_rules.py")
generate_rules = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate_rules)


def render():
    """The PrometheusRule's text."""
    return generate_rules.render()[generate_rules.KUBERNETES]


if __name__ == "__main__":
    generate_rules.main()
