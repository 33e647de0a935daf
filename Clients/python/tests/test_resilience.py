"""Client behaviour on coordinator answers that are hard to provoke from a real coordinator, against an httpx
mock transport: a refused model download, a hostile Retry-After, a URL without a scheme, a 304 for the wrong
model."""

import hashlib
import threading

import httpx
import numpy as np
import pytest

import rondo_client
from rondo_client.connection import Connection, _retry_after
from rondo_client.parameters import encode_fit_result


class Recorder(rondo_client.Client):
    def fit(self, parameters, config):
        return parameters, 1, {}

    def evaluate(self, parameters, config):
        return 0.0, 1, {}


def task_json(task_id="1-fit-1", version=7, sha="0" * 64):
    return {"task_id": task_id, "round": 1, "kind": "fit", "model_version": version, "model_sha256": sha,
            "config": {}, "deadline_seconds": 30}


def test_a_refused_model_download_is_reported_failed_not_polled_again_and_again():
    calls = {"next": 0, "model": 0, "failure": []}
    stop = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/clients":
            return httpx.Response(201, json={"client_id": "c-1", "token": "t", "heartbeat_interval_seconds": 5})
        if path.endswith("/tasks/next"):
            calls["next"] += 1
            if calls["failure"]:
                stop.set()  # the coordinator closed the task: nothing more to hand out
                return httpx.Response(204)
            return httpx.Response(200, json=task_json())
        if path.startswith("/v1/models/"):
            calls["model"] += 1
            return httpx.Response(409, json={"error": {"code": "checkpoint_corrupt", "message": "v7 is corrupt"}})
        if path.endswith("/failure"):
            calls["failure"].append(request.read().decode())
            return httpx.Response(202, json={"status": "recorded"})
        if request.method == "DELETE":
            return httpx.Response(204)
        return httpx.Response(404)

    runner = rondo_client.Runner(
        Recorder(), coordinator="http://coordinator.test", name="t", transport=httpx.MockTransport(handler),
        long_poll_seconds=0.01, stop_event=stop)
    runner.run()
    assert calls["model"] == 1 and calls["next"] == 2, calls
    assert len(calls["failure"]) == 1 and "checkpoint_corrupt" in calls["failure"][0]
    assert runner.tasks_done == 0, "a task whose model never arrived is not a task done"


def test_retry_after_is_finite_and_capped():
    def answer(value):
        return _retry_after(httpx.Response(429, headers={"Retry-After": value}))

    assert answer("3") == 3.0
    assert answer("inf") is None and answer("nan") is None
    assert answer("1e9") == 300.0
    assert answer("-5") == 0.0


def test_a_coordinator_url_without_a_scheme_is_refused_at_once():
    with pytest.raises(ValueError, match="http:// or https://"):
        Connection("127.0.0.1:8470", "site")


def test_a_304_for_another_model_is_not_taken_for_the_tasks_model():
    model_a = {"w": np.zeros(2, np.float32)}
    model_b = {"w": np.ones(2, np.float32)}
    bytes_a, bytes_b = encode_fit_result(model_a, 1, {}), encode_fit_result(model_b, 1, {})
    sha_a, sha_b = hashlib.sha256(bytes_a).hexdigest(), hashlib.sha256(bytes_b).hexdigest()
    served = {"count": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        served["count"] += 1
        if served["count"] == 1:
            return httpx.Response(200, content=bytes_a)
        if "if-none-match" in request.headers:
            return httpx.Response(304)  # a confused cache in front of the coordinator
        return httpx.Response(200, content=bytes_b)

    connection = Connection("http://coordinator.test", "site", transport=httpx.MockTransport(handler))
    connection.credentials = type("C", (), {"client_id": "c", "token": "t", "heartbeat_interval": 5})()
    assert np.array_equal(connection.model(1, sha_a)["w"], model_a["w"])
    assert np.array_equal(connection.model(2, sha_b)["w"], model_b["w"]), "the 304 was not trusted"
