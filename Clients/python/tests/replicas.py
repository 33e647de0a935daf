"""Fake coordinator replicas for the failover tests: real HTTP servers on 127.0.0.1 in threads, sharing one fake
federation (as real replicas share one database), a dead URL, and a replica that stalls then drops its calls."""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

import numpy as np

from rondo_client.parameters import encode_safetensors

ENROLMENT_TOKEN = "enrolment-secret-1"
TOKEN = "client-token-shared-by-the-replicas"
CLIENT_ID = "c-1"
MODEL_VERSION = 7
TASK_ID = "1-fit-c-1"

# -- fake replicas -----------------------------------------------------------------------------------------------


@dataclass
class Seen:
    """One request a fake replica received."""

    method: str
    path: str
    query: Dict[str, List[str]]
    headers: Dict[str, str]  # lower-case names
    body: bytes
    at: float = field(default_factory=time.monotonic)

    @property
    def authorization(self) -> Optional[str]:
        return self.headers.get("authorization")


@dataclass
class Reply:
    status: int
    body: Any = None  # dict/list: JSON; bytes: as is; None: empty
    headers: Dict[str, str] = field(default_factory=dict)


#: A replica's answer to a request: a Reply, or None when it wrote (or cut) the answer itself through the handler.
Answer = Callable[[Seen, BaseHTTPRequestHandler], Optional[Reply]]

#: What a Coordinator's ``before`` hook returns when it wrote (or cut) the answer itself.
HANDLED = Reply(0)


