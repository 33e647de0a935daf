"""Running a :class:`~rondo_client.client.Client` in a federation: register, long-poll for tasks, work on each
(model download, the client's ``fit``/``evaluate`` with a heartbeat alongside, the upload), and leave."""

from __future__ import annotations

import hashlib
import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Tuple

from . import tracing
from .connection import Connection, CoordinatorURLs, Task
from .errors import InvalidResponseError, RefusedError, RondoError
from .identity import IDENTITY_KEY_ENV, resolve_identity_key
from .parameters import Parameters, coerce_parameters
from .reachability import is_unreachable
from .retry import RetryingMixin, RetryPolicy, _Interrupted

if TYPE_CHECKING:
    from .client import Client

logger = logging.getLogger("rondo_client")


@dataclass(frozen=True)
class TaskContext:
    """The task a client is working on (available as ``client.task`` during ``fit``/``evaluate``)."""

    task_id: str
    round: int
    kind: str
    model_version: int
    config: Dict[str, str]
    deadline_seconds: float


# Codes of a result the coordinator found invalid: the task is then reported failed so the round need not
# wait for its deadline. Other refusals (late, duplicate, unknown_task, not_your_task …) are only logged.
_INVALID_RESULT_STATUSES = {400, 413, 415, 422}

# Identity keys of the runners running in this process (as SHA-256 digests): two runners with one key would be
# one client taking the other's token in turn.
_keys_in_use: set = set()
_keys_lock = threading.Lock()


