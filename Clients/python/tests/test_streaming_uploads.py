"""Streamed fit-result uploads against a real coordinator, over the native HTTP API (httpx, and raw sockets where a
test has to control what part of a body is on the wire and when).

The coordinator checks an upload while it arrives: the safetensors header against the round's model before any
tensor byte, then every tensor value (NaN/Inf: 422 non_finite), spooling the bytes aside; only a whole, valid body
is folded into the round's average. These tests check that poisoned, cut, late and misshapen uploads leave the
committed model exactly the example-weighted mean of the valid ones, and that each is counted where it should be.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple
from urllib.parse import quote

import httpx
import numpy as np
from safetensors.numpy import save

from conftest import Coordinator, write_model

SAFETENSORS = "application/vnd.safetensors"


# -- helpers ---------------------------------------------------------------------------------------------------------


def serve_args(*, clients: int, quorum: int, fit_timeout: float) -> List[str]:
    """One round of fit only (no evaluation), selecting exactly `clients` clients and needing `quorum` results."""
    return [
        "--open-enrolment",
        "--min-available-clients", str(clients), "--min-fit-clients", str(clients),
        "--min-fit-results", str(quorum), "--fraction-evaluate", "0", "--rounds", "1",
        "--fit-timeout", str(fit_timeout), "--evaluate-timeout", "8",
        "--liveness-timeout", "60",  # clients busy uploading (or deliberately silent) must not count as gone
        "--drain-timeout", "1", "--log-level", "info",
    ]


def random_model(seed: int, shapes: Dict[str, Tuple[int, ...]]) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape, dtype=np.float32) for name, shape in shapes.items()}


def trained(base: Dict[str, np.ndarray], seed: int, scale: float = 0.05) -> Dict[str, np.ndarray]:
    """`base` plus a seeded random delta: a stand-in for one client's local training."""
    rng = np.random.default_rng(seed)
    return {name: (value + rng.standard_normal(value.shape, dtype=np.float32) * np.float32(scale)).astype(np.float32)
            for name, value in base.items()}


def encode(tensors: Dict[str, np.ndarray], num_examples: int) -> bytes:
    return save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata={"num_examples": str(num_examples)})


def header_of(body: bytes) -> Tuple[int, Dict]:
    """The safetensors header's length and its JSON."""
    (length,) = struct.unpack("<Q", body[:8])
    return length, json.loads(body[8:8 + length])


