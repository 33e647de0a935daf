"""Resumed model downloads, against a real coordinator behind a TCP proxy written here: the proxy cuts the first
model answer partway through its body (and, for some tests, rewrites a header), and logs every request and answer
head it forwarded, so the tests see exactly what the client asked for and what the coordinator answered."""

from __future__ import annotations

import hashlib
import logging
import queue
import re
import socket
import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import pytest

from conftest import FAST, write_model
from rondo_client import Connection, RetryPolicy, TransportError, decode_safetensors

MODEL_PATH = re.compile(r"/v1/models/\d+$")


@dataclass
class Exchange:
    """One request the proxy forwarded and the head of its answer (header names lower-case)."""

    method: str
    path: str
    headers: Dict[str, str]  # as the client sent them
    sent_headers: Dict[str, str]  # as the coordinator got them
    status: Optional[int] = None
    response_headers: Dict[str, str] = field(default_factory=dict)  # as the coordinator sent them
    forwarded_headers: Dict[str, str] = field(default_factory=dict)  # as the client got them
    body: bytearray = field(default_factory=bytearray)  # the body bytes the client got
    cut: bool = False


def _read_head(sock: socket.socket, buffer: bytearray) -> Optional[bytes]:
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        if not data:
            return None
        buffer += data
    end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:end])
    del buffer[:end]
    return head


def _parse_head(head: bytes) -> Tuple[str, List[Tuple[str, str]]]:
    start, *lines = head.decode("latin-1").split("\r\n")[:-2]
    pairs = [line.split(":", 1) for line in lines]
    return start, [(name.strip(), value.strip()) for name, value in pairs]


def _build_head(start: str, headers: List[Tuple[str, str]]) -> bytes:
    return "".join([f"{start}\r\n", *(f"{name}: {value}\r\n" for name, value in headers), "\r\n"]).encode("latin-1")


def _lower(headers: List[Tuple[str, str]]) -> Dict[str, str]:
    return {name.lower(): value for name, value in headers}


def _copy_body(src: socket.socket, dst: socket.socket, buffer: bytearray, length: int,
               keep: Optional[bytearray] = None) -> None:
    """Forwards `length` body bytes (the first of them possibly already in `buffer`)."""
    while length > 0:
        if not buffer:
            data = src.recv(65536)
            if not data:
                raise ConnectionError("closed in the middle of a body")
            buffer += data
        piece = bytes(buffer[:length])
        del buffer[: len(piece)]
        dst.sendall(piece)
        if keep is not None:
            keep += piece
        length -= len(piece)


