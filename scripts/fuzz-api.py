#!/usr/bin/env python3
"""Fuzz a live `rondo serve` on 127.0.0.1 with schemathesis against the repo's OpenAPI document.

Usage: fuzz-api.py RONDO_BINARY [MAX_EXAMPLES_PER_OPERATION]

Two phases, each against its own coordinator (free port, temporary data directory):
  operator  every operation with the operator token (checks: no 5xx, status codes, content types and response
            bodies as documented).
  client    `POST /v1/tasks/{task_id}/result` only, as real clients: the hooks in `fuzz_hooks.py` aim every case
            at an evaluate task that is open right now, with its client's token, so schemathesis reaches the
            validation of evaluation results (the same checks plus negative_data_rejection: a result outside the
            documented bounds must be refused, not accepted).
After each phase the coordinator must still be alive and `rondo checkpoints verify` must pass on its store.
Exits non-zero on any failure. Everything it starts it stops.

RONDO_FUZZ_EXTRA_SERVE_ARGS (internal, for checking the harness itself) is appended to the client phase's
`rondo serve` command, e.g. "--max-num-examples 9223372036854775807" brings back the unbounded coordinator the
client phase must fail on.
"""
import contextlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCUMENT = os.path.join(ROOT, "Sources", "Coordinator", "Resources", "openapi.yaml")
HOOKS = os.path.join(ROOT, "scripts", "fuzz_hooks.py")
ADMIN = "fuzz-admin-token-0123456789abcdef"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
CLIENT_CHECKS = CHECKS + ",negative_data_rejection"
CLIENTS = 8


def free_port():
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def coordinator(rondo, flags):
    """Run `rondo serve FLAGS` on a free port with a temporary data directory; yields (url, process, data dir)."""
    data = tempfile.mkdtemp(prefix="rondo-fuzz-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [rondo, "serve", "--port", str(port), "--data-dir", data, "--demo-model", "--admin-token", ADMIN, *flags],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("the coordinator did not start")
        yield url, server, data
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=60)
        shutil.rmtree(data, ignore_errors=True)


def schemathesis(url, examples, arguments, env=None):
    """Run `schemathesis run` on the document against `url`; returns its exit code."""
    st = os.path.join(os.path.dirname(sys.executable), "schemathesis")
    run = subprocess.run(
        [st, "run", DOCUMENT, "--url", url, "--max-examples", examples, "--seed", "1", "--request-timeout", "30",
         "--phases", "examples,coverage,fuzzing", *arguments],
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1", **(env or {})}, check=False)
    return run.returncode


def stop_and_verify(rondo, url, server, data, schemathesis_rc, *, prefix=""):
    """Check the coordinator survived, stop it and verify its store; exits (message after `prefix`) on any failure."""
    if server.poll() is not None:
        sys.exit(f"{prefix}the coordinator died during fuzzing: {server.stderr.read().decode()[-2000:]}")
    urllib.request.urlopen(url + "/healthz", timeout=5)
    server.terminate()
    server.wait(timeout=60)
    verify = subprocess.run([rondo, "checkpoints", "verify", "--data-dir", data], check=False)
    if schemathesis_rc != 0 or verify.returncode != 0:
        sys.exit(f"{prefix}fuzzing failed (schemathesis {schemathesis_rc}, verify {verify.returncode})")


def operator_phase(rondo, examples):
    """Fuzz every operation with the operator token."""
    with coordinator(rondo, ["--min-available-clients", "2", "--log-level", "error"]) as (url, server, data):
        rc = schemathesis(url, examples, ["--checks", CHECKS, "--header", f"Authorization: Bearer {ADMIN}"])
        stop_and_verify(rondo, url, server, data, rc)
    print("fuzz: schemathesis found no failure; coordinator alive; store verified")


def register(url, name):
    """POST /v1/clients (open enrolment); returns {"client_id", "token"}."""
    request = urllib.request.Request(
        url + "/v1/clients", data=json.dumps({"name": name}).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.load(response)
    return {"client_id": body["client_id"], "token": body["token"]}


def client_phase(rondo, examples):
    """Fuzz result submissions as real clients, against open evaluate tasks (see fuzz_hooks.py)."""
    n = str(CLIENTS)
    flags = ["--open-enrolment", "--min-available-clients", n, "--min-fit-clients", n, "--min-fit-results", "1",
             "--fraction-evaluate", "1", "--evaluate-timeout", "600", "--fit-timeout", "600",
             # Only a task's own submissions keep its client alive, and malformed ones do not count.
             "--liveness-timeout", "600",
             # SIGTERM would otherwise wait for the open round (fit + evaluate timeouts) before stopping.
             "--drain-timeout", "1",
             "--refused-submissions-per-second", "1000", "--registrations-per-second", "1000", "--log-level", "error",
             *shlex.split(os.environ.get("RONDO_FUZZ_EXTRA_SERVE_ARGS", ""))]
    with coordinator(rondo, flags) as (url, server, data), tempfile.TemporaryDirectory(prefix="rondo-fuzz-") as scratch:
        clients = [register(url, f"fuzz-client-{i}") for i in range(CLIENTS)]
        stats_path = os.path.join(scratch, "stats.json")
        rc = schemathesis(
            url, examples,
            ["--checks", CLIENT_CHECKS, "--include-name", "POST /v1/tasks/{task_id}/result", "--workers", "1"],
            env={"SCHEMATHESIS_HOOKS": HOOKS, "RONDO_FUZZ_URL": url, "RONDO_FUZZ_CLIENTS": json.dumps(clients),
                 "RONDO_FUZZ_STATS": stats_path})
        try:
            with open(stats_path) as file:
                stats = json.load(file)
        except (OSError, ValueError):
            stats = {"cases": 0, "statuses": {}, "rounds": 0}
        statuses = ", ".join(f"{code}: {count}" for code, count in sorted(stats["statuses"].items()))
        summary = (f"fuzz client phase: {stats['cases']} result submissions to open evaluate tasks over "
                   f"{stats['rounds']} rounds ({statuses or 'none'}); ")
        stop_and_verify(rondo, url, server, data, rc, prefix=summary)
    print(summary + "schemathesis found no failure; coordinator alive; store verified")


def main():
    """Run the operator phase, then the client phase; any failure exits non-zero."""
    rondo = sys.argv[1]
    examples = sys.argv[2] if len(sys.argv) > 2 else "10"
    operator_phase(rondo, examples)
    client_phase(rondo, examples)


if __name__ == "__main__":
    main()