def with_last_value(body: bytes, value: float) -> bytes:
    """`body` with its very last float32 (the final element of the last tensor in data order) set to `value`."""
    length, header = header_of(body)
    ends = {name: entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"}
    last = max(ends, key=ends.get)
    assert 8 + length + ends[last] == len(body) and header[last]["dtype"] == "F32", (last, header[last])
    poisoned = bytearray(body)
    poisoned[-4:] = np.float32(value).tobytes()
    return bytes(poisoned)


def weighted_mean(updates: List[Tuple[Dict[str, np.ndarray], int]]) -> Dict[str, np.ndarray]:
    """FedAvg of `(tensors, num_examples)` pairs: computed in float64, rounded once to float32."""
    total = sum(n for _, n in updates)
    names = updates[0][0].keys()
    return {name: (sum(t[name].astype(np.float64) * n for t, n in updates) / total).astype(np.float32)
            for name in names}


def assert_model_equals(actual, expected: Dict[str, np.ndarray], what: str) -> None:
    assert sorted(actual.keys()) == sorted(expected.keys()), what
    for name, value in expected.items():
        got = np.asarray(actual[name])
        assert got.dtype == np.float32 and got.shape == value.shape, (what, name, got.dtype, got.shape)
        # Exact: the coordinator averages F32 in double precision and rounds once, as `weighted_mean` does.
        np.testing.assert_array_equal(got, value, err_msg=f"{what}: tensor {name}")


def metric(coordinator: Coordinator, name: str, default: Optional[float] = 0.0, **labels: str) -> float:
    """The value of the sample `name{labels}` in /metrics (exactly those labels); `default` when it is not there
    (yet), or an assertion error when `default` is None."""
    for line in coordinator.metrics_text().splitlines():
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    assert default is not None, f"no sample {name}{labels} in /metrics"
    return default


def assert_no_upload_in_progress(coordinator: Coordinator) -> None:
    """Every upload slot was given back (a refused, cut or late upload must not keep one)."""
    assert metric(coordinator, "rondo_uploads_in_progress", default=None) == 0


def wait_for_metric(coordinator: Coordinator, value: float, timeout: float, name: str, **labels: str) -> float:
    """Polls /metrics until the sample reaches `value` (the server may notice a cut connection a little later)."""
    deadline = time.monotonic() + timeout
    seen = metric(coordinator, name, **labels)
    while seen < value and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = metric(coordinator, name, **labels)
    return seen


def round_record(coordinator: Coordinator, number: int) -> Dict:
    return coordinator.admin(f"/v1/rounds/{number}").json()


@dataclass
class Site:
    """One registered client, talking to the coordinator's client API directly."""

    coordinator: Coordinator
    client_id: str
    token: str

    @classmethod
    def register(cls, coordinator: Coordinator, name: str) -> "Site":
        with coordinator.http() as http:
            response = http.post("/v1/clients", json={"name": name})
        assert response.status_code == 201, (response.status_code, response.text)
        data = response.json()
        return cls(coordinator, data["client_id"], data["token"])

    @property
    def auth(self) -> Dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def next_fit_task(self, timeout: float = 20) -> Dict:
        deadline = time.monotonic() + timeout
        with self.coordinator.http() as http:
            while time.monotonic() < deadline:
                response = http.get(f"/v1/clients/{self.client_id}/tasks/next", params={"wait_seconds": 2},
                                    headers=self.auth, timeout=15)
                assert response.status_code in (200, 204), (response.status_code, response.text)
                if response.status_code == 200 and response.json()["kind"] == "fit":
                    return response.json()
        raise AssertionError(f"{self.client_id} got no fit task in {timeout} s\n{self.coordinator.log()}")

    def upload(self, task_id: str, body: bytes) -> httpx.Response:
        with self.coordinator.http() as http:
            return http.post(f"/v1/tasks/{quote(task_id, safe='')}/result", content=body,
                             headers={**self.auth, "Content-Type": SAFETENSORS}, timeout=60)

    def report_failure(self, task_id: str, message: str) -> httpx.Response:
        with self.coordinator.http() as http:
            return http.post(f"/v1/tasks/{quote(task_id, safe='')}/failure", json={"message": message},
                             headers=self.auth)

    def open_upload(self, task_id: str, content_length: int) -> socket.socket:
        """A raw connection with the head of a result upload sent (declaring `content_length`) and no body yet."""
        sock = socket.create_connection(("127.0.0.1", self.coordinator.port), timeout=10)
        head = (f"POST /v1/tasks/{quote(task_id, safe='')}/result HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{self.coordinator.port}\r\n"
                f"Authorization: Bearer {self.token}\r\n"
                f"Content-Type: {SAFETENSORS}\r\n"
                f"Content-Length: {content_length}\r\n"
                "\r\n")
        sock.sendall(head.encode("latin-1"))
        return sock


def assert_refused(response: httpx.Response, status: int, code: str) -> Dict:
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] == code, error
    return error