class Replica:
    """A ThreadingHTTPServer on 127.0.0.1 (port chosen by binding port 0) that records every request and answers
    with ``answer``."""

    def __init__(self, answer: Answer, tls: Optional[Tuple[Path, Path]] = None):
        self.answer = answer
        self.requests: List[Seen] = []
        self.errors: List[BaseException] = []
        self._lock = threading.Lock()
        replica = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                replica._handle(self)

            do_POST = do_DELETE = do_PUT = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.port = self.server.server_address[1]
        self._stopped = False
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       name=f"replica-{self.port}", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def seen(self) -> List[Seen]:
        with self._lock:
            return list(self.requests)

    def stop(self) -> None:
        """Stops listening: new connections are refused from now on."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        seen = Seen(handler.command, parts.path, parse_qs(parts.query),
                    {name.lower(): value for name, value in handler.headers.items()}, body)
        with self._lock:
            self.requests.append(seen)
        try:
            reply = self.answer(seen, handler)
        except BaseException as error:  # noqa: BLE001 - kept for the test to see
            self.errors.append(error)
            reply = Reply(500, {"error": {"code": "internal", "message": f"fake replica failed: {error!r}"}})
        if reply is None:
            return
        if isinstance(reply.body, (dict, list)):
            payload = json.dumps(reply.body).encode()
            content_type: Optional[str] = "application/json"
        else:
            payload, content_type = (reply.body or b""), None
        handler.send_response(reply.status)
        if content_type is not None and "Content-Type" not in reply.headers:
            handler.send_header("Content-Type", content_type)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if payload and handler.command != "HEAD":
            handler.wfile.write(payload)


def error_reply(status: int, code: str, message: str, headers: Optional[Dict[str, str]] = None) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}}, headers or {})


def standby_reply(leader: Optional[str]) -> Reply:
    """What a standby answers every /v1 request with."""
    headers = {"Retry-After": "1"}
    if leader is not None:
        headers["Rondo-Leader"] = leader
    where = f"the leader is at {leader}" if leader else "the leader is not known"
    return error_reply(503, "not_leader", f"this coordinator is a standby; {where}", headers)


class Federation:
    """The state the replicas share (their database): one client, one task, one model."""

    def __init__(self) -> None:
        self.model = {"w": np.arange(4096, dtype=np.float32), "b": np.array([0.5], dtype=np.float32)}
        self.model_bytes = encode_safetensors(self.model)
        self.model_sha256 = hashlib.sha256(self.model_bytes).hexdigest()
        self.registrations = 0
        self.results: List[bytes] = []
        self.tasks_given = 0
        self.lock = threading.Lock()

    def task(self) -> Dict[str, Any]:
        return {"task_id": TASK_ID, "round": 1, "kind": "fit", "model_version": MODEL_VERSION,
                "model_sha256": self.model_sha256, "config": {"learning_rate": "0.1"}, "deadline_seconds": 30}


class Coordinator:
    """A fake coordinator replica on a :class:`Federation`: leads (answers the client API) or stands by (503
    ``not_leader``, naming ``leader`` in ``Rondo-Leader`` when set). ``role`` may change while it runs;
    ``before``, when set, sees each request first: it may answer it (a Reply, or :data:`HANDLED` when it wrote
    the answer itself), or return None to let the replica answer (after changing its role, say)."""

    def __init__(self, federation: Federation, role: str = "leader", leader: Optional[str] = None,
                 before: Optional[Answer] = None, **replica_options: Any):
        self.federation = federation
        self.role = role
        self.leader = leader
        self.before = before
        self.replica = Replica(self._answer, **replica_options)

    @property
    def url(self) -> str:
        return self.replica.url

    def seen(self) -> List[Seen]:
        return self.replica.seen()

    def _answer(self, seen: Seen, handler: BaseHTTPRequestHandler) -> Optional[Reply]:
        if self.before is not None:
            early = self.before(seen, handler)
            if early is HANDLED:
                return None
            if early is not None:
                return early
        if not seen.path.startswith("/v1/"):
            return Reply(404)
        if self.role == "standby":
            return standby_reply(self.leader)
        return self._lead(seen)

    def _lead(self, seen: Seen) -> Reply:
        federation = self.federation
        if seen.method == "POST" and seen.path == "/v1/clients":
            if seen.authorization != f"Bearer {ENROLMENT_TOKEN}":
                return error_reply(401, "unauthenticated", "registration needs the federation's enrolment token")
            name = json.loads(seen.body)["name"]
            assert name == "site-a", name
            with federation.lock:
                federation.registrations += 1
            return Reply(201, {"client_id": CLIENT_ID, "token": TOKEN, "heartbeat_interval_seconds": 5})
        if seen.authorization != f"Bearer {TOKEN}":
            return error_reply(401, "unauthenticated", "unknown or missing token")
        if seen.method == "GET" and seen.path == f"/v1/clients/{CLIENT_ID}/tasks/next":
            with federation.lock:
                first = federation.tasks_given == 0
                federation.tasks_given += 1
            return Reply(200, federation.task()) if first else Reply(204)
        if seen.method == "GET" and seen.path == f"/v1/models/{MODEL_VERSION}":
            return self._model(seen)
        if seen.method == "POST" and seen.path == f"/v1/tasks/{TASK_ID}/result":
            with federation.lock:
                federation.results.append(seen.body)
            return Reply(202, {"status": "accepted"})
        if seen.method == "POST" and seen.path == f"/v1/clients/{CLIENT_ID}/heartbeat":
            return Reply(204)
        if seen.method == "DELETE" and seen.path == f"/v1/clients/{CLIENT_ID}":
            return Reply(204)
        return error_reply(404, "not_found", f"no route {seen.method} {seen.path}")

    def _model(self, seen: Seen) -> Reply:
        data = self.federation.model_bytes
        etag = f'"{self.federation.model_sha256}"'
        headers = {"ETag": etag, "Accept-Ranges": "bytes", "Content-Type": "application/vnd.safetensors"}
        if seen.headers.get("if-none-match") == etag:
            return Reply(304, None, {"ETag": etag})
        wanted = seen.headers.get("range")
        if wanted and seen.headers.get("if-range", etag) == etag:
            first = int(wanted.removeprefix("bytes=").rstrip("-"))
            headers["Content-Range"] = f"bytes {first}-{len(data) - 1}/{len(data)}"
            return Reply(206, data[first:], headers)
        return Reply(200, data, headers)


def dead_url() -> str:
    """The URL of a port nothing listens on (bound to find a free one, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class StallingReplica:
    """Accepts connections and reads requests without answering; once ``count`` requests are in, closes them all
    (a replica dying with calls in flight)."""

    def __init__(self, count: int, timeout: float = 5.0):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.count, self.timeout = count, timeout
        self.received = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        held = []
        self.listener.settimeout(self.timeout)
        try:
            while len(held) < self.count:
                sock, _ = self.listener.accept()
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                held.append(sock)
                self.received += 1
        except OSError:
            pass
        finally:
            for sock in held:
                sock.close()
            self.listener.close()
