"""Failover between coordinator replicas (one leads, the others stand by and answer 503 ``not_leader``), against
fake replicas: real HTTP servers on 127.0.0.1 in threads. Needs neither a rondo binary nor PostgreSQL.

The replicas share one fake federation (as real ones share one database): a token issued by one is valid at all.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

import numpy as np
import pytest

import rondo_client
from rondo_client import Connection, RetryPolicy, Runner
from rondo_client.connection import Credentials
from rondo_client.errors import TransportError, UnavailableError, UntrustedServerError
from rondo_client.parameters import decode_safetensors

from replicas import (
    CLIENT_ID,
    ENROLMENT_TOKEN,
    HANDLED,
    MODEL_VERSION,
    TASK_ID,
    TOKEN,
    Answer,
    Coordinator,
    Federation,
    Replica,
    Reply,
    Seen,
    StallingReplica,
    dead_url,
    error_reply,
    standby_reply,
)

FAST_RETRY = RetryPolicy(initial_delay=0.01, max_delay=0.05)


@pytest.fixture
def federation():
    return Federation()


@pytest.fixture
def replicas(federation):
    """Factory of fake coordinators (and bare recording replicas), all stopped at the end of the test, which
    also fails if one of them failed while answering."""
    made: List[Replica] = []

    def coordinator(role: str = "leader", leader: Optional[str] = None, before: Optional[Answer] = None,
                    **options: Any) -> Coordinator:
        made_coordinator = Coordinator(federation, role, leader, before, **options)
        made.append(made_coordinator.replica)
        return made_coordinator

    def recorder() -> Replica:
        """A server that must never be asked anything (answers 500 if it is)."""
        replica = Replica(lambda seen, handler: error_reply(500, "internal", "nobody should ask me"))
        made.append(replica)
        return replica

    coordinator.recorder = recorder  # type: ignore[attr-defined]
    yield coordinator
    for replica in made:
        replica.stop()
    for replica in made:
        assert not replica.errors, replica.errors


# -- client side -------------------------------------------------------------------------------------------------


class Site(rondo_client.Client):
    def __init__(self) -> None:
        self.fits = 0

    def fit(self, parameters, config):
        self.fits += 1
        return {name: array + 1 for name, array in parameters.items()}, 10, {"train_loss": 0.25}

    def evaluate(self, parameters, config):
        return 0.5, 10, {}


def make_runner(coordinator: Any, client: Optional[rondo_client.Client] = None, **options: Any) -> Runner:
    options.setdefault("retry", FAST_RETRY)
    return Runner(client or Site(), coordinator, enrolment_token=ENROLMENT_TOKEN, name="site-a",
                  long_poll_seconds=0.5, max_tasks=1, **options)


def run(runner: Runner, timeout: float = 10.0) -> None:
    """Runs ``runner`` in a thread; fails the test (after stopping it) if it has not returned within ``timeout``."""
    errors: List[BaseException] = []

    def target() -> None:
        try:
            runner.run()
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    thread = threading.Thread(target=target, name="runner", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        runner.stop()
        thread.join(10)
        pytest.fail(f"the runner did not finish within {timeout} s (at {runner.connection.base_url}, "
                    f"{runner.connection.failovers} failovers)")
    if errors:
        raise errors[0]


def calls(seen: List[Seen]) -> List[str]:
    return [f"{request.method} {request.path}" for request in seen]


FULL_SESSION = [
    "POST /v1/clients",
    f"GET /v1/clients/{CLIENT_ID}/tasks/next",
    f"GET /v1/models/{MODEL_VERSION}",
    f"POST /v1/tasks/{TASK_ID}/result",
    f"DELETE /v1/clients/{CLIENT_ID}",
]


def assert_fit_result_uploaded(federation: Federation) -> None:
    assert len(federation.results) == 1, len(federation.results)
    parameters, _ = decode_safetensors(federation.results[0])
    assert np.array_equal(parameters["w"], federation.model["w"] + 1)


def assert_same_token(seen: List[Seen]) -> None:
    """Every request but registration carries the one token registration gave."""
    for request in seen:
        expected = f"Bearer {ENROLMENT_TOKEN}" if request.path == "/v1/clients" else f"Bearer {TOKEN}"
        assert request.authorization == expected, (request.method, request.path, request.authorization)


def moves(caplog) -> List[str]:
    return [r.getMessage() for r in caplog.records if r.name == "rondo_client" and "moving to" in r.getMessage()]


# -- tests -------------------------------------------------------------------------------------------------------


def test_several_urls_are_taken_as_a_list_or_one_comma_separated_string():
    a, b = "http://a.example:8470", "https://b.example:8470"
    for given in (f" {a}/ ,{b}//", [a + "/", b], (a, f"{b},{a}"), [f"{a},", b]):
        connection = Connection(given, "site")
        assert connection.coordinators == [a, b], given
        assert connection.base_url == a and connection.coordinator == a and connection.failovers == 0
        connection.close()
    single = Connection("http://c.example:8470/", "site")
    assert single.coordinators == ["http://c.example:8470"] and single.coordinator == "http://c.example:8470"
    single.close()
    runner = Runner(Site(), f"{a},{b}", name="site-a")
    assert runner.connection.coordinators == [a, b]
    runner.connection.close()
    with pytest.raises(ValueError, match="http:// or https://"):
        Connection([a, "b.example:8470"], "site")
    with pytest.raises(ValueError, match="http:// or https://"):
        Connection(" , ", "site")


def test_a_dead_replica_is_left_for_the_next_one_and_the_whole_session_runs_there(federation, replicas, caplog):
    caplog.set_level(logging.INFO, logger="rondo_client")
    dead = dead_url()
    leader = replicas()
    runner = make_runner([dead, leader.url])
    run(runner)

    assert runner.connection.base_url == leader.url
    assert runner.connection.failovers == 1
    assert runner.registrations == 1 and runner.tasks_done == 1
    assert calls(leader.seen()) == FULL_SESSION
    assert_same_token(leader.seen())
    assert_fit_result_uploaded(federation)
    logged = moves(caplog)
    assert len(logged) == 1 and logged[0].startswith(f"coordinator {dead} did not answer"), logged
    assert logged[0].endswith(f"moving to {leader.url} (failover 1)"), logged


def test_a_standby_sends_the_client_to_the_configured_leader_it_names_after_its_retry_after(
        federation, replicas, caplog):
    caplog.set_level(logging.INFO, logger="rondo_client")
    bystander = replicas.recorder()  # configured, but skipped: the standby names the leader
    leader = replicas()
    # The name as a standby might spell it: with a trailing slash (normalized before comparing).
    standby = replicas(role="standby", leader=f"{leader.url}/")
    runner = make_runner(f"{standby.url},{bystander.url},{leader.url}")
    run(runner)

    assert runner.connection.base_url == leader.url
    assert runner.connection.failovers == 1
    assert bystander.seen() == []
    assert calls(standby.seen()) == ["POST /v1/clients"]
    assert calls(leader.seen()) == FULL_SESSION
    assert_same_token(standby.seen() + leader.seen())
    waited = leader.seen()[0].at - standby.seen()[0].at
    assert waited >= 0.9, f"the standby's Retry-After: 1 was not honoured (retried after {waited:.3f} s)"
    assert_fit_result_uploaded(federation)
    assert moves(caplog) == [f"coordinator {standby.url} is a standby (not_leader); the leader is {leader.url}; "
                             f"moving to {leader.url} (failover 1)"]


def test_a_standby_that_does_not_know_the_leader_sends_the_client_to_the_next_replica(federation, replicas):
    leader = replicas()
    standby = replicas(role="standby", leader=None)
    runner = make_runner([standby.url, leader.url])
    run(runner)

    assert runner.connection.base_url == leader.url and runner.connection.failovers == 1
    assert calls(standby.seen()) == ["POST /v1/clients"]
    assert "rondo-leader" not in standby.seen()[0].headers
    assert calls(leader.seen()) == FULL_SESSION
    assert_same_token(leader.seen())


def test_a_leader_named_outside_the_configured_urls_is_never_followed_and_gets_no_token(
        federation, replicas, caplog):
    """The first replica leads, hands out the token, then stands by naming a URL the client was not given (a
    hostile or misconfigured standby): the client goes on at the other configured replica with the same token
    (no new registration), and the outside URL never sees a request, let alone the token."""
    caplog.set_level(logging.INFO, logger="rondo_client")
    outside = replicas.recorder()

    def step_down_at_the_first_poll(seen: Seen, handler: BaseHTTPRequestHandler) -> Optional[Reply]:
        if seen.path.endswith("/tasks/next"):
            first.role = "standby"
        return None

    first = replicas(leader=outside.url, before=step_down_at_the_first_poll)
    second = replicas()
    runner = make_runner([first.url, second.url])
    run(runner)

    assert outside.seen() == [], "a request went to the URL the standby named, outside the configured ones"
    assert all(request.authorization is None for request in outside.seen())
    assert calls(first.seen()) == ["POST /v1/clients", f"GET /v1/clients/{CLIENT_ID}/tasks/next"]
    assert calls(second.seen()) == FULL_SESSION[1:], "the second replica should take over without registration"
    assert_same_token(first.seen() + second.seen())
    assert runner.registrations == 1 and federation.registrations == 1
    assert runner.connection.base_url == second.url and runner.connection.failovers == 1
    assert_fit_result_uploaded(federation)
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "rondo_client" and r.levelno == logging.WARNING and "not following it" in r.getMessage()]
    assert len(warnings) == 1 and outside.url in warnings[0], warnings


def test_a_not_leader_with_a_single_coordinator_is_retried_there_without_a_failover(federation, replicas):
    """One URL (a load balancer's, say): a 503 not_leader is retried after its Retry-After, at the same URL."""

    def lead_after_the_first_answer(seen: Seen, handler: BaseHTTPRequestHandler) -> Optional[Reply]:
        if only.role == "standby":
            only.role = "leader"
            return standby_reply("http://127.0.0.1:1")  # not configured: never followed
        return None

    only = replicas(role="standby", before=lead_after_the_first_answer)
    runner = make_runner(only.url)
    run(runner)

    assert runner.connection.base_url == only.url and runner.connection.failovers == 0
    seen = only.seen()
    assert calls(seen) == ["POST /v1/clients"] + FULL_SESSION
    assert seen[1].at - seen[0].at >= 0.9, "the standby's Retry-After: 1 was not honoured"
    assert_fit_result_uploaded(federation)


def test_a_not_leader_answer_is_a_retryable_error_with_its_retry_after(replicas):
    leader = replicas()
    standby = replicas(role="standby", leader=leader.url)
    connection = Connection([standby.url, leader.url], "site-a", ENROLMENT_TOKEN)
    with connection, pytest.raises(UnavailableError) as raised:
        connection.register()
    error = raised.value
    assert error.retryable and error.status == 503 and error.code == "not_leader" and error.retry_after == 1.0
    assert error.coordinator == standby.url and error.endpoint == "POST /v1/clients"
    assert rondo_client.connection.is_not_leader(error)
    assert not rondo_client.connection.is_unreachable(error) and not rondo_client.connection.is_throttled(error)
    assert connection.base_url == leader.url and connection.failovers == 1


def test_a_model_download_cut_by_a_dying_leader_resumes_with_a_range_at_the_next_replica(federation, replicas):
    """The leader sends half the model, stops listening and cuts the connection: the re-request (with Range and
    If-Range) finds it gone, moves to the next replica and goes on there from the bytes received."""
    half = len(federation.model_bytes) // 2

    def die_halfway(seen: Seen, handler: BaseHTTPRequestHandler) -> Optional[Reply]:
        if not seen.path.startswith("/v1/models/"):
            return None
        data = federation.model_bytes
        handler.send_response(200)
        handler.send_header("ETag", f'"{federation.model_sha256}"')
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data[:half])
        handler.wfile.flush()
        dying.replica.stop()  # from now on connecting is refused
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)
        return HANDLED

    dying = replicas(before=die_halfway)
    heir = replicas()
    connection = Connection([dying.url, heir.url], "site-a", ENROLMENT_TOKEN)
    connection.download_resume_policy = RetryPolicy(initial_delay=0.01, max_delay=0.02, max_attempts=5)
    with connection:
        connection.register()
        parameters = connection.model(MODEL_VERSION, federation.model_sha256)
        assert connection.base_url == heir.url and connection.failovers == 1
        assert connection.download_resumes == 2  # the refused re-request at the dying replica, then the heir's
        assert connection.model_downloads == 1
    assert np.array_equal(parameters["w"], federation.model["w"])
    assert calls(dying.seen()) == ["POST /v1/clients", f"GET /v1/models/{MODEL_VERSION}"]
    [resumed] = heir.seen()
    assert (resumed.method, resumed.path) == ("GET", f"/v1/models/{MODEL_VERSION}")
    assert resumed.headers.get("range") == f"bytes={half}-", resumed.headers
    assert resumed.headers.get("if-range") == f'"{federation.model_sha256}"'
    assert resumed.authorization == f"Bearer {TOKEN}"