def read_answer(sock: socket.socket, timeout: float) -> Tuple[int, Dict[str, str], Optional[Dict]]:
    """Reads one HTTP answer (status, lower-cased headers, JSON body) from `sock` within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    buffer = bytearray()

    def receive(what: str) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {what} within {timeout} s; got {bytes(buffer[:300])!r}")
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"no {what} within {timeout} s; got {bytes(buffer[:300])!r}") from None
        if not data:
            raise AssertionError(f"connection closed before the {what}; got {bytes(buffer[:300])!r}")
        buffer.extend(data)

    while b"\r\n\r\n" not in buffer:
        receive("answer head")
    end = buffer.index(b"\r\n\r\n")
    status_line, *lines = buffer[:end].decode("latin-1").split("\r\n")
    del buffer[:end + 4]
    status = int(status_line.split(" ")[1])
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            while b"\r\n" not in buffer:
                receive("chunk size")
            line_end = buffer.index(b"\r\n")
            size = int(buffer[:line_end].split(b";")[0], 16)
            while len(buffer) < line_end + 2 + size + 2:
                receive("chunk")
            body += buffer[line_end + 2:line_end + 2 + size]
            del buffer[:line_end + 2 + size + 2]
            if size == 0:
                break
    else:
        length = int(headers.get("content-length", "0"))
        while len(buffer) < length:
            receive("answer body")
        body = buffer[:length]
    return status, headers, (json.loads(bytes(body)) if body else None)


# -- tests -----------------------------------------------------------------------------------------------------------

# 5,000,000 float32 values (20 MB) in three tensors.
BIG_SHAPES = {"layer1.weight": (2000, 1500), "layer2.bias": (1000,), "layer2.weight": (1000, 1999)}


def test_poisoned_and_cut_uploads_leave_the_average_of_the_valid_ones(coordinators, tmp_path):
    """Six clients in one round: three valid updates, two whose very last value is non-finite (NaN, +Inf), one whose
    connection is cut halfway through its body. The committed model is the weighted mean of the three valid updates
    exactly (the poisoned ones streamed all but their last bytes through the checker before being refused), the
    rejections and the abort are counted, and each refused or cut task stayed open (its client could still report)."""
    base = random_model(7, BIG_SHAPES)
    assert sum(v.size for v in base.values()) == 5_000_000
    coordinator = coordinators(
        "--initial-model", write_model(tmp_path / "init.safetensors", base),
        *serve_args(clients=6, quorum=3, fit_timeout=60))
    sites = [Site.register(coordinator, f"site-{i}") for i in range(6)]
    tasks = [site.next_fit_task() for site in sites]
    assert len({t["task_id"] for t in tasks}) == 6 and {t["round"] for t in tasks} == {1}, tasks
    assert_model_equals(coordinator.weights(tasks[0]["model_version"]), base, "the served base model")

    valid = {i: (trained(base, seed=100 + i), n) for i, n in ((0, 10), (1, 30), (2, 60))}
    poisoned = {3: with_last_value(encode(trained(base, seed=103), 20), float("nan")),
                4: with_last_value(encode(trained(base, seed=104), 40), float("inf"))}

    def upload_valid(i: int) -> None:
        response = sites[i].upload(tasks[i]["task_id"], encode(*valid[i]))
        assert response.status_code == 202, (i, response.status_code, response.text)

    def upload_poisoned(i: int) -> None:
        error = assert_refused(sites[i].upload(tasks[i]["task_id"], poisoned[i]), 422, "non_finite")
        assert "layer2.weight" in error["message"], error  # the tensor the bad value is in

    # Interleaved, so a refused or cut upload arrives between folds of valid ones.
    upload_valid(0)
    upload_poisoned(3)
    upload_valid(1)

    # Client 5: the whole head (full Content-Length), about half the body, then the connection is closed.
    cut_body = encode(trained(base, seed=105), 50)
    sock = sites[5].open_upload(tasks[5]["task_id"], len(cut_body))
    sock.sendall(cut_body[:len(cut_body) // 2])
    sock.close()
    aborted = wait_for_metric(coordinator, 1, 15, "rondo_uploads_aborted_total")
    assert aborted == 1, f"rondo_uploads_aborted_total is {aborted} after a mid-body disconnect\n{coordinator.log()}"

    upload_poisoned(4)
    upload_valid(2)

    # None of that closed the round: three results in, three tasks still open. (A running round's record holds
    # its counts only once it ends, so the live tally is read from the counters.)
    assert round_record(coordinator, 1)["status"] == "running"
    assert coordinator.status()["committed_rounds"] == 0
    assert metric(coordinator, "rondo_results_total", kind="fit", outcome="accepted") == 3
    assert metric(coordinator, "rondo_results_total", kind="fit", outcome="rejected") == 2

    # The refused and cut tasks are still open: their clients can still report on them (202, not 409).
    for i in (3, 4, 5):
        response = sites[i].report_failure(tasks[i]["task_id"], f"site-{i} gives up")
        assert response.status_code == 202, (i, response.status_code, response.text)

    coordinator.wait_for(lambda s: s["committed_rounds"] >= 1, 30, "round 1 to commit")
    record = round_record(coordinator, 1)
    assert record["status"] == "committed", record
    assert (record["selected"], record["answered"], record["dropped"], record["rejected"]) == (6, 3, 3, 2), record
    assert record["result_version"] is not None and record["result_version"] != tasks[0]["model_version"], record

    expected = weighted_mean(list(valid.values()))
    assert_model_equals(coordinator.weights(record["result_version"]), expected, "the committed model")

    assert metric(coordinator, "rondo_result_rejections_total", reason="non_finite") == 2
    assert metric(coordinator, "rondo_results_total", kind="fit", outcome="rejected") == 2
    assert metric(coordinator, "rondo_results_total", kind="fit", outcome="accepted") == 3
    assert metric(coordinator, "rondo_uploads_aborted_total") == 1
    assert_no_upload_in_progress(coordinator)


class Trickle:
    """Sends `body` on `sock` a few KiB at a time (well above the coordinator's 1 KiB/s body-rate floor) until told
    to stop, never the last `keep` bytes; `sent` is how far it got, `error` what sending raised (the server may
    answer and close early)."""

    def __init__(self, sock: socket.socket, body: bytes, start: int, keep: int, step: int = 4096,
                 interval: float = 0.2):
        self.sent = start
        self.error: Optional[BaseException] = None
        self._stop = threading.Event()

        def run() -> None:
            try:
                while not self._stop.wait(interval) and self.sent + step <= len(body) - keep:
                    sock.sendall(body[self.sent:self.sent + step])
                    self.sent += step
            except OSError as error:
                self.error = error

        self._thread = threading.Thread(target=run, name="trickle", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive(), "the trickling thread did not stop"


def test_a_late_upload_streaming_while_the_round_commits_changes_nothing(coordinators, tmp_path):
    """Client A starts streaming its (very different) result and keeps trickling it; B and C answer; the round
    closes at the fit deadline with B and C (quorum 2) while A's body is still arriving, and commits. Then A sends
    the rest: its answer is 409 late, and the committed model is the weighted mean of B and C only."""
    base = random_model(11, {"dense.weight": (1000, 800), "dense.bias": (1000,), "head.weight": (200, 1000)})
    fit_timeout = 8
    coordinator = coordinators(
        "--initial-model", write_model(tmp_path / "init.safetensors", base),
        *serve_args(clients=3, quorum=2, fit_timeout=fit_timeout))
    a, b, c = (Site.register(coordinator, name) for name in ("a", "b", "c"))
    task_a, task_b, task_c = a.next_fit_task(), b.next_fit_task(), c.next_fit_task()

    body_a = encode({name: value + np.float32(1.0) for name, value in base.items()}, 1000)  # would dominate the mean
    header_length, _ = header_of(body_a)
    first = 8 + header_length + 64 * 1024  # the header and a little data
    sock = a.open_upload(task_a["task_id"], len(body_a))
    try:
        sock.sendall(body_a[:first])
        trickle = Trickle(sock, body_a, start=first, keep=256 * 1024)
        try:
            updates = [(trained(base, seed=21), 25), (trained(base, seed=22), 75)]
            for site, task, update in ((b, task_b, updates[0]), (c, task_c, updates[1])):
                response = site.upload(task["task_id"], encode(*update))
                assert response.status_code == 202, (response.status_code, response.text)

            # Still open (A's task is): the round ends at its fit deadline, with A's body still coming in.
            assert round_record(coordinator, 1)["status"] == "running"
            coordinator.wait_for(lambda s: s["committed_rounds"] >= 1, fit_timeout + 20, "round 1 to commit")
        finally:
            trickle.stop()
        assert trickle.error is None, f"the coordinator cut A's upload while it streamed: {trickle.error!r}"
        # A kept streaming through the round's close (and its last bytes were still unsent).
        assert first < trickle.sent < len(body_a), (first, trickle.sent, len(body_a))

        record = round_record(coordinator, 1)
        assert record["status"] == "committed", record
        assert (record["selected"], record["answered"], record["dropped"]) == (3, 2, 1), record
        version = record["result_version"]
        expected = weighted_mean(updates)
        assert_model_equals(coordinator.weights(version), expected, "the committed model")

        # Now the rest of A's body; the answer must be 409 late.
        try:
            sock.sendall(body_a[trickle.sent:])
        except OSError as error:
            raise AssertionError(f"sending the rest of A's body failed: {error!r}\n{coordinator.log()}") from None
        status, _, answer = read_answer(sock, timeout=20)
    finally:
        sock.close()
    assert status == 409 and answer is not None and answer["error"]["code"] == "late", (status, answer)

    # Nothing moved: the same commit, the same weights, the late answer counted as late.
    after = coordinator.status()
    assert after["committed_rounds"] == 1 and after["model_version"] == version, after
    assert round_record(coordinator, 1) == record
    assert_model_equals(coordinator.weights(version), expected, "the committed model after A's late upload")
    assert metric(coordinator, "rondo_results_total", kind="fit", outcome="late") == 1
    assert metric(coordinator, "rondo_results_total", kind="fit", outcome="accepted") == 2
    assert_no_upload_in_progress(coordinator)


def test_an_upload_with_the_wrong_shape_is_refused_before_its_data_is_sent(coordinators, tmp_path):
    """Only the request head and the safetensors header of a 16 MB upload go out: its header gives `weight` the
    wrong shape, and the coordinator answers 422 wrong_shape at once, without waiting for a single tensor byte.
    The refusal leaves the task open: a valid result is accepted afterwards."""
    base = random_model(3, {"bias": (1000,), "weight": (1000, 1000)})
    coordinator = coordinators(
        "--initial-model", write_model(tmp_path / "init.safetensors", base),
        *serve_args(clients=1, quorum=1, fit_timeout=30))
    site = Site.register(coordinator, "misshapen")
    task = site.next_fit_task()

    wrong = encode({"bias": base["bias"], "weight": np.zeros((4000, 1000), np.float32)}, 10)
    header_length, header = header_of(wrong)
    assert header["weight"]["shape"] == [4000, 1000] and len(wrong) > 16_000_000
    sock = site.open_upload(task["task_id"], len(wrong))
    try:
        sock.sendall(wrong[:8 + header_length])  # the header only: no tensor byte is sent
        started = time.monotonic()
        status, _, answer = read_answer(sock, timeout=5)
        elapsed = time.monotonic() - started
    finally:
        sock.close()
    assert status == 422 and answer is not None and answer["error"]["code"] == "wrong_shape", (status, answer)
    assert "weight" in answer["error"]["message"], answer
    assert elapsed < 5
    assert metric(coordinator, "rondo_result_rejections_total", reason="wrong_shape") == 1
    assert_no_upload_in_progress(coordinator)

    update = trained(base, seed=4)
    response = site.upload(task["task_id"], encode(update, 10))
    assert response.status_code == 202, (response.status_code, response.text)
    coordinator.wait_for(lambda s: s["committed_rounds"] >= 1, 20, "round 1 to commit")
    record = round_record(coordinator, 1)
    assert (record["answered"], record["rejected"]) == (1, 1), record
    assert_model_equals(coordinator.weights(record["result_version"]), weighted_mean([(update, 10)]),
                        "the committed model")
