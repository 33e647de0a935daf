"""Low-level calls to the coordinator's /v1 client API (one method per endpoint), over httpx.

Every call returns a value or raises a :class:`~rondo_client.errors.RondoError`; retrying is the caller's
choice (:func:`rondo_client.start` retries transport errors, 5xx and 429, and registers again after a 401).
"""

from __future__ import annotations

import hashlib
import json
import logging
import ssl
import threading
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

import httpx

from .errors import (
    InvalidResponseError,
    RefusedError,
    RondoError,
    TransportError,
    UnauthenticatedError,
    UnavailableError,
    UntrustedServerError,
)
from .parameters import SAFETENSORS_MEDIA_TYPE, Parameters, decode_safetensors, encode_fit_result, clean_metrics
from .reachability import _GATEWAY_STATUSES, Reachability

# Defined in their own modules, and still importable from this one (where they used to be).
from .identity import IDENTITY_KEY_ENV as IDENTITY_KEY_ENV
from .identity import read_identity_key_file as read_identity_key_file
from .identity import resolve_identity_key as resolve_identity_key
from .reachability import is_throttled as is_throttled
from .reachability import is_unreachable as is_unreachable

logger = logging.getLogger("rondo_client")

#: While the coordinator stays unreachable (or keeps throttling one call), a warning at most this often.
LOG_REPEAT_SECONDS = 30.0


@dataclass
class Credentials:
    client_id: str
    token: str
    heartbeat_interval: float