def test_a_download_that_found_no_replica_goes_on_at_the_next_on_the_runners_retry(federation, replicas):
    """A model request to a dead replica raises (the runner's to retry) after moving on; the retry gets the model
    from the leader."""
    leader = replicas()
    dead = dead_url()
    runner = make_runner([dead, leader.url], retry=RetryPolicy(initial_delay=0.01, max_delay=0.05, max_attempts=5))
    connection = runner.connection
    connection.credentials = Credentials(CLIENT_ID, TOKEN, 5.0)  # registered before the replica died
    with pytest.raises(TransportError):
        connection.model(MODEL_VERSION, federation.model_sha256)
    assert connection.base_url == leader.url and connection.failovers == 1
    parameters = runner._retrying("download model", lambda: connection.model(MODEL_VERSION, federation.model_sha256))
    connection.close()
    assert np.array_equal(parameters["w"], federation.model["w"])
    assert calls(leader.seen()) == [f"GET /v1/models/{MODEL_VERSION}"]
    assert_same_token(leader.seen())


def test_an_answer_whose_body_breaks_is_retried_at_the_replica_that_answered(federation, replicas):
    """The replica answered (status and headers came), only its body broke: that is no sign it is gone, so the
    connection stays (the retry goes to it again) and counts no failover."""

    def cut_the_task(seen: Seen, handler: BaseHTTPRequestHandler) -> Optional[Reply]:
        if not seen.path.endswith("/tasks/next"):
            return None
        body = json.dumps(federation.task()).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body[:20])
        handler.wfile.flush()
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)
        return HANDLED

    answering = replicas(before=cut_the_task)
    other = replicas.recorder()
    connection = Connection([answering.url, other.url], "site-a")
    connection.credentials = Credentials(CLIENT_ID, TOKEN, 5.0)
    with connection:
        with pytest.raises(TransportError):
            connection.next_task(1.0)
        assert connection.base_url == answering.url and connection.failovers == 0
        connection.heartbeat()
    assert calls(answering.seen()) == [f"GET /v1/clients/{CLIENT_ID}/tasks/next",
                                       f"POST /v1/clients/{CLIENT_ID}/heartbeat"]
    assert other.seen() == []


