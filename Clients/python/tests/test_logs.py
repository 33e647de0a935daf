"""What the client logs when the coordinator throttles it or cannot be reached: asserted on the log records of
the `rondo_client` logger, against a real coordinator (throttled with a low registration rate; killed and
started again) and, for answers a coordinator cannot give (a proxy's 502), an httpx mock transport."""

from __future__ import annotations

import logging
import re
import time

import httpx
import pytest

import rondo_client
from conftest import FAST, ClientThread, free_port, write_model
from logreg import initial_model
from rondo_client import Connection, RetryPolicy, Runner


class Idle(rondo_client.Client):
    def fit(self, parameters, config):
        return parameters, 1, {}

    def evaluate(self, parameters, config):
        return 0.0, 1, {}


def records(caplog, level, pattern):
    """The `rondo_client` records at `level` whose message matches `pattern` (re.search)."""
    return [r for r in caplog.records
            if r.name == "rondo_client" and r.levelno == level and re.search(pattern, r.getMessage())]


def no_rounds_args(tmp_path):
    # Nobody trains: rounds need more clients than any test here registers, so clients just long-poll.
    model = write_model(tmp_path / "init.safetensors", initial_model())
    return ["--initial-model", model, "--open-enrolment", "--min-available-clients", "5", *FAST]


def test_a_throttled_registration_is_logged_with_the_endpoint_code_and_wait(coordinators, tmp_path, caplog):
    # 0.5 registrations per second, a burst of one: the second registration is refused 429 with Retry-After.
    coordinator = coordinators(*no_rounds_args(tmp_path), "--registrations-per-second", "0.5")
    with Connection(coordinator.url, "first") as connection:
        connection.register()
    caplog.set_level(logging.INFO, logger="rondo_client")

    runner = Runner(Idle(), coordinator.url, name="throttled", long_poll_seconds=0.2, idle_timeout=0.3,
                    retry=RetryPolicy(initial_delay=0.05, max_delay=0.2))
    started = time.monotonic()
    runner.run()
    elapsed = time.monotonic() - started

    assert runner.registrations == 1 and runner.client_id
    throttled = records(caplog, logging.WARNING, "throttled")
    assert len(throttled) == 1, [r.getMessage() for r in throttled]
    message = throttled[0].getMessage()
    match = re.fullmatch(
        r"coordinator throttled POST /v1/clients: rate_limited \(.+\); retrying in (\d+\.\d) s "
        r"\(Retry-After: (\d+) s\)", message)
    assert match, message
    wait, retry_after = float(match.group(1)), int(match.group(2))
    assert retry_after in (1, 2) and wait == retry_after, message
    assert elapsed >= wait, "the client did not wait as long as it logged"
    # Reaching a coordinator that throttles is not an outage.
    assert not records(caplog, logging.WARNING, "unreachable")
    assert not records(caplog, logging.INFO, "reachable again")


def test_an_unreachable_coordinator_is_logged_once_then_periodically_and_its_return(
    coordinators, tmp_path, caplog, monkeypatch
):
    monkeypatch.setattr(rondo_client.connection, "LOG_REPEAT_SECONDS", 1.0)  # 30 s in production
    caplog.set_level(logging.DEBUG, logger="rondo_client")
    port, data = free_port(), tmp_path / "data"
    args = no_rounds_args(tmp_path)
    first = coordinators(*args, data_dir=data, port=port)
    url = first.url
    thread = ClientThread(lambda stop: rondo_client.start(
        Idle(), url, name="patient", long_poll_seconds=1, stop_event=stop,
        retry=RetryPolicy(initial_delay=0.05, max_delay=0.2)))
    try:
        first.wait_for(lambda s: s["clients_connected"] >= 1, 20, "the client to register")
        time.sleep(0.3)  # parked in a long-poll
        assert not records(caplog, logging.WARNING, "unreachable")

        first.process.kill()  # a crash: the parked long-poll's connection drops
        first.process.wait(timeout=5)
        killed = time.monotonic()
        time.sleep(3.5)
        coordinators(*args, data_dir=data, port=port)  # the same coordinator is back (same store and port)
        back = time.monotonic()

        deadline = time.monotonic() + 15
        while not records(caplog, logging.INFO, "reachable again") and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        thread.stop()
    assert thread.error is None, thread.error
    outage = back - killed

    escaped = re.escape(url)
    opening = records(caplog, logging.WARNING, rf"^coordinator unreachable at {escaped} \(")
    assert len(opening) == 1, [r.getMessage() for r in opening]
    assert re.search(r"GET /v1/clients/\S+/tasks/next: \w+.*\); retrying in \d+\.\d s$", opening[0].getMessage()), \
        opening[0].getMessage()

    repeated = records(caplog, logging.WARNING, rf"^coordinator unreachable at {escaped} for ")
    # One warning a second (the shortened interval) at most, and some while it lasted.
    assert 2 <= len(repeated) <= outage + 1, [r.getMessage() for r in repeated]
    durations = [float(re.search(r" for (\d+(?:\.\d)?) s ", r.getMessage()).group(1)) for r in repeated]
    assert durations == sorted(durations) and durations[-1] >= 2, durations
    for record in repeated:
        assert re.search(r"\(\d+ failed attempts, last: .+\); retrying in \d+\.\d s$", record.getMessage()), \
            record.getMessage()

    # Not one warning per retry: the retries in between are debug lines.
    quiet = records(caplog, logging.DEBUG, "^coordinator still unreachable")
    assert len(quiet) > 3 * (len(opening) + len(repeated)), (len(quiet), len(repeated))

    again = records(caplog, logging.INFO, r"^coordinator reachable again after (\d+(?:\.\d)?) s$")
    assert len(again) == 1, [r.getMessage() for r in caplog.records if r.name == "rondo_client"]
    downtime = float(re.search(r"after (\S+) s", again[0].getMessage()).group(1))
    assert outage - 1.0 <= downtime <= outage + 15, (downtime, outage)
    # Nothing else warned about the outage (the old per-attempt retry warnings are gone for it).
    others = [r.getMessage() for r in caplog.records if r.name == "rondo_client" and r.levelno >= logging.WARNING
              and r not in opening and r not in repeated]
    assert not others, others


