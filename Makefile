# The two commands the README starts with: `make demo` and `make test`. Both install what is missing.
SWIFT ?= swift
APT_PACKAGES := libsqlite3-dev libcurl4-openssl-dev zlib1g-dev prometheus openssl postgresql-15

.PHONY: deps venv build demo test bench lint prometheus-check fuzz

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build --product rondo

demo: build
	$(SWIFT) run --skip-build rondo demo --clients 10 --rounds 30 --alpha 0.5 --seed 7

# Python drives real third-party tools in tests (safetensors, numpy, opentelemetry-proto, schemathesis, flwr,
# dp-accounting) and is the language of the client package in Clients/python (its pytest suite runs against a
# live coordinator).
venv:
	@if ! .venv/bin/python -c "import safetensors, numpy, opentelemetry.proto, yaml, openapi_spec_validator, schemathesis, openapi_python_client, ml_dtypes, requests, httpx, flwr, sklearn, opentelemetry.sdk, pytest, hatchling, build, dp_accounting" >/dev/null 2>&1; then \
		python3 -m venv .venv && .venv/bin/pip install --quiet --disable-pip-version-check safetensors numpy opentelemetry-proto pyyaml openapi-spec-validator schemathesis openapi-python-client==0.29.1 ml-dtypes==0.6.0 requests \
			httpx flwr==1.40.0 scikit-learn opentelemetry-sdk pytest hatchling build dp-accounting==0.6.0; \
	fi

# Prometheus config, rules, rule unit tests (promtool), and runbook/test coverage of every alert.
prometheus-check: deps venv
	promtool check config Prometheus/prometheus.yml
	promtool check rules Prometheus/rules/*.yml
	promtool test rules Prometheus/tests/*.yml
	.venv/bin/python scripts/check-prometheus.py

test: deps venv lint prometheus-check
	.venv/bin/openapi-spec-validator Sources/Coordinator/Resources/openapi.yaml
	$(SWIFT) build --build-tests
	.venv/bin/python scripts/check-deploy.py .build/debug
	.venv/bin/python scripts/check-dashboards.py .build/debug/rondo
	.venv/bin/python scripts/check-openapi-client.py .build/debug/rondo
	.venv/bin/python scripts/check-dtypes.py .build/debug/rondo
	.venv/bin/python scripts/fuzz-api.py .build/debug/rondo 10
	$(SWIFT) test --skip-build
	rm -rf .build/python-dist && .venv/bin/python -m build --no-isolation --outdir .build/python-dist Clients/python >/dev/null
	.venv/bin/pip install --quiet --disable-pip-version-check --no-deps --force-reinstall .build/python-dist/rondo_client-*.whl
	RONDO_BINARY=.build/debug/rondo .venv/bin/python -m pytest -q Clients/python/tests

# A longer schemathesis run against a live coordinator (the test command runs a bounded one).
fuzz: build venv
	.venv/bin/python scripts/fuzz-api.py .build/debug/rondo 200

bench: deps
	$(SWIFT) build -c release --product rondo
	$(SWIFT) run -c release --skip-build rondo bench aggregate --clients 10 --parameters 1000000 --runs 7
	@.venv/bin/python Benchmarks/numpy_fedavg.py 2>/dev/null || python3 Benchmarks/numpy_fedavg.py
	$(SWIFT) run -c release --skip-build rondo bench checkpoint --size-mb 100 --rollback-sizes-mb 10 --rollback-sizes-mb 1000
	$(SWIFT) run -c release --skip-build rondo bench metrics --clients 10000

lint:
	@scripts/check-core-imports.sh
	@python3 scripts/check-target-imports.py
	swift-format lint --strict --recursive Sources Tests Package.swift