def test_calls_failing_together_at_one_replica_move_the_connection_once(federation, replicas):
    """The heartbeat thread and the long-poll both lose the replica they were sent to: one move, not two (with two
    replicas, two moves would land back on the dead one)."""
    stalling = StallingReplica(count=2)
    leader = replicas()
    connection = Connection([stalling.url, leader.url], "site-a")
    connection.credentials = Credentials(CLIENT_ID, TOKEN, 5.0)
    failures: List[BaseException] = []

    def call(operation: Callable[[], Any]) -> None:
        try:
            operation()
        except BaseException as error:  # noqa: BLE001
            failures.append(error)

    threads = [threading.Thread(target=call, args=(connection.heartbeat,)),
               threading.Thread(target=call, args=(lambda: connection.next_task(1.0),))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    stalling.thread.join(10)
    assert stalling.received == 2
    assert len(failures) == 2 and all(isinstance(error, TransportError) for error in failures), failures
    assert connection.failovers == 1 and connection.base_url == leader.url
    connection.heartbeat()
    connection.close()
    assert calls(leader.seen()) == [f"POST /v1/clients/{CLIENT_ID}/heartbeat"]
    assert_same_token(leader.seen())


def make_self_signed(directory: Path) -> Tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True)
    return cert, key


def test_an_untrusted_certificate_does_not_move_the_client_on(federation, replicas, tmp_path):
    """A replica whose certificate is not trusted may be an impostor: the client stops there (no retry, no move)
    instead of trying the next URL."""
    untrusted = replicas(tls=make_self_signed(tmp_path))
    leader = replicas()
    runner = make_runner([untrusted.url, leader.url])
    with pytest.raises(UntrustedServerError):
        run(runner)
    assert runner.connection.failovers == 0 and runner.connection.base_url == untrusted.url
    assert leader.seen() == [] and untrusted.seen() == []


def test_an_unchanged_flower_client_takes_several_coordinators(federation, replicas):
    flwr_client = pytest.importorskip("flwr.client")
    from rondo_client import flower

    class FlowerSite(flwr_client.NumPyClient):
        def fit(self, parameters, config):
            return [array + 1 for array in parameters], 10, {"train_loss": 0.25}

        def evaluate(self, parameters, config):
            return 0.5, 10, {}

    leader = replicas()
    standby = replicas(role="standby", leader=leader.url)
    stop = threading.Event()
    guard = threading.Timer(10.0, stop.set)  # a runner that never finishes is stopped, and fails the asserts
    guard.start()
    try:
        runner = flower.start(client=FlowerSite(), coordinator=f"{dead_url()}, {standby.url}, {leader.url}",
                              enrolment_token=ENROLMENT_TOKEN, name="site-a", long_poll_seconds=0.5,
                              retry=FAST_RETRY, max_tasks=1, stop_event=stop)
    finally:
        guard.cancel()
    assert runner.tasks_done == 1
    assert runner.connection.base_url == leader.url and runner.connection.failovers == 2
    assert calls(leader.seen()) == FULL_SESSION
    assert_same_token(leader.seen())
    assert_fit_result_uploaded(federation)