TOO_MANY_POLLS = {"error": {"code": "too_many_polls", "message": "this client already has 2 long-polls waiting"}}


def mock_runner(poll_answer):
    """A Runner against an httpx mock coordinator whose long-polls `poll_answer(runner, count)` answers."""
    polls = {"count": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/clients":
            return httpx.Response(201, json={"client_id": "c-1", "token": "t", "heartbeat_interval_seconds": 5})
        if path.endswith("/tasks/next"):
            polls["count"] += 1
            return poll_answer(runner, polls["count"])
        if request.method == "DELETE":
            return httpx.Response(204)
        return httpx.Response(404)

    runner = Runner(Idle(), "http://coordinator.test", name="mock", transport=httpx.MockTransport(handler),
                    long_poll_seconds=0.01, retry=RetryPolicy(initial_delay=0.001, max_delay=0.01))
    return runner, polls


def test_throttled_polls_warn_once_and_a_proxys_502_counts_as_unreachable(caplog):
    """A coordinator cannot answer 502 itself; a proxy in front of it does when it is down."""
    caplog.set_level(logging.DEBUG, logger="rondo_client")

    def answer(runner, count):
        if count <= 12:  # throttled polls, separate ones (answered in between) and a streak
            return (httpx.Response(204) if count in (2, 4, 6) else
                    httpx.Response(429, headers={"Retry-After": "0"}, json=TOO_MANY_POLLS))
        if count <= 16:
            return httpx.Response(502, text="<html>Bad Gateway</html>", headers={"Content-Type": "text/html"})
        if count >= 18:
            runner.stop()
        return httpx.Response(204)

    runner, polls = mock_runner(answer)
    runner.run()
    assert polls["count"] == 18

    throttled = records(caplog, logging.WARNING, "throttled")
    assert [r.getMessage() for r in throttled] == [
        "coordinator throttled GET /v1/clients/c-1/tasks/next: too_many_polls (this client already has 2 long-polls "
        "waiting); retrying in 0.0 s (Retry-After: 0 s)"]
    unreachable = records(caplog, logging.WARNING, "unreachable")
    assert len(unreachable) == 1, [r.getMessage() for r in unreachable]
    assert unreachable[0].getMessage().startswith(
        "coordinator unreachable at http://coordinator.test (GET /v1/clients/c-1/tasks/next answered 502); ")
    assert len(records(caplog, logging.INFO, "^coordinator reachable again after")) == 1
    assert not records(caplog, logging.WARNING, "^retrying")


def test_a_long_throttling_warns_periodically_with_a_count(caplog, monkeypatch):
    monkeypatch.setattr(rondo_client.connection, "LOG_REPEAT_SECONDS", 0.3)  # 30 s in production
    caplog.set_level(logging.INFO, logger="rondo_client")
    started = time.monotonic()

    def answer(runner, count):
        if time.monotonic() - started > 1.0:
            runner.stop()
            return httpx.Response(204)
        return httpx.Response(429, headers={"Retry-After": "0"}, json=TOO_MANY_POLLS)

    runner, polls = mock_runner(answer)
    runner.run()
    throttled = [r.getMessage() for r in records(caplog, logging.WARNING, "throttled")]
    assert 3 <= len(throttled) <= 5 and polls["count"] > 4 * len(throttled), (polls["count"], throttled)
    counts = [int(re.search(r"tasks/next \((\d+) times in the last 0 s\): too_many_polls", m).group(1))
              for m in throttled[1:]]
    # Every throttled poll is either warned about or counted in the next warning (but the trailing ones).
    assert 1 + sum(counts) <= polls["count"] - 1, (counts, polls["count"])
    assert all(count > 1 for count in counts), counts


@pytest.mark.parametrize("status", [429, 503])
def test_throttle_and_gateway_classification(status):
    from rondo_client.connection import is_throttled, is_unreachable
    from rondo_client.errors import TransportError, UnavailableError

    coordinator_busy = UnavailableError(status, "too_many_connections" if status == 503 else "rate_limited", "m", 1)
    assert is_throttled(coordinator_busy) and not is_unreachable(coordinator_busy)
    assert not is_throttled(UnavailableError(503, "draining", "m")) and not is_unreachable(
        UnavailableError(503, "draining", "m")), "the coordinator itself answered: reachable, not throttled"
    assert is_unreachable(UnavailableError(503, "http_error", "proxy")) and is_unreachable(TransportError("x"))
