#!/usr/bin/env python3
"""Fuzz a live `rondo serve` on 127.0.0.1 with schemathesis against the repo's OpenAPI document.

Usage: fuzz-api.py RONDO_BINARY [MAX_EXAMPLES_PER_OPERATION]

Starts the coordinator on a free port with a temporary data directory, runs schemathesis with the operator
token (checks: no 5xx, status codes, content types and response bodies as documented), then checks that the
coordinator is still alive and that `rondo checkpoints verify` passes on its store. Exits non-zero on any
failure. Everything it starts it stops.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCUMENT = os.path.join(ROOT, "Sources", "Coordinator", "Resources", "openapi.yaml")
ADMIN = "fuzz-admin-token-0123456789abcdef"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    rondo = sys.argv[1]
    examples = sys.argv[2] if len(sys.argv) > 2 else "10"
    data = tempfile.mkdtemp(prefix="rondo-fuzz-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [rondo, "serve", "--port", str(port), "--data-dir", data, "--admin-token", ADMIN,
         "--min-available-clients", "2", "--log-level", "error"],
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
        st = os.path.join(os.path.dirname(sys.executable), "schemathesis")
        run = subprocess.run(
            [st, "run", DOCUMENT, "--url", url, "--checks", CHECKS, "--max-examples", examples,
             "--header", f"Authorization: Bearer {ADMIN}", "--seed", "1", "--request-timeout", "30",
             "--phases", "examples,coverage,fuzzing"],
            env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"})
        if server.poll() is not None:
            sys.exit(f"the coordinator died during fuzzing: {server.stderr.read().decode()[-2000:]}")
        urllib.request.urlopen(url + "/healthz", timeout=5)
        server.terminate()
        server.wait(timeout=60)
        verify = subprocess.run([rondo, "checkpoints", "verify", "--data-dir", data])
        if run.returncode != 0 or verify.returncode != 0:
            sys.exit(f"fuzzing failed (schemathesis {run.returncode}, verify {verify.returncode})")
        print("fuzz: schemathesis found no failure; coordinator alive; store verified")
    finally:
        if server.poll() is None:
            server.kill()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