class CuttingProxy:
    """A TCP proxy to a coordinator for HTTP/1.1 with Content-Length framing (what the coordinator and httpx use).

    ``cut_fraction``: a model answer (200/206 to ``GET /v1/models/N``) gets its head and that fraction of its body,
    then the connection is closed; only the first ``cuts`` model answers (``None``: all of them, until ``cuts`` is
    set). ``stale_if_range``: the value every ``If-Range`` is replaced with. ``content_range``: maps the first
    206's ``Content-Range`` (first, last, total) to the one the client gets. Everything else passes untouched.
    """

    def __init__(self, upstream_port: int, *, cut_fraction: Optional[float] = None, cuts: Optional[int] = 1,
                 stale_if_range: Optional[str] = None,
                 content_range: Optional[Callable[[int, int, int], Tuple[int, int, int]]] = None):
        self.upstream_port = upstream_port
        self.cut_fraction = cut_fraction
        self.cuts = cuts
        self.stale_if_range = stale_if_range
        self.content_range = content_range
        self.exchanges: List[Exchange] = []
        self.errors: List[str] = []  # framing the proxy does not handle; asserted empty
        self._lock = threading.Lock()
        self._sockets: List[socket.socket] = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def model_exchanges(self) -> List[Exchange]:
        assert self.errors == [], self.errors
        with self._lock:
            return [e for e in self.exchanges if e.method == "GET" and MODEL_PATH.match(e.path)]

    def close(self) -> None:
        self._closed = True
        with self._lock:
            sockets = [self._listener, *self._sockets]
        for sock in sockets:
            _shutdown(sock)
            sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._sockets += [client, upstream]
            pending: "queue.Queue[Exchange]" = queue.Queue()
            requests = threading.Thread(target=self._requests, args=(client, upstream, pending), daemon=True)
            requests.start()
            threading.Thread(target=self._answers, args=(client, upstream, pending, requests), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, pending: "queue.Queue[Exchange]") -> None:
        buffer = bytearray()
        try:
            while True:
                head = _read_head(client, buffer)
                if head is None:
                    return
                start, headers = _parse_head(head)
                method, path, _ = start.split(" ", 2)
                sent = [(name, self.stale_if_range if name.lower() == "if-range" and self.stale_if_range else value)
                        for name, value in headers]
                exchange = Exchange(method, path, _lower(headers), _lower(sent))
                if "transfer-encoding" in exchange.headers:
                    self.errors.append(f"chunked request {method} {path}")
                with self._lock:
                    self.exchanges.append(exchange)
                pending.put(exchange)
                upstream.sendall(_build_head(start, sent))
                _copy_body(client, upstream, buffer, int(exchange.headers.get("content-length", "0")))
        except OSError:
            return
        finally:
            _shutdown(client)
            _shutdown(upstream)

    def _answers(self, client: socket.socket, upstream: socket.socket, pending: "queue.Queue[Exchange]",
                 requests: threading.Thread) -> None:
        buffer = bytearray()
        try:
            while True:
                head = _read_head(upstream, buffer)
                if head is None:
                    return
                start, headers = _parse_head(head)
                status = int(start.split(" ")[1])
                exchange = pending.get(timeout=10)
                exchange.status, exchange.response_headers = status, _lower(headers)
                if "transfer-encoding" in exchange.response_headers:
                    self.errors.append(f"chunked answer to {exchange.method} {exchange.path}")
                no_body = status in (204, 304) or status < 200 or exchange.method == "HEAD"
                length = 0 if no_body else int(exchange.response_headers.get("content-length", "0"))
                model = exchange.method == "GET" and MODEL_PATH.match(exchange.path) and status in (200, 206)
                if model and status == 206 and self.content_range is not None:
                    rewrite, self.content_range = self.content_range, None
                    headers = [(name, _rewrite_range(value, rewrite) if name.lower() == "content-range" else value)
                               for name, value in headers]
                cut_at = None
                if model and self.cut_fraction is not None and (self.cuts is None or self.cuts > 0):
                    self.cuts = None if self.cuts is None else self.cuts - 1
                    cut_at = int(length * self.cut_fraction)
                exchange.forwarded_headers = _lower(headers)
                client.sendall(_build_head(start, headers))
                keep = exchange.body if model else None
                if cut_at is None:
                    _copy_body(upstream, client, buffer, length, keep)
                    continue
                _copy_body(upstream, client, buffer, cut_at, keep)
                exchange.cut = True
                return  # the finally clause closes the connection, in the middle of the body
        except (OSError, queue.Empty):
            return
        finally:
            _shutdown(client)
            _shutdown(upstream)
            requests.join(5)
            client.close()
            upstream.close()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _rewrite_range(content_range: str, rewrite: Callable[[int, int, int], Tuple[int, int, int]]) -> str:
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", content_range)
    assert match, content_range
    return "bytes {}-{}/{}".format(*rewrite(*(int(g) for g in match.groups())))


@dataclass
class Served:
    url: str
    port: int
    version: int
    sha256: str
    tensors: Dict[str, np.ndarray]


