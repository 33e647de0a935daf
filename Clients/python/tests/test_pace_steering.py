"""Pace steering against a real `rondo serve`: an idle poll is answered 204 with a Retry-After spread to the
coordinator's --poll-rate, and the runner waits it out before polling again."""

from __future__ import annotations

import threading
import time

import httpx

import rondo_client
from conftest import FAST, ClientThread, write_model
from logreg import initial_model


class Idle(rondo_client.Client):
    def fit(self, parameters, config):
        raise AssertionError("no round runs: it needs two clients")

    def evaluate(self, parameters, config):
        raise AssertionError("no round runs: it needs two clients")


class PollLog(httpx.HTTPTransport):
    """A real transport that notes when each task poll left, when its answer came and its Retry-After."""

    def __init__(self):
        super().__init__()
        self.polls = []
        self.lock = threading.Lock()

    def handle_request(self, request):
        started = time.monotonic()
        response = super().handle_request(request)
        if request.url.path.endswith("/tasks/next"):
            with self.lock:
                self.polls.append((started, time.monotonic(), response.status_code,
                                   response.headers.get("Retry-After")))
        return response


def idle_polls(coordinator, seconds: float):
    log = PollLog()
    thread = ClientThread(
        lambda stop: rondo_client.Runner(
            Idle(), coordinator.url, name="idle", enrolment_token=coordinator.enrolment_token(), long_poll_seconds=0.1,
            stop_event=stop, transport=log).run(),
        name="idle")
    time.sleep(seconds)
    thread.stop()
    assert thread.error is None, thread.error
    return log.polls


def test_the_runner_waits_out_each_retry_after(coordinators, tmp_path):
    # One client, 0.25 polls/s: hints spread over 0..3 s (capped at the 3.3 s heartbeat interval).
    model = write_model(tmp_path / "init.safetensors", initial_model())
    coordinator = coordinators("--initial-model", model, "--min-available-clients", "2", "--poll-rate", "0.25", *FAST)
    polls = idle_polls(coordinator, 6)
    assert len(polls) >= 2, polls
    assert all(status == 204 and hint is not None for _, _, status, hint in polls), polls
    hints = [int(hint) for _, _, _, hint in polls]
    assert max(hints) > 0 and max(hints) <= 3, hints
    for (_, answered, _, hint), (next_start, _, _, _) in zip(polls, polls[1:]):
        assert next_start - answered >= int(hint) - 0.05, f"polled again {next_start - answered:.2f} s after a " \
                                                          f"Retry-After of {hint} s: {polls}"


def test_without_hints_the_runner_polls_at_once(coordinators, tmp_path):
    model = write_model(tmp_path / "init.safetensors", initial_model())
    coordinator = coordinators("--initial-model", model, "--min-available-clients", "2", "--poll-rate", "0", *FAST)
    polls = idle_polls(coordinator, 3)
    assert all(hint is None for _, _, _, hint in polls), polls
    assert len(polls) >= 2, polls
    gaps = [next_start - answered for (_, answered, _, _), (next_start, _, _, _) in zip(polls, polls[1:])]
    assert sorted(gaps)[len(gaps) // 2] < 0.3, f"polls again at once (median gap): {gaps}"
