"""Protocol behaviour against a real coordinator: bad input, enrolment, failures, TLS, restart, traces."""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest

import rondo_client
from conftest import FAST, ClientThread, free_port, write_model
from logreg import LogRegClient, initial_model, load
from rondo_client import Connection, RondoError

ONE_CLIENT = ["--min-available-clients", "1", "--min-fit-clients", "1", "--min-fit-results", "1"]


def model_file(tmp_path):
    return write_model(tmp_path / "init.safetensors", initial_model())


def next_fit_task(connection: Connection, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = connection.next_task(wait_seconds=2)
        if task is not None and task.kind == "fit":
            return task
    raise AssertionError("no fit task")


def test_wrong_shape_and_dtype_are_refused_with_the_tensor_named(coordinators, tmp_path):
    coordinator = coordinators("--initial-model", model_file(tmp_path), "--open-enrolment", *ONE_CLIENT, *FAST)
    with Connection(coordinator.url, "bad-input") as connection:
        connection.register()
        task = next_fit_task(connection)
        model = connection.model(task.model_version, task.model_sha256)
        assert list(model) == ["bias", "weight"] and model["weight"].dtype == np.float32

        wrong_shape = dict(model, weight=np.zeros((29,), np.float32))
        with pytest.raises(RondoError) as caught:
            connection.submit_fit(task.task_id, wrong_shape, 10)
        assert (caught.value.status, caught.value.code) == (422, "wrong_shape")
        assert "weight" in caught.value.message

        wrong_dtype = dict(model, bias=model["bias"].astype(np.float64))
        with pytest.raises(RondoError) as caught:
            connection.submit_fit(task.task_id, wrong_dtype, 10)
        # A float64 tensor where the model has float32: refused by validation, naming the tensor.
        error = caught.value
        assert (error.status, error.code) == (422, "wrong_dtype"), error
        assert "bias" in error.message

        # A refused request changes nothing: a valid result is still accepted.
        connection.submit_fit(task.task_id, model, 10, {"train_loss": 0.5})
        with pytest.raises(RondoError) as caught:
            connection.submit_fit(task.task_id, model, 10)
        assert caught.value.status == 409 and caught.value.code == "duplicate"


def test_wrong_enrolment_token_stops_promptly(coordinators, tmp_path):
    token_file = tmp_path / "enrolment"
    token_file.write_text("right-token-0123456789")
    token_file.chmod(0o600)
    coordinator = coordinators(
        "--initial-model", model_file(tmp_path), "--enrolment-token-file", str(token_file),
        *ONE_CLIENT, *FAST,
    )
    parts, test = load(1)
    started = time.monotonic()
    with pytest.raises(RondoError) as caught:
        rondo_client.start(LogRegClient(parts[0], test), coordinator.url, enrolment_token="wrong-token")
    elapsed = time.monotonic() - started
    assert (caught.value.status, caught.value.code) == (401, "unauthenticated")
    assert elapsed < 3, f"took {elapsed:.1f} s: registration must not be retried"
    # The right token works.
    with Connection(coordinator.url, "ok", enrolment_token="right-token-0123456789") as connection:
        assert connection.register().client_id


class Failing(rondo_client.Client):
    def __init__(self):
        self.calls = 0

    def fit(self, parameters, config):
        self.calls += 1
        raise RuntimeError("simulated out-of-memory in fit")

    def evaluate(self, parameters, config):
        return 0.5, 1, {}


def dropouts(coordinator, kind: str, reason: str) -> float:
    for line in coordinator.metrics_text().splitlines():
        if line.startswith("rondo_dropouts_total{") and f'kind="{kind}"' in line and f'reason="{reason}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_fit_raising_is_reported_as_error_dropout_and_client_keeps_going(coordinators, tmp_path):
    coordinator = coordinators("--initial-model", model_file(tmp_path), "--open-enrolment", *ONE_CLIENT, *FAST)
    client = Failing()
    thread = ClientThread(
        lambda stop: rondo_client.start(client, coordinator.url, long_poll_seconds=1, stop_event=stop)
    )
    try:
        coordinator.wait_for(lambda s: s["failed_rounds"] >= 2, 30, "2 failed rounds")
    finally:
        thread.stop()
    assert thread.error is None, thread.error
    assert client.calls >= 2  # it kept going after the first failure
    assert dropouts(coordinator, "fit", "error") >= 2
    first = coordinator.admin("/v1/rounds/1").json()
    assert first["status"] == "failed" and first["dropped"] == 1, first


def make_ca_and_server_cert(directory):
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=Rondo test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server-key.pem", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    (directory / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"


def test_tls_with_pinned_ca(coordinators, tmp_path):
    tls = tmp_path / "tls"
    tls.mkdir()
    ca, cert, key = make_ca_and_server_cert(tls)
    coordinator = coordinators(
        "--initial-model", model_file(tmp_path), "--open-enrolment", *ONE_CLIENT, "--rounds", "1",
        "--tls-cert", str(cert), "--tls-key", str(key), *FAST, scheme="https", ca_file=str(ca),
    )
    assert coordinator.url.startswith("https://")
    parts, test = load(1)

    # Without the CA: refused as untrusted, at once, no retry loop.
    started = time.monotonic()
    with pytest.raises(RondoError) as caught:
        rondo_client.start(LogRegClient(parts[0], test), coordinator.url)
    assert caught.value.code == "untrusted_server", caught.value
    assert time.monotonic() - started < 5

    # An unusable CA file is untrusted_server too.
    with pytest.raises(RondoError) as caught:
        rondo_client.start(LogRegClient(parts[0], test), coordinator.url, ca_file=str(tmp_path / "missing.pem"))
    assert caught.value.code == "untrusted_server"

    client = LogRegClient(parts[0], test)
    thread = ClientThread(lambda stop: rondo_client.start(
        client, coordinator.url, ca_file=str(ca), long_poll_seconds=1, stop_event=stop))
    try:
        coordinator.wait_for(lambda s: s["committed_rounds"] >= 1, 30, "a round over HTTPS")
    finally:
        thread.stop()
    assert thread.error is None, thread.error
    assert client.rounds_seen == [1]


def test_client_survives_coordinator_restart(coordinators, tmp_path):
    """Stop the coordinator mid-federation; a new one on the same port keeps training with the same client.

    On the same data directory the coordinator keeps client tokens, so the client simply carries on; on a
    fresh data directory the old token answers 401 and the client registers again."""
    model = model_file(tmp_path)
    port = free_port()
    data = tmp_path / "data"
    args = ["--initial-model", model, "--open-enrolment", *ONE_CLIENT, *FAST]
    first = coordinators(*args, data_dir=data, port=port)
    parts, test = load(1)
    client = LogRegClient(parts[0], test)
    runner_box = {}

    def run(stop):
        runner = rondo_client.Runner(
            client, first.url, long_poll_seconds=1, stop_event=stop,
            retry=rondo_client.RetryPolicy(initial_delay=0.1, max_delay=0.5))
        runner_box["runner"] = runner
        runner.run()

    thread = ClientThread(run)
    try:
        first.wait_for(lambda s: s["committed_rounds"] >= 1, 30, "a first committed round")
        first.stop()
        committed_before = len(set(client.rounds_seen))

        second = coordinators(*args, data_dir=data, port=port)  # same data dir, same port
        status = second.wait_for(lambda s: s["committed_rounds"] >= 2, 40, "training after the restart")
        assert status["committed_rounds"] >= 2
        assert len(set(client.rounds_seen)) > committed_before
        second.stop()

        third = coordinators(*args, data_dir=tmp_path / "fresh", port=port)  # a coordinator that never saw it
        third.wait_for(lambda s: s["committed_rounds"] >= 1, 40, "training on a fresh coordinator")
    finally:
        thread.stop()
    assert thread.error is None, thread.error
    assert runner_box["runner"].registrations >= 2, "the client did not register again after the 401"


def test_task_spans_continue_the_traceparent(coordinators, tmp_path):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    coordinator = coordinators("--initial-model", model_file(tmp_path), "--open-enrolment", *ONE_CLIENT,
                               "--rounds", "1", *FAST)
    parts, test = load(1)
    seen = []

    class Recording(LogRegClient):
        def fit(self, parameters, config):
            seen.append(trace.get_current_span().get_span_context())
            return super().fit(parameters, config)

    thread = ClientThread(lambda stop: rondo_client.start(
        Recording(parts[0], test), coordinator.url, long_poll_seconds=1, stop_event=stop))
    try:
        coordinator.wait_for(lambda s: s["committed_rounds"] >= 1, 30, "one round")
    finally:
        thread.stop()
    assert thread.error is None
    spans = exporter.get_finished_spans()
    names = [s.name for s in spans]
    for name in ("client.download", "client.fit", "client.upload", "client.evaluate"):
        assert name in names, names
    for s in spans:
        assert s.parent is not None and s.parent.is_remote, s.name
    fit = next(s for s in spans if s.name == "client.fit")
    upload = next(s for s in spans if s.name == "client.upload" and s.context.trace_id == fit.context.trace_id)
    assert upload.parent.span_id == fit.parent.span_id  # the same task span
    assert seen and seen[0].span_id == fit.context.span_id  # fit runs inside its span


CLIENT_SCRIPT = """
import logging, sys
sys.path.insert(0, {src!r}); sys.path.insert(0, {tests!r})
logging.basicConfig(level=logging.INFO)
import rondo_client
from logreg import LogRegClient, load
parts, test = load(1)
rondo_client.start(LogRegClient(parts[0], test), {url!r}, name="signalled", long_poll_seconds=20)
print("returned", flush=True)
"""


def test_sigterm_leaves_the_federation(coordinators, tmp_path):
    import sys
    from pathlib import Path

    coordinator = coordinators("--initial-model", model_file(tmp_path), "--open-enrolment",
                               "--min-available-clients", "2", *FAST)  # no round starts: the client parks a poll
    here = Path(__file__).resolve().parent
    script = CLIENT_SCRIPT.format(src=str(here.parent), tests=str(here), url=coordinator.url)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        coordinator.wait_for(lambda s: s["clients_connected"] >= 1, 20, "the client to register")
        time.sleep(0.5)  # parked in a 20 s long-poll now
        started = time.monotonic()
        process.send_signal(subprocess.signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert time.monotonic() - started < 5, "SIGTERM must cut the long-poll short"
    assert process.returncode == 0, output.decode()
    assert b"returned" in output and b"left the federation" in output, output.decode()
    clients = coordinator.admin("/v1/clients").json()["clients"]
    assert [c.get("left_at") is not None for c in clients if c["name"] == "signalled"] == [True], clients
