"""Low-level calls to the coordinator's /v1 client API (one method per endpoint), over httpx.

Every call returns a value or raises a :class:`~rondo_client.errors.RondoError`; retrying is the caller's
choice (:func:`rondo_client.start` retries transport errors, 5xx and 429, and registers again after a 401).

A :class:`Connection` may be given several coordinator replicas (one leads, the others stand by); a call that
cannot connect, or that a standby answers 503 ``not_leader``, moves the connection to another of them before
the error is raised, so the caller's retry goes there (see :meth:`Connection._move_on`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import ssl
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

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
from .reachability import is_not_leader as is_not_leader
from .reachability import is_throttled as is_throttled
from .reachability import is_unreachable as is_unreachable

if TYPE_CHECKING:
    from .retry import RetryPolicy

logger = logging.getLogger("rondo_client")

#: While the coordinator stays unreachable (or keeps throttling one call), a warning at most this often.
LOG_REPEAT_SECONDS = 30.0

#: A model download whose connection breaks is picked up again at most this many times per :meth:`Connection.model`
#: call (each re-request after a jittered wait of at most 0.1, 0.2, 0.4 … 2 s), then the call raises
#: :class:`~rondo_client.errors.TransportError`.
MODEL_RESUME_ATTEMPTS = 5

#: What a coordinator argument may be: one base URL, several separated by commas, or a sequence of them.
CoordinatorURLs = Union[str, Sequence[str]]

#: The header a standby names the leader's base URL in (with its 503 ``not_leader``).
LEADER_HEADER = "Rondo-Leader"

#: The error code of a standby coordinator's 503 answers.
NOT_LEADER = "not_leader"


def _normalized(url: str) -> str:
    """A base URL as it is compared and requested: surrounding whitespace and trailing slashes removed."""
    return url.strip().rstrip("/")


def coordinator_urls(coordinator: CoordinatorURLs) -> List[str]:
    """The coordinator replicas in ``coordinator`` (a URL, ``"http://a:8470,http://b:8470"``, or a list of
    either), normalized (trimmed, no trailing slash), without repeats, in the order given. Raises
    :class:`ValueError` for an empty list or a URL that is not http:// or https://."""
    if isinstance(coordinator, str):
        items: Sequence[Any] = [coordinator]
    elif isinstance(coordinator, (bytes, bytearray)) or not isinstance(coordinator, Sequence):
        raise TypeError(f"coordinator must be a URL string or a list of them, not {type(coordinator).__name__}")
    else:
        items = coordinator
    urls: List[str] = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"coordinator URLs must be strings, not {type(item).__name__}")
        for part in item.split(","):
            url = _normalized(part)
            if not url:
                continue
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"coordinator must be an http:// or https:// URL, not {part.strip()!r}")
            if url not in urls:
                urls.append(url)
    if not urls:
        raise ValueError(f"coordinator must be an http:// or https:// URL, not {coordinator!r}")
    return urls


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
        coordinator: CoordinatorURLs,
        name: str,
        enrolment_token: Optional[str] = None,
        ca_file: Optional[str] = None,
        request_timeout: float = 120.0,
        transport: Optional[httpx.BaseTransport] = None,
        *,
        identity_key: Optional[str] = None,
    ):
        """``coordinator``: the coordinator's base URL, or several replicas' (a list, or one comma-separated
        string); calls go to the first until one cannot connect or is answered 503 ``not_leader`` (see
        :meth:`_move_on`). ``transport``: an httpx transport to send through (a proxy's, a test's mock); default
        a real one. ``identity_key``: this site's secret identity key, sent with every registration so the
        coordinator answers with the same ``client_id`` each time (taken as given; :func:`resolve_identity_key`
        reads the file or environment variable)."""
        #: Every coordinator replica this connection may send to (normalized); never any other URL.
        self.coordinators: List[str] = coordinator_urls(coordinator)
        self._active = 0
        #: Times this connection moved to another replica.
        self.failovers = 0
        self._failover_lock = threading.Lock()
        self._unlisted_leaders: Set[str] = set()  # leaders named by standbys but not configured (warned once)
        self.name = name
        self.enrolment_token = enrolment_token
        self._identity_key = identity_key
        self.reachability = Reachability(self.base_url)
        self.request_timeout = request_timeout
        self.credentials: Optional[Credentials] = None
        self.model_downloads = 0
        #: Re-requests made to finish broken model downloads (see :meth:`model`).
        self.download_resumes = 0
        # Pace steering: the Retry-After of the last poll that ended without a task (None: poll again at once).
        self.retry_after: Optional[float] = None
        # Imported here: retry.py imports this module, so RetryPolicy is not defined yet while this one loads.
        from .retry import RetryPolicy

        #: The waits between, and the number of, re-requests of one broken model download.
        self.download_resume_policy: RetryPolicy = RetryPolicy(
            initial_delay=0.1, max_delay=2.0, max_attempts=MODEL_RESUME_ATTEMPTS)
        self._cache: Optional[tuple] = None  # (sha256, Parameters)
        # The bytes of a download that broke for good, to go on from when the same model is asked for again:
        # (sha256, bytes so far, total or None).
        self._partial: Optional[Tuple[str, bytearray, Optional[int]]] = None
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

    # -- replicas ----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The coordinator replica calls go to now (one of :attr:`coordinators`)."""
        return self.coordinators[self._active]

    @property
    def coordinator(self) -> str:
        """The coordinator's base URL calls go to now (:attr:`base_url`)."""
        return self.base_url

    def _move_on(self, failed: str, leader: Optional[str], reason: str) -> None:
        """After a call to the replica ``failed`` could not connect (``leader`` None) or was answered 503
        ``not_leader`` (``leader``: its ``Rondo-Leader`` header, if any): moves to ``leader`` when it is one of
        :attr:`coordinators` (staying when it is the current one), else to the next configured replica (round
        robin) unless another call already moved away from ``failed``. A leader URL that is not configured is
        never followed (the client's tokens must not go to a URL a standby chose) and is warned about once. Does
        nothing with a single coordinator. Each move is counted in :attr:`failovers` and logged (info)."""
        urls = self.coordinators
        if len(urls) < 2:
            return
        named = _normalized(leader) if leader is not None else ""
        warn_unlisted = False
        with self._failover_lock:
            if named in urls:
                target = urls.index(named)
                if target == self._active:
                    return
                why = f"{reason}; the leader is {named}"
            else:
                if named and named not in self._unlisted_leaders and len(self._unlisted_leaders) < 32:
                    self._unlisted_leaders.add(named)
                    warn_unlisted = True
                if urls[self._active] != failed:
                    target = -1  # another call moved on from it already
                else:
                    target = (self._active + 1) % len(urls)
                why = reason
            if target >= 0:
                self._active = target
                self.failovers += 1
                count = self.failovers
        if warn_unlisted:
            logger.warning("coordinator %s names the leader %r, which is not one of the configured coordinators "
                           "(%s); not following it", failed, named, ", ".join(urls))
        if target >= 0:
            logger.info("coordinator %s %s; moving to %s (failover %d)", failed, why, urls[target], count)

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
        """Long-polls for the next task; ``None`` when none came within ``wait_seconds``. Then
        ``retry_after`` holds the coordinator's pace-steering hint: the seconds to wait before polling again
        (``None`` or 0: at once)."""
        response = self._send(
            "GET",
            f"/v1/clients/{self._client_id()}/tasks/next",
            params={"wait_seconds": _number(wait_seconds)},
            timeout=wait_seconds + 15.0,
        )
        if response.status_code == 204:
            self.retry_after = _retry_after(response)
            return None
        self.retry_after = None
        return Task.from_json(self._json(response))

    def model(self, version: int, sha256: str) -> Parameters:
        """A model version's tensors: from the cache when its SHA-256 matches, otherwise downloaded with
        ``If-None-Match`` and checked against ``sha256``. Returns a fresh copy the caller may modify.

        The body is streamed. When the connection breaks in the middle of it (reset, timeout, a body shorter
        than its ``Content-Length``), the download goes on with ``Range: bytes=<received>-`` and
        ``If-Range: "<sha256>"``: a 206 whose ``Content-Range`` starts at the bytes received (with the same
        total) is appended to them; a 200 (the coordinator has other bytes now) replaces them; any other
        ``Content-Range``, or a 416, starts the download over. Each such re-request is counted in
        ``download_resumes`` and logged (info, with the byte it resumes from); at most
        ``download_resume_policy.max_attempts`` (:data:`MODEL_RESUME_ATTEMPTS`) are made per call, each after the
        policy's jittered wait, then :class:`~rondo_client.errors.TransportError` is raised. The bytes received
        are kept: the next call for the same ``sha256`` (the runner's retry) goes on from them, not from zero."""
        cache = self._cache
        if cache is not None and cache[0] == sha256:
            return cache[1].copy()
        body, status = self._download_model(version, sha256, cache[0] if cache is not None else None)
        digest = hashlib.sha256(body).hexdigest()
        if digest != sha256:
            raise InvalidResponseError(f"model {version} has SHA-256 {digest}, expected {sha256}", status)
        try:
            parameters, _ = decode_safetensors(body)  # a bytearray decodes as bytes do, without another copy
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

    # -- model download ----------------------------------------------------------------------------

    def _download_model(self, version: int, sha256: str, cached: Optional[str]) -> Tuple[bytearray, int]:
        """The bytes of ``GET /v1/models/{version}`` and the status of the answer that completed them, resumed
        when the connection breaks as :meth:`model` describes. ``cached``: the cached model's SHA-256, sent as
        ``If-None-Match``."""
        path = f"/v1/models/{version}"
        partial, self._partial = self._partial, None
        body, total = (partial[1], partial[2]) if partial is not None and partial[0] == sha256 else (bytearray(), None)
        if body:
            logger.info("model v%d: going on with an earlier download at byte %d of %s", version, len(body),
                        _size(total))
        # Not with bytes of an earlier download: they are already known to be another model's than the cached one.
        if_none_match: Optional[str] = f'"{cached}"' if cached is not None and not body else None
        policy = self.download_resume_policy
        attempts = 0
        try:
            while True:
                # Byte ranges of the model's own bytes, not of a compressed encoding of them.
                headers = {"Accept-Encoding": "identity"}
                if if_none_match is not None:
                    headers["If-None-Match"] = if_none_match
                if body:
                    headers["Range"] = f"bytes={len(body)}-"
                    headers["If-Range"] = f'"{sha256}"'
                try:
                    response = self._send("GET", path, headers=headers, stream=True)
                except TransportError as error:
                    if attempts == 0:  # no answer at all: the caller's to retry
                        raise
                    problem = error.message
                except RefusedError as error:
                    if error.status != 416 or not body:
                        raise
                    logger.warning("model v%d: the coordinator has no bytes from byte %d (%s); starting over",
                                   version, len(body), error.message)
                    body, total, problem = bytearray(), None, f"416 {error.code}"
                else:
                    try:
                        if response.status_code == 304 and if_none_match is not None:
                            # Only reached when the cached model is not the task's (that case returned in model()):
                            # the coordinator says the cached bytes are current, but the task names other bytes.
                            # Download them whole.
                            if_none_match = None
                            continue
                        body, total, problem = self._receive_model(version, response, body, total)
                    finally:
                        response.close()
                    if problem is None:
                        return body, response.status_code
                attempts += 1
                if policy.max_attempts is not None and attempts > policy.max_attempts:
                    exhausted = TransportError(f"GET {path}: the download was interrupted {attempts} times, the last "
                                               f"after {len(body)} of {_size(total)} bytes: {problem}")
                    exhausted.endpoint = f"GET {path}"
                    exhausted.coordinator = self.base_url
                    raise exhausted
                delay = policy.delay(attempts - 1)
                self.download_resumes += 1
                logger.info("model v%d: download interrupted after %d of %s bytes (%s); resuming from byte %d in "
                            "%.2f s (attempt %d of %s)", version, len(body), _size(total), problem, len(body), delay,
                            attempts, policy.max_attempts)
                time.sleep(delay)
        except BaseException:
            if body:  # for the next call for these bytes (the runner's retry) to go on from
                self._partial = (sha256, body, total)
            raise

    @staticmethod
    def _receive_model(
        version: int, response: httpx.Response, body: bytearray, total: Optional[int]
    ) -> Tuple[bytearray, Optional[int], Optional[str]]:
        """Reads one answer to a model request: a 206 onto ``body`` when its ``Content-Range`` goes on from it,
        anything else in its place. Returns the bytes so far, the model's size when known, and why the download
        is not complete yet (``None`` when it is)."""
        length = _content_length(response)
        if response.status_code == 206:
            content_range = response.headers.get("Content-Range")
            first, last, size = _content_range(content_range) or (-1, -1, -1)
            if first != len(body) or last != size - 1 or (total is not None and size != total):
                logger.warning("model v%d: resuming from byte %d of %s was answered with Content-Range %r; "
                               "starting over", version, len(body), _size(total), content_range)
                return bytearray(), None, f"unusable Content-Range {content_range!r}"
            total = size
        else:
            if body:
                logger.info("model v%d: the coordinator sent the whole model instead of the rest (its bytes "
                            "changed since); starting over", version)
            body, total = bytearray(), length
        received = 0
        try:
            for chunk in response.iter_bytes():
                body += chunk
                received += len(chunk)
        except httpx.TransportError as error:
            problem = f"{type(error).__name__}: {error}"
        else:
            if length is None or received >= length:
                return body, total, None
            problem = f"the body ended after {received} of its {length} bytes"
        if response.headers.get("Content-Encoding", "identity").lower() != "identity":
            return bytearray(), None, problem  # offsets into an encoding are not offsets into the model
        return body, total, problem

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
        stream: bool = False,
    ) -> httpx.Response:
        """One request, to the current replica (:attr:`base_url`); raises a :class:`RondoError` for no answer
        or a 4xx/5xx. ``stream``: the answer's body is not read (an error's is); the caller reads it and closes
        the response. Moves to another replica first when there was no answer or a standby answered."""
        base_url = self.base_url
        try:
            return self._request(method, base_url, path, json_body=json_body, content=content,
                                 content_type=content_type, headers=headers, params=params, auth=auth,
                                 timeout=timeout, stream=stream)
        except RondoError as error:
            error.endpoint = f"{method} {path}"
            error.coordinator = base_url
            raise

    def _request(
        self,
        method: str,
        base_url: str,
        path: str,
        *,
        json_body: Any,
        content: Optional[bytes],
        content_type: Optional[str],
        headers: Optional[Dict[str, str]],
        params: Optional[Dict[str, Any]],
        auth: bool,
        timeout: Optional[float],
        stream: bool = False,
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
            request = self._http.build_request(
                method,
                base_url + path,
                content=content,
                headers=all_headers,
                params=params,
                timeout=timeout if timeout is not None else self.request_timeout,
            )
            # Streamed, so that a failure before any answer (which moves to another replica) is told apart from
            # a body that broke on its way (the replica answered: the retry goes to it again).
            response = self._http.send(request, stream=True)
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as error:
            # A request this client cannot make: retrying cannot help.
            raise InvalidResponseError(f"{method} {path}: {type(error).__name__}: {error}") from None
        except httpx.TransportError as error:
            if _is_certificate_failure(error):
                raise UntrustedServerError(f"{method} {path}: {error}") from None
            self._move_on(base_url, None, f"did not answer ({type(error).__name__})")
            raise TransportError(f"{method} {path}: {type(error).__name__}: {error}") from None
        try:
            if not stream or response.status_code >= 400:
                response.read()  # the body; for a streamed call only the JSON error
        except httpx.TransportError as error:
            response.close()
            raise TransportError(f"{method} {path}: {type(error).__name__}: {error}") from None
        except BaseException:
            response.close()
            raise
        if stream and response.status_code >= 400:
            response.close()
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
        if status == 503 and code == NOT_LEADER:
            self._move_on(base_url, response.headers.get(LEADER_HEADER), "is a standby (not_leader)")
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


def _content_length(response: httpx.Response) -> Optional[int]:
    try:
        length = int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None
    return length if length >= 0 else None


def _content_range(value: Optional[str]) -> Optional[Tuple[int, int, int]]:
    """``bytes first-last/total`` as (first, last, total); ``None`` for anything else (``*``, other units)."""
    if value is None or not value.startswith("bytes "):
        return None
    span, _, size = value[len("bytes "):].strip().partition("/")
    first, _, last = span.partition("-")
    try:
        return int(first), int(last), int(size)
    except ValueError:
        return None


def _size(total: Optional[int]) -> str:
    return "?" if total is None else str(total)


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