@pytest.fixture
def served(coordinators, tmp_path) -> Served:
    """A coordinator with a random 4 MB float32 model (random, so bytes spliced at a wrong offset cannot pass)."""
    rng = np.random.default_rng(17)
    tensors = {"bias": rng.standard_normal(1000).astype(np.float32),
               "weight": rng.standard_normal((1000, 1000)).astype(np.float32)}
    model = write_model(tmp_path / "big.safetensors", tensors)
    coordinator = coordinators("--initial-model", model, "--open-enrolment", "--min-available-clients", "5", *FAST)
    status = coordinator.status()
    return Served(coordinator.url, coordinator.port, int(status["model_version"]), str(status["model_sha256"]),
                  tensors)


@pytest.fixture
def proxies():
    started: List[CuttingProxy] = []

    def make(port: int, **options) -> CuttingProxy:
        started.append(CuttingProxy(port, **options))
        return started[-1]

    yield make
    for proxy in started:
        proxy.close()


def connect(proxy: CuttingProxy) -> Connection:
    connection = Connection(proxy.url, "resumer", request_timeout=20)
    connection.register()
    return connection


def assert_is_the_model(parameters, served: Served) -> None:
    assert list(parameters) == ["bias", "weight"]
    for name, array in served.tensors.items():
        assert parameters[name].dtype == np.float32 and np.array_equal(parameters[name], array), name


def messages(caplog, level: int, pattern: str) -> List[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "rondo_client" and r.levelno == level and re.search(pattern, r.getMessage())]