@dataclass
class Task:
    """A task as the coordinator handed it out (``GET /v1/clients/{id}/tasks/next``)."""

    task_id: str
    round: int
    kind: str  # "fit" or "evaluate"
    model_version: int
    model_sha256: str
    config: Dict[str, str]
    deadline_seconds: float
    traceparent: Optional[str] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Task":
        try:
            return cls(
                task_id=str(data["task_id"]),
                round=int(data["round"]),
                kind=str(data["kind"]),
                model_version=int(data["model_version"]),
                model_sha256=str(data["model_sha256"]),
                config={str(k): str(v) for k, v in (data.get("config") or {}).items()},
                deadline_seconds=float(data["deadline_seconds"]),
                traceparent=data.get("traceparent"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidResponseError(f"task is missing or has a bad field: {error}") from None


def _is_certificate_failure(error: BaseException) -> bool:
    seen = set()
    current: Optional[BaseException] = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        text = str(current)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


class Connection:
    """One client's HTTP connection to a coordinator, with its credentials and a one-model cache.

    Thread-safe enough for the SDK's use: the runner's thread and the heartbeat thread share it.
    """

    def __init__(
        self,
        coordinator: str,
        name: str,
        enrolment_token: Optional[str] = None,
        ca_file: Optional[str] = None,
        request_timeout: float = 120.0,
        transport: Optional[httpx.BaseTransport] = None,
        *,
        identity_key: Optional[str] = None,
    ):
        """``transport``: an httpx transport to send through (a proxy's, a test's mock); default a real one.
        ``identity_key``: this site's secret identity key, sent with every registration so the coordinator
        answers with the same ``client_id`` each time (taken as given; :func:`resolve_identity_key` reads the
        file or environment variable)."""
        if not coordinator.startswith(("http://", "https://")):
            raise ValueError(f"coordinator must be an http:// or https:// URL, not {coordinator!r}")
        self.coordinator = coordinator.rstrip("/")
        self.name = name
        self.enrolment_token = enrolment_token
        self._identity_key = identity_key
        self.reachability = Reachability(self.coordinator)
        self.request_timeout = request_timeout
        self.credentials: Optional[Credentials] = None
        self.model_downloads = 0
        self._cache: Optional[tuple] = None  # (sha256, Parameters)
        self._lock = threading.Lock()
        verify: Any = True
        if ca_file is not None:
            try:
                verify = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as error:
                raise UntrustedServerError(f"CA file {ca_file} is unusable: {error}") from None
        self._http = httpx.Client(
            verify=verify, timeout=request_timeout, headers={"User-Agent": _user_agent()}, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- API ---------------------------------------------------------------------------------------

    @property
    def has_identity_key(self) -> bool:
        return self._identity_key is not None

    def register(self) -> Credentials:
        """``POST /v1/clients`` with the enrolment token (and the identity key, when there is one); keeps the
        new credentials. With an identity key the coordinator answers with the site's existing ``client_id``
        and a new token (the previous token stops working); 403 when that client was revoked."""
        headers = {"Authorization": f"Bearer {self.enrolment_token}"} if self.enrolment_token else {}
        body: Dict[str, Any] = {"name": self.name}
        if self._identity_key is not None:
            body["identity_key"] = self._identity_key
        response = self._send("POST", "/v1/clients", json_body=body, headers=headers, auth=False)
        data = self._json(response)
        try:
            credentials = Credentials(
                client_id=str(data["client_id"]),
                token=str(data["token"]),
                heartbeat_interval=min(max(float(data["heartbeat_interval_seconds"]), 0.05), 3600.0),
            )
        except (KeyError, TypeError, ValueError):
            raise InvalidResponseError("registration answer lacks client_id, token or heartbeat_interval_seconds")
        with self._lock:
            self.credentials = credentials
        return credentials

    def heartbeat(self, timeout: float = 10.0) -> None:
        """A sign of life; short timeout, so a stalled one never holds the client up."""
        self._send("POST", f"/v1/clients/{self._client_id()}/heartbeat", timeout=timeout)

    def next_task(self, wait_seconds: float = 30.0) -> Optional[Task]:
        """Long-polls for the next task; ``None`` when none came within ``wait_seconds``."""
        response = self._send(
            "GET",
            f"/v1/clients/{self._client_id()}/tasks/next",
            params={"wait_seconds": _number(wait_seconds)},
            timeout=wait_seconds + 15.0,
        )
        if response.status_code == 204:
            return None
        return Task.from_json(self._json(response))

    def model(self, version: int, sha256: str) -> Parameters:
        """A model version's tensors: from the cache when its SHA-256 matches, otherwise downloaded with
        ``If-None-Match`` and checked against ``sha256``. Returns a fresh copy the caller may modify."""
        cache = self._cache
        if cache is not None and cache[0] == sha256:
            return cache[1].copy()
        headers = {"If-None-Match": f'"{cache[0]}"'} if cache is not None else {}
        response = self._send("GET", f"/v1/models/{version}", headers=headers)
        if response.status_code == 304 and cache is not None:
            # Only reached when the cached model is not the task's (that case returned above): the coordinator
            # says the cached bytes are current, but the task names other bytes. Download them whole.
            response = self._send("GET", f"/v1/models/{version}")
        body = response.content
        digest = hashlib.sha256(body).hexdigest()
        if digest != sha256:
            raise InvalidResponseError(f"model {version} has SHA-256 {digest}, expected {sha256}", response.status_code)
        try:
            parameters, _ = decode_safetensors(body)
        except Exception as error:  # safetensors raises its own error types
            raise InvalidResponseError(f"model {version} is not valid safetensors: {error}") from None
        self.model_downloads += 1
        self._cache = (sha256, parameters)
        return parameters.copy()

    def submit_fit(
        self, task_id: str, parameters: Mapping[str, Any], num_examples: int,
        metrics: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """``POST /v1/tasks/{id}/result`` with one safetensors file; each tensor keeps its dtype."""
        body = encode_fit_result(parameters, num_examples, metrics)
        self._send("POST", f"/v1/tasks/{task_id}/result", content=body, content_type=SAFETENSORS_MEDIA_TYPE)

    def submit_evaluation(
        self, task_id: str, loss: float, num_examples: int, metrics: Optional[Mapping[str, Any]] = None
    ) -> None:
        body = {"loss": float(loss), "num_examples": int(num_examples), "metrics": clean_metrics(metrics)}
        self._send("POST", f"/v1/tasks/{task_id}/result", json_body=body)

    def report_failure(self, task_id: str, message: str) -> None:
        self._send("POST", f"/v1/tasks/{task_id}/failure", json_body={"message": _failure_message(message)})

    def leave(self, timeout: float = 5.0) -> None:
        """``DELETE /v1/clients/{id}``; the token stops working. Short timeout: leaving must not hold up exit."""
        self._send("DELETE", f"/v1/clients/{self._client_id()}", timeout=timeout)
        with self._lock:
            self.credentials = None

    # -- transport ---------------------------------------------------------------------------------

    def _client_id(self) -> str:
        credentials = self.credentials
        if credentials is None:
            raise UnauthenticatedError(None, "unauthenticated", "not registered")
        return credentials.client_id

    def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: Optional[bytes] = None,
        content_type: Optional[str] = None,
        headers: Optional[Dict[str, str]] = None,
        params: Optional[Dict[str, Any]] = None,
        auth: bool = True,
        timeout: Optional[float] = None,
    ) -> httpx.Response:
        try:
            return self._request(method, path, json_body=json_body, content=content, content_type=content_type,
                                 headers=headers, params=params, auth=auth, timeout=timeout)
        except RondoError as error:
            error.endpoint = f"{method} {path}"
            raise

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any,
        content: Optional[bytes],
        content_type: Optional[str],
        headers: Optional[Dict[str, str]],
        params: Optional[Dict[str, Any]],
        auth: bool,
        timeout: Optional[float],
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        if auth:
            credentials = self.credentials
            if credentials is None:
                raise UnauthenticatedError(None, "unauthenticated", "not registered")
            all_headers["Authorization"] = f"Bearer {credentials.token}"
        if json_body is not None:
            try:
                content = json.dumps(json_body, allow_nan=False).encode()
            except ValueError as error:
                raise ValueError(f"{method} {path}: NaN or infinity cannot be sent: {error}") from None
            content_type = "application/json"
        if content_type is not None:
            all_headers["Content-Type"] = content_type
        try:
            response = self._http.request(
                method,
                self.coordinator + path,
                content=content,
                headers=all_headers,
                params=params,
                timeout=timeout if timeout is not None else self.request_timeout,
            )
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as error:
            # A request this client cannot make: retrying cannot help.
            raise InvalidResponseError(f"{method} {path}: {type(error).__name__}: {error}") from None
        except httpx.TransportError as error:
            if _is_certificate_failure(error):
                raise UntrustedServerError(f"{method} {path}: {error}") from None
            raise TransportError(f"{method} {path}: {type(error).__name__}: {error}") from None
        if response.status_code < 400:
            self.reachability.answered()
            return response
        code, message = "http_error", f"{method} {path} answered {response.status_code}"
        try:
            detail = response.json()["error"]
            code, message = str(detail["code"]), str(detail["message"])
        except Exception:
            pass
        status = response.status_code
        if not (status in _GATEWAY_STATUSES and code == "http_error"):
            self.reachability.answered()
        if status == 401:
            raise UnauthenticatedError(status, code, message)
        if status == 429 or status >= 500:
            raise UnavailableError(status, code, message, _retry_after(response))
        raise RefusedError(status, code, message)

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise InvalidResponseError(f"unexpected answer: {response.text[:200]!r}", response.status_code) from None


def _retry_after(response: httpx.Response) -> Optional[float]:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    # A finite wait, at most five minutes: a server's header must not park the client for ever (or crash it).
    return min(max(seconds, 0.0), 300.0) if seconds == seconds and seconds != float("inf") else None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _failure_message(message: str) -> str:
    """At most 4,096 bytes of UTF-8 with no control characters except newline and tab (the API's limit)."""
    cleaned = "".join(ch if ch in "\n\t" or not (ord(ch) < 32 or 127 <= ord(ch) <= 159) else "?" for ch in message)
    cleaned = cleaned or "task failed"
    data = cleaned.encode("utf-8")[:4096]
    return data.decode("utf-8", errors="ignore")


def _user_agent() -> str:
    from . import __version__

    return f"rondo-client-python/{__version__}"
