"""Stable client identity: registering with the same identity key is the same client (same client_id, a new
token), against a real coordinator; where the key comes from (argument, file, environment), against a mock."""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time

import httpx
import pytest

import rondo_client
from conftest import FAST, write_model
from logreg import initial_model
from rondo_client import Connection, RefusedError, UnauthenticatedError


class Idle(rondo_client.Client):
    def fit(self, parameters, config):
        return parameters, 1, {}

    def evaluate(self, parameters, config):
        return 0.0, 1, {}


def new_key() -> str:
    return secrets.token_urlsafe(24)  # 32 printable ASCII characters


@pytest.fixture
def coordinator(coordinators, tmp_path):
    # Rounds need more clients than these tests register: clients only register, long-poll and leave.
    model = write_model(tmp_path / "init.safetensors", initial_model())
    return coordinators("--initial-model", model, "--open-enrolment", "--min-available-clients", "5", *FAST)


def run_once(url: str, **options) -> rondo_client.Runner:
    """One short run: register, long-poll briefly, leave (as a site that is started and stopped)."""
    return rondo_client.start(Idle(), url, long_poll_seconds=0.2, idle_timeout=0.3, **options)


def client_rows(coordinator, name: str):
    return [c for c in coordinator.admin("/v1/clients").json()["clients"] if c["name"] == name]


def test_the_same_identity_key_is_the_same_client_across_runs(coordinator):
    key = new_key()
    first = run_once(coordinator.url, name="site-a", identity_key=key)
    second = run_once(coordinator.url, name="site-a", identity_key=key)  # the site restarted
    assert first.client_id and second.client_id == first.client_id
    other = run_once(coordinator.url, name="site-a", identity_key=new_key())
    assert other.client_id and other.client_id != first.client_id
    # One row per identity, not one per start.
    rows = client_rows(coordinator, "site-a")
    assert sorted(row["client_id"] for row in rows) == sorted([first.client_id, other.client_id]), rows


def test_registering_again_with_the_key_replaces_the_token(coordinator):
    key = new_key()
    with Connection(coordinator.url, "site-b", identity_key=key) as old, \
            Connection(coordinator.url, "site-b", identity_key=key) as new:
        before = old.register()
        old.heartbeat()
        after = new.register()  # the site restarted without leaving (a crash)
        assert after.client_id == before.client_id and after.token != before.token
        new.heartbeat()
        with pytest.raises(UnauthenticatedError) as caught:
            old.heartbeat()
        assert caught.value.status == 401, caught.value


def test_a_revoked_clients_key_is_refused(coordinator):
    key = new_key()
    runner = run_once(coordinator.url, name="site-c", identity_key=key)
    coordinator.admin_post(f"/v1/clients/{runner.client_id}/revoke", {"reason": "test"})
    started = time.monotonic()
    with pytest.raises(RefusedError) as caught:
        run_once(coordinator.url, name="site-c", identity_key=key)
    assert caught.value.status == 403, caught.value
    assert caught.value.endpoint == "POST /v1/clients"
    assert time.monotonic() - started < 3, "a refused registration must not be retried"
    # A new key is a new client, as any new site is.
    assert run_once(coordinator.url, name="site-c", identity_key=new_key()).client_id != runner.client_id


@pytest.mark.parametrize("key", ["fifteen-chars!!", "sixteen-chars-é!", "sixteen chars!!!", "k" * 257])
def test_a_malformed_identity_key_is_refused_with_a_clear_error(coordinator, key):
    started = time.monotonic()
    with pytest.raises(RefusedError) as caught:
        run_once(coordinator.url, name="site-d", identity_key=key)
    error = caught.value
    assert (error.status, error.code) == (400, "invalid_identity_key"), error
    assert "identity_key" in error.message and "16 to 256" in error.message, error.message
    assert key not in str(error), "the key must not be echoed into errors"
    assert str(error).startswith(f"{error.code} (HTTP 400): ")
    assert time.monotonic() - started < 3, "a refused registration must not be retried"
    assert not client_rows(coordinator, "site-d")


# -- where the key comes from (no coordinator needed) ------------------------------------------------------------


