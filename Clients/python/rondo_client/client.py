"""The user-facing API: a Flower-shaped :class:`Client` and :func:`start`, which runs it in a federation."""

from __future__ import annotations

import threading
from typing import Any, Dict, Mapping, Optional, Tuple

from .connection import CoordinatorURLs
from .parameters import Parameters, ParametersLike
from .retry import RetryPolicy as RetryPolicy
from .runner import Runner as Runner
from .runner import TaskContext as TaskContext


class Client:
    """Subclass and implement :meth:`fit` and :meth:`evaluate` (Flower's ``NumPyClient`` shape).

    ``parameters`` is a :class:`~rondo_client.Parameters` (name -> ndarray, in the model's tensor order;
    ``parameters.to_list()`` / ``parameters.from_list(arrays)`` for list-based code). ``config`` is the task's
    configuration from the coordinator (``--fit-config``), all values strings. During a call,
    ``self.task`` is the :class:`TaskContext` (round, task id, model version, deadline).
    """

    task: Optional[TaskContext] = None

    def fit(self, parameters: Parameters, config: Dict[str, str]) -> Tuple[ParametersLike, int, Mapping[str, Any]]:
        """Trains from ``parameters``; returns (updated parameters, number of examples, metrics).

        The returned parameters may be a mapping or a list in model order. Each tensor is uploaded with the
        dtype it has (never cast): it must match the model's dtype, or the coordinator refuses it (422
        ``wrong_dtype``)."""
        raise NotImplementedError("Client.fit")

    def evaluate(self, parameters: Parameters, config: Dict[str, str]) -> Tuple[float, int, Mapping[str, Any]]:
        """Evaluates ``parameters`` on local data; returns (loss, number of examples, metrics)."""
        raise NotImplementedError("Client.evaluate")


NumPyClient = Client


def start(
    client: Client,
    coordinator: CoordinatorURLs = "http://127.0.0.1:8470",
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
    identity_key: Optional[str] = None,
    identity_key_file: Optional[str] = None,
) -> Runner:
    """Runs ``client`` in the federation at ``coordinator`` until it is stopped; returns the finished runner.

    Like the Swift SDK: register (with ``enrolment_token``), long-poll for tasks, download each task's model
    (cached by SHA-256 ETag, checked against the task's ``model_sha256``), call ``fit``/``evaluate`` while a
    background thread heartbeats, and upload the answer. Transport errors, 5xx and 429 are retried with
    jittered exponential backoff; a 401 after registration (the coordinator restarted with a new store, or
    forgot the client) leads to a new registration. A 401 when registering (wrong enrolment token) and an
    untrusted server certificate raise :class:`RondoError` (``unauthenticated`` / ``untrusted_server``)
    without retrying. An exception in ``fit``/``evaluate`` is reported as the task's failure and the client
    keeps going.

    Stops on SIGINT/SIGTERM (when called from the main thread), when ``stop_event`` is set (or
    ``runner.stop()``; noticed within one long-poll), after ``idle_timeout`` seconds without a task, or
    after ``max_tasks`` tasks; then it leaves the federation (``DELETE /v1/clients/{id}``).

    ``identity_key`` (or ``identity_key_file``, read and stripped; else ``$RONDO_CLIENT_IDENTITY_KEY``) gives the
    site a stable identity: every registration with the same key gets the same ``client_id`` (and a new token),
    so a restarted site is the same client. It is a secret (whoever has it can act as the site): keep it in a
    file or secret store, not in code. The coordinator refuses a key that is not 16 to 256 printable ASCII
    characters without spaces (400 ``invalid_identity_key``, raised as :class:`RefusedError`) and a revoked
    client's key (403).

    ``coordinator`` may name several coordinator replicas sharing one database (a list of URLs, or one
    comma-separated string): calls go to one of them; when it cannot be connected to, or answers 503
    ``not_leader`` (a standby), the client moves to the leader the standby names in ``Rondo-Leader`` if that is
    one of the given URLs, else to the next given URL, and retries there (after the ``Retry-After``). It never
    sends anything to a URL that is not in the list. The token stays valid, so the client does not register
    again. ``runner.connection.base_url`` is the replica in use, ``runner.connection.failovers`` the moves.

    Logs go to the ``rondo_client`` logger: a warning when the coordinator is unreachable (then at most one every
    30 s while it lasts) and an info line when it answers again; a warning naming the call, the coordinator's
    error code and the wait when it throttles the client (429); an info line for each move to another
    coordinator replica.
    """
    runner = Runner(
        client,
        coordinator,
        enrolment_token=enrolment_token,
        ca_file=ca_file,
        name=name,
        labels=labels,
        long_poll_seconds=long_poll_seconds,
        request_timeout=request_timeout,
        retry=retry,
        idle_timeout=idle_timeout,
        max_tasks=max_tasks,
        stop_event=stop_event,
        identity_key=identity_key,
        identity_key_file=identity_key_file,
    )
    runner.run()
    return runner