def test_a_download_cut_halfway_resumes_from_the_bytes_received(served, proxies, caplog):
    caplog.set_level(logging.INFO, logger="rondo_client")
    proxy = proxies(served.port, cut_fraction=0.5)
    with connect(proxy) as connection:
        parameters = connection.model(served.version, served.sha256)
        assert_is_the_model(parameters, served)
        assert (connection.download_resumes, connection.model_downloads) == (1, 1)

        first, second = proxy.model_exchanges()
        total = int(first.response_headers["content-length"])
        received = len(first.body)
        assert first.cut and first.status == 200 and 0 < received < total and abs(received - total // 2) <= 1
        assert "range" not in first.headers and "if-range" not in first.headers
        assert first.response_headers["etag"] == f'"{served.sha256}"'
        assert second.headers["range"] == f"bytes={received}-"
        assert second.headers["if-range"] == first.response_headers["etag"]
        assert second.status == 206 and not second.cut
        assert second.response_headers["content-range"] == f"bytes {received}-{total - 1}/{total}"
        # What reached the client, spliced, is the model the coordinator names.
        delivered = bytes(first.body + second.body)
        assert len(delivered) == total and hashlib.sha256(delivered).hexdigest() == served.sha256
        assert_is_the_model(decode_safetensors(delivered)[0], served)

        resumed = messages(caplog, logging.INFO, r"download interrupted")
        assert len(resumed) == 1 and f"resuming from byte {received} " in resumed[0], resumed

        # Cached by SHA-256: no further request.
        assert_is_the_model(connection.model(served.version, served.sha256), served)
        assert len(proxy.model_exchanges()) == 2


def test_a_download_cut_before_its_first_body_byte_is_fetched_again_whole(served, proxies, caplog):
    caplog.set_level(logging.INFO, logger="rondo_client")
    proxy = proxies(served.port, cut_fraction=0.0)
    with connect(proxy) as connection:
        assert_is_the_model(connection.model(served.version, served.sha256), served)
        assert connection.download_resumes == 1

    first, second = proxy.model_exchanges()
    assert first.cut and first.status == 200 and first.body == b""
    # Nothing to resume from: a plain request, answered with the whole model.
    assert "range" not in second.headers and "if-range" not in second.headers
    assert second.status == 200 and not second.cut
    assert len(second.body) == int(second.response_headers["content-length"])
    assert len(messages(caplog, logging.INFO, r"download interrupted after 0 of \d+ bytes .*from byte 0 ")) == 1


def test_a_resume_with_a_stale_if_range_takes_the_whole_model_instead(served, proxies, caplog):
    caplog.set_level(logging.INFO, logger="rondo_client")
    stale = '"' + "0" * 64 + '"'
    proxy = proxies(served.port, cut_fraction=0.5, stale_if_range=stale)
    with connect(proxy) as connection:
        assert_is_the_model(connection.model(served.version, served.sha256), served)
        assert connection.download_resumes == 1

    first, second = proxy.model_exchanges()
    received = len(first.body)
    assert first.cut and received > 0
    assert second.headers["range"] == f"bytes={received}-" and second.headers["if-range"] == f'"{served.sha256}"'
    assert second.sent_headers["if-range"] == stale
    # The coordinator's bytes "changed": it answers with all of them, and the client keeps only those.
    assert second.status == 200 and "content-range" not in second.response_headers
    assert len(second.body) == int(second.response_headers["content-length"])
    assert hashlib.sha256(second.body).hexdigest() == served.sha256
    assert len(messages(caplog, logging.INFO, r"sent the whole model instead of the rest")) == 1


ANOTHER_RANGE = {
    # A model one byte longer (a consistent range of other bytes); the rest from one byte too early; not the rest.
    "another total": lambda first, last, total: (first, last + 1, total + 1),
    "another start": lambda first, last, total: (first - 1, last, total),
    "another end": lambda first, last, total: (first, last - 1, total),
}


@pytest.mark.parametrize("case", sorted(ANOTHER_RANGE))
def test_a_resume_answered_with_another_range_starts_over(served, proxies, caplog, case):
    caplog.set_level(logging.INFO, logger="rondo_client")
    rewrite = ANOTHER_RANGE[case]
    proxy = proxies(served.port, cut_fraction=0.5, content_range=rewrite)
    with connect(proxy) as connection:
        assert_is_the_model(connection.model(served.version, served.sha256), served)
        assert connection.download_resumes == 2  # the resume, then the fresh start

    first, second, third = proxy.model_exchanges()
    total, received = int(first.response_headers["content-length"]), len(first.body)
    assert first.cut and 0 < received < total
    assert second.headers["range"] == f"bytes={received}-" and second.status == 206
    assert second.response_headers["content-range"] == f"bytes {received}-{total - 1}/{total}"
    answered = "bytes {}-{}/{}".format(*rewrite(received, total - 1, total))
    assert second.forwarded_headers["content-range"] == answered
    assert "range" not in third.headers and "if-range" not in third.headers
    assert third.status == 200 and len(third.body) == total and not third.cut
    warned = messages(caplog, logging.WARNING, r"Content-Range")
    assert len(warned) == 1 and repr(answered) in warned[0] and "starting over" in warned[0], warned


def test_a_download_interrupted_too_often_raises_and_the_next_call_goes_on_from_its_bytes(served, proxies):
    proxy = proxies(served.port, cut_fraction=0.5, cuts=None)  # every model answer is cut
    with connect(proxy) as connection:
        connection.download_resume_policy = RetryPolicy(initial_delay=0.001, max_delay=0.01, max_attempts=2)
        with pytest.raises(TransportError) as caught:
            connection.model(served.version, served.sha256)
        assert caught.value.code == "transport" and caught.value.retryable
        assert caught.value.endpoint == f"GET /v1/models/{served.version}"
        assert "interrupted 3 times" in caught.value.message, caught.value.message
        assert (connection.download_resumes, connection.model_downloads) == (2, 0)

        cut = proxy.model_exchanges()
        assert len(cut) == 3 and all(e.cut for e in cut)
        received = 0
        for exchange in cut:  # each resumes exactly where the bytes so far end
            assert exchange.headers.get("range") == (f"bytes={received}-" if received else None)
            assert exchange.status == (206 if received else 200)
            received += len(exchange.body)
        assert 0 < received < int(cut[0].response_headers["content-length"])

        # The runner's retry: the next call for the same model goes on from the bytes kept, not from zero.
        proxy.cuts = 0
        assert_is_the_model(connection.model(served.version, served.sha256), served)
        last = proxy.model_exchanges()[3:]
        assert len(last) == 1 and last[0].headers["range"] == f"bytes={received}-" and last[0].status == 206
        assert connection.model_downloads == 1