class RegistrationRecorder:
    """An httpx mock coordinator that records registration bodies and stops the runner after registering."""

    def __init__(self):
        self.bodies = []
        self.runner = None
        self.release = threading.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/clients":
            self.bodies.append(json.loads(request.read()))
            return httpx.Response(201, json={"client_id": "c-1", "token": "t", "heartbeat_interval_seconds": 5})
        if path.endswith("/tasks/next"):
            self.release.wait(10)
            self.runner.stop()
            return httpx.Response(204)
        if request.method == "DELETE":
            return httpx.Response(204)
        return httpx.Response(404)

    def run(self, **options) -> rondo_client.Runner:
        self.runner = rondo_client.Runner(
            Idle(), "http://coordinator.test", name="site", long_poll_seconds=0.01,
            transport=httpx.MockTransport(self), **options)
        return self.runner


def registered_key(**options):
    recorder = RegistrationRecorder()
    recorder.release.set()
    recorder.run(**options).run()
    assert len(recorder.bodies) == 1
    return recorder.bodies[0].get("identity_key", None)


def test_the_identity_key_comes_from_the_argument_a_file_or_the_environment(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="rondo_client")
    monkeypatch.delenv("RONDO_CLIENT_IDENTITY_KEY", raising=False)
    assert registered_key() is None

    argument, from_file, from_env = new_key(), new_key(), new_key()
    assert registered_key(identity_key=argument) == argument

    key_file = tmp_path / "identity-key"
    key_file.write_text(f"  {from_file}\n")
    key_file.chmod(0o600)
    assert registered_key(identity_key_file=str(key_file)) == from_file

    monkeypatch.setenv("RONDO_CLIENT_IDENTITY_KEY", from_env)
    assert registered_key() == from_env
    assert registered_key(identity_key=argument) == argument, "an explicit key wins over the environment"
    assert registered_key(identity_key_file=key_file) == from_file

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "stable identity" in logged
    for key in (argument, from_file, from_env):
        assert key not in logged, "an identity key was logged"


def test_unusable_identity_key_options_are_refused_before_connecting(tmp_path, monkeypatch):
    monkeypatch.delenv("RONDO_CLIENT_IDENTITY_KEY", raising=False)
    key_file = tmp_path / "identity-key"
    key_file.write_text(new_key())
    key_file.chmod(0o600)
    with pytest.raises(ValueError, match="not both"):
        registered_key(identity_key=new_key(), identity_key_file=str(key_file))
    with pytest.raises(ValueError, match="is empty"):
        registered_key(identity_key="")
    with pytest.raises(TypeError):
        registered_key(identity_key=b"0123456789abcdef")

    empty = tmp_path / "empty"
    empty.write_text(" \n")
    empty.chmod(0o600)
    with pytest.raises(ValueError, match="is empty"):
        registered_key(identity_key_file=str(empty))
    with pytest.raises(ValueError, match="unreadable"):
        registered_key(identity_key_file=str(tmp_path / "missing"))
    key_file.chmod(0o620)
    with pytest.raises(ValueError, match="writable by other users") as caught:
        registered_key(identity_key_file=str(key_file))
    assert key_file.read_text() not in str(caught.value)
    key_file.chmod(0o644)  # readable by others is the site's choice (secret volumes mount 0644)
    assert registered_key(identity_key_file=str(key_file)) == key_file.read_text()


def test_two_runners_in_one_process_cannot_share_an_identity_key(monkeypatch):
    """They would be one client taking the token from each other at every registration."""
    monkeypatch.setenv("RONDO_CLIENT_IDENTITY_KEY", new_key())
    first = RegistrationRecorder()
    runner = first.run()
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not first.bodies and time.monotonic() < deadline:
            time.sleep(0.01)
        assert first.bodies, "the first runner did not register"
        second = RegistrationRecorder()
        with pytest.raises(ValueError, match="same identity key"):
            second.run().run()
        assert not second.bodies
        monkeypatch.delenv("RONDO_CLIENT_IDENTITY_KEY")
        assert registered_key(identity_key=new_key()) is not None, "another key is fine"
    finally:
        first.release.set()
        thread.join(10)
    assert not thread.is_alive()
    # Once the first runner has finished, its key is free again (a site restarted in the same process).
    again = RegistrationRecorder()
    again.release.set()
    again.run(identity_key=first.bodies[0]["identity_key"]).run()
    assert again.bodies[0]["identity_key"] == first.bodies[0]["identity_key"]
