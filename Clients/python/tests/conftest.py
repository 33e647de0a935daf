"""Fixtures: a real `rondo serve` (binary from $RONDO_BINARY only) on a free port with a temp data dir."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import httpx
import numpy as np
import pytest
from safetensors.numpy import save_file

from rondo_client import Parameters, decode_safetensors


def binary_path() -> str:
    path = os.environ.get("RONDO_BINARY")
    if not path:
        pytest.fail(
            "RONDO_BINARY is not set: run with RONDO_BINARY=/path/to/rondo python -m pytest Clients/python/tests"
        )
    if not os.access(path, os.X_OK):
        pytest.fail(f"RONDO_BINARY={path} is not an executable file")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Coordinator:
    """One `rondo serve` process; `stop()` sends SIGTERM twice, then kills."""

    def __init__(self, data_dir: Path, port: Optional[int] = None, scheme: str = "http", ca_file: Optional[str] = None):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.scheme = scheme
        self.ca_file = ca_file
        self.process: Optional[subprocess.Popen] = None
        self.log_path = data_dir.parent / f"{data_dir.name}-serve-{self.port}.log"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, *args: str, timeout: float = 20.0) -> "Coordinator":
        command = [binary_path(), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir), *args]
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rondo serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.http().get("/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"rondo serve did not become healthy in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGTERM):
            try:
                process.send_signal(sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=3)
                return
            except subprocess.TimeoutExpired:
                pass
        process.kill()
        process.wait(timeout=5)

    # -- admin API ---------------------------------------------------------------------------------

    def admin_token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    def enrolment_token(self) -> str:
        return (self.data_dir / "enrolment-token").read_text().strip()

    def http(self) -> httpx.Client:
        verify = self.ca_file if self.ca_file else True
        return httpx.Client(base_url=self.url, verify=verify, timeout=10)

    def admin(self, path: str) -> httpx.Response:
        with self.http() as http:
            response = http.get(path, headers={"Authorization": f"Bearer {self.admin_token()}"})
        response.raise_for_status()
        return response

    def admin_post(self, path: str, body: Optional[Dict] = None) -> httpx.Response:
        with self.http() as http:
            response = http.post(path, json=body, headers={"Authorization": f"Bearer {self.admin_token()}"})
        response.raise_for_status()
        return response

    def status(self) -> Dict:
        return self.admin("/v1/status").json()

    def weights(self, version: int) -> Parameters:
        return decode_safetensors(self.admin(f"/v1/checkpoints/{version}/weights").content)[0]

    def metrics_text(self) -> str:
        with self.http() as http:
            return http.get("/metrics").text

    def wait_for(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.status()
                if predicate(last):
                    return last
                if last.get("phase") == "finished":
                    raise AssertionError(f"federation finished before {what}: {last}\n{self.log()}")
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; last status {last}\n{self.log()}")


FAST = [
    "--fit-timeout", "8",
    "--evaluate-timeout", "8",
    "--liveness-timeout", "10",
    "--drain-timeout", "1",
    "--log-level", "info",
]


@pytest.fixture
def coordinators(tmp_path):
    """Factory of coordinators, all stopped at the end of the test."""
    started: List[Coordinator] = []

    def make(*args: str, data_dir: Optional[Path] = None, port: Optional[int] = None, **kwargs) -> Coordinator:
        coordinator = Coordinator(data_dir or (tmp_path / f"data{len(started)}"), port=port, **kwargs)
        started.append(coordinator)
        return coordinator.start(*args)

    yield make
    for coordinator in started:
        coordinator.stop()


def write_model(path: Path, tensors: Dict[str, np.ndarray]) -> str:
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path))
    return str(path)


class ClientThread:
    """Runs `start` (or any callable taking a stop_event) in a thread and keeps what it raised."""

    def __init__(self, target, name: str = "client"):
        self.stop_event = threading.Event()
        self.error: Optional[BaseException] = None
        self.result = None

        def run():
            try:
                self.result = target(self.stop_event)
            except BaseException as error:  # noqa: BLE001 - kept for the test to assert on
                self.error = error

        self.thread = threading.Thread(target=run, name=name, daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "client thread did not stop"


def run_until_committed(coordinator: Coordinator, threads, rounds: int, timeout: float = 90) -> Dict:
    """Waits until `rounds` rounds committed, stops the client threads whatever happened, and checks none of
    them raised. Returns the status that met the condition."""
    try:
        status = coordinator.wait_for(lambda s: s["committed_rounds"] >= rounds, timeout, f"{rounds} committed rounds")
    finally:
        for thread in threads:
            thread.stop()
    for thread in threads:
        assert thread.error is None, thread.error
    assert status["committed_rounds"] >= rounds
    return status