# The retry loop (``_retrying``, ``_log_throttled``) is RetryingMixin's, in retry.py.
class Runner(RetryingMixin):
    """Runs a :class:`Client` against a coordinator. :func:`start` builds one and calls :meth:`run` (its
    docstring describes the options). ``client_id`` is the id of the latest registration."""

    def __init__(
        self,
        client: Client,
        coordinator: CoordinatorURLs,
        *,
        enrolment_token: Optional[str] = None,
        ca_file: Optional[str] = None,
        name: Optional[str] = None,
        labels: Optional[Mapping[str, str]] = None,
        long_poll_seconds: float = 30.0,
        request_timeout: float = 120.0,
        retry: Optional[RetryPolicy] = None,
        idle_timeout: Optional[float] = None,
        max_tasks: Optional[int] = None,
        stop_event: Optional[threading.Event] = None,
        transport: Optional[Any] = None,
        identity_key: Optional[str] = None,
        identity_key_file: Optional[str] = None,
    ):
        import socket

        self.client = client
        self.name = name or f"python-{socket.gethostname()}"
        # The API has no labels yet; they are kept for logs only.
        self.labels = dict(labels or {})
        identity = resolve_identity_key(identity_key, identity_key_file)
        self._identity_digest = hashlib.sha256(identity.encode()).hexdigest() if identity is not None else None
        self.connection = Connection(
            coordinator, self.name, enrolment_token, ca_file, request_timeout, transport, identity_key=identity)
        self.long_poll_seconds = long_poll_seconds
        self.retry = retry or RetryPolicy()
        self.idle_timeout = idle_timeout
        self.max_tasks = max_tasks
        self.stop_event = stop_event or threading.Event()
        self.tasks_done = 0
        self.registrations = 0
        #: The ``client_id`` of the latest registration (kept after leaving); ``None`` before registering.
        self.client_id: Optional[str] = None
        self._interruptible = False
        # Per (call kind, error code): when the last throttling warning was logged, throttled calls since.
        self._throttle_log: Dict[Tuple[str, str], Tuple[Optional[float], int]] = {}

    # -- control -----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Asks the runner to leave the federation and return (after the current long-poll or task)."""
        self.stop_event.set()

    @property
    def stopped(self) -> bool:
        return self.stop_event.is_set()

    def run(self) -> None:
        """Registers and works on tasks until stopped, ``idle_timeout`` passes without a task, or ``max_tasks``
        tasks are done; then leaves. Raises :class:`RondoError` on what retrying cannot fix (wrong enrolment
        token: ``unauthenticated``; untrusted certificate: ``untrusted_server``)."""
        self._claim_identity()
        restore = self._install_signal_handlers()
        try:
            self._participate()
        except _Interrupted:
            pass
        finally:
            restore()  # from here a signal stops the process as usual, even while leaving
            # Leave however the run ended (stopped, done, or an error on its way out), so an open task counts
            # as a disconnect at once instead of timing out.
            if self.connection.credentials is not None:
                try:
                    self.connection.leave()
                    logger.info("left the federation")
                except Exception as error:
                    logger.debug("leaving failed: %s", error)
            self.connection.close()
            self._release_identity()

    def _claim_identity(self) -> None:
        if self._identity_digest is None:
            return
        with _keys_lock:
            if self._identity_digest in _keys_in_use:
                self.connection.close()
                raise ValueError(
                    "another Runner in this process is running with the same identity key (each site needs its "
                    f"own; is {IDENTITY_KEY_ENV} set for several sites?)")
            _keys_in_use.add(self._identity_digest)

    def _release_identity(self) -> None:
        if self._identity_digest is not None:
            with _keys_lock:
                _keys_in_use.discard(self._identity_digest)

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, frame: Any) -> None:
            if self.stop_event.is_set():
                # A second signal: stop now, as the process would without the handler.
                logger.warning("second signal %s: stopping at once", signal.Signals(signum).name)
                raise KeyboardInterrupt()
            logger.info("signal %s: leaving the federation (send it again to stop at once)",
                        signal.Signals(signum).name)
            self.stop_event.set()
            if self._interruptible:
                raise _Interrupted()

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    # -- the loop ----------------------------------------------------------------------------------

    def _participate(self) -> None:
        self._retrying("register", self._register)
        last_task = time.monotonic()
        while not self.stopped:
            if self.max_tasks is not None and self.tasks_done >= self.max_tasks:
                return
            wait = self.long_poll_seconds
            if self.idle_timeout is not None:
                left = self.idle_timeout - (time.monotonic() - last_task)
                if left <= 0:
                    logger.info("no task for %.0f s; stopping", self.idle_timeout)
                    return
                wait = max(min(wait, left), 0.0)
            self._interruptible = True
            try:
                task = self._retrying("poll", lambda wait=wait: self.connection.next_task(wait))
            finally:
                self._interruptible = False
            if task is None:
                # Pace steering: the coordinator spreads idle clients' polls; come back when it said, but never
                # later than a heartbeat interval (a coordinator keeps its hints below it: a longer one, from a
                # proxy or a misconfiguration, would get this client counted as gone).
                hint = self.connection.retry_after
                credentials = self.connection.credentials
                if hint and credentials is not None:
                    hint = min(hint, credentials.heartbeat_interval)
                if hint and self.stop_event.wait(hint):
                    return
                continue
            if self._handle(task):
                self.tasks_done += 1
            last_task = time.monotonic()

    def _register(self) -> None:
        credentials = self.connection.register()
        self.registrations += 1
        self.client_id = credentials.client_id
        logger.info("registered as %s (%s%s)", credentials.client_id, self.name,
                    ", stable identity" if self.connection.has_identity_key else "")

    def _handle(self, task: Task) -> bool:
        """Works on one task. Returns False when it could not even start (its model was unavailable)."""
        context = TaskContext(
            task.task_id, task.round, task.kind, task.model_version, dict(task.config), task.deadline_seconds
        )
        logger.info("task %s: %s for round %d on model v%d", task.task_id, task.kind, task.round, task.model_version)
        trace_context = tracing.task_context(task.traceparent)
        try:
            with tracing.span("client.download", trace_context, model_version=task.model_version):
                parameters = self._retrying(
                    "download model", lambda: self.connection.model(task.model_version, task.model_sha256)
                )
        except (RefusedError, InvalidResponseError) as error:
            # A stale task (the coordinator rolled back since handing it out) or a model that failed its check.
            # Answer it, or the coordinator hands the same task out again at once until its deadline.
            logger.warning("task %s: cannot get model v%d (%s); reporting it failed", task.task_id,
                           task.model_version, error)
            try:
                self.connection.report_failure(task.task_id, f"model v{task.model_version} unavailable: {error}")
            except RondoError as report_error:
                logger.warning("reporting task %s failed did not work either: %s", task.task_id, report_error)
            return False

        stop_heartbeat = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(stop_heartbeat,), name="rondo-heartbeat", daemon=True
        )
        heartbeat.start()
        failure: Optional[BaseException] = None
        answer: Any = None
        try:
            with tracing.span(f"client.{task.kind}", trace_context, round=task.round):
                answer = self._call_client(task, context, parameters)
        except Exception as error:  # the user's code failed: report it, keep going
            failure = error
        finally:
            stop_heartbeat.set()
            heartbeat.join(timeout=15)  # a heartbeat in flight times out within 10 s
            if heartbeat.is_alive():
                logger.warning("the heartbeat thread did not stop within 15 s")

        try:
            if failure is not None:
                logger.warning("task %s failed: %s: %s", task.task_id, type(failure).__name__, failure)
                message = f"{type(failure).__name__}: {failure}"
                self._retrying("report failure", lambda: self.connection.report_failure(task.task_id, message))
                return True
            with tracing.span("client.upload", trace_context):
                if task.kind == "fit":
                    result, num_examples, metrics = answer
                    self._retrying(
                        "submit fit", lambda: self.connection.submit_fit(task.task_id, result, num_examples, metrics)
                    )
                else:
                    loss, num_examples, metrics = answer
                    self._retrying(
                        "submit evaluation",
                        lambda: self.connection.submit_evaluation(task.task_id, loss, num_examples, metrics),
                    )
        except RefusedError as error:
            logger.warning("coordinator refused task %s's answer: %s", task.task_id, error)
            if failure is None and error.status in _INVALID_RESULT_STATUSES:
                try:
                    self.connection.report_failure(task.task_id, f"result refused: {error.code}: {error.message}")
                except RondoError as report_error:
                    logger.debug("reporting the refused result failed: %s", report_error)
        return True

    def _call_client(self, task: Task, context: TaskContext, parameters: Parameters) -> Any:
        self.client.task = context
        try:
            if task.kind == "fit":
                result = self.client.fit(parameters, dict(task.config))
                updated, num_examples, metrics = _unpack(result, "fit")
                return coerce_parameters(updated, parameters), int(num_examples), dict(metrics or {})
            if task.kind == "evaluate":
                result = self.client.evaluate(parameters, dict(task.config))
                loss, num_examples, metrics = _unpack(result, "evaluate")
                return float(loss), int(num_examples), dict(metrics or {})
            raise ValueError(f"unknown task kind {task.kind!r}")
        finally:
            self.client.task = None

    def _heartbeat(self, stop: threading.Event) -> None:
        credentials = self.connection.credentials
        interval = credentials.heartbeat_interval if credentials else 5.0
        while not stop.wait(interval):
            try:
                self.connection.heartbeat(timeout=min(10.0, 2 * interval))
            except Exception as error:  # never let a failed heartbeat kill the thread with a traceback
                if is_unreachable(error):
                    self.connection.reachability.failed(error, interval)  # type: ignore[arg-type]
                else:
                    logger.debug("heartbeat failed: %s", error)


def _unpack(result: Any, what: str) -> Tuple[Any, Any, Any]:
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise TypeError(f"{what} must return a 3-tuple, not {type(result).__name__}")
    return result[0], result[1], result[2]
