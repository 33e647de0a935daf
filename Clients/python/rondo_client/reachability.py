"""Whether the coordinator answers: which failures mean it did not (or that it is throttling this client), and the
log lines about an outage."""

from __future__ import annotations

import logging
import threading
import time
from typing import Optional

# LOG_REPEAT_SECONDS is read from the connection module when a warning is due: it is set (and patched) there.
from . import connection as _connection
from .errors import RondoError, TransportError, UnavailableError

logger = logging.getLogger("rondo_client")

# Gateway answers a proxy in front of the coordinator gives when the coordinator is down: without the
# coordinator's JSON error body they mean "unreachable", not "the coordinator is busy".
_GATEWAY_STATUSES = {502, 503, 504}


def is_unreachable(error: BaseException) -> bool:
    """True for a failure that means the coordinator did not answer: no HTTP answer at all (refused, reset,
    timed out), or a proxy's 502/503/504 without the coordinator's JSON error body."""
    if isinstance(error, TransportError):
        return True
    return isinstance(error, UnavailableError) and error.status in _GATEWAY_STATUSES and error.code == "http_error"


def is_not_leader(error: BaseException) -> bool:
    """True for a standby coordinator's answer (503 ``not_leader``): retried, at the leader when it is known."""
    return isinstance(error, UnavailableError) and error.status == 503 and error.code == "not_leader"


def is_throttled(error: BaseException) -> bool:
    """True for the coordinator's "slow down" answers: any 429, and 503 ``too_many_connections``."""
    return isinstance(error, UnavailableError) and (error.status == 429 or error.code == "too_many_connections")


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


class Reachability:
    """Whether the coordinator answers, for the logs: a warning when it stops answering, then at most one every
    :data:`~rondo_client.connection.LOG_REPEAT_SECONDS` while that lasts (not one per retry), and an info line when
    it answers again.

    :meth:`failed` is called by whoever retries (it knows the wait); :meth:`answered` by the connection on any
    HTTP answer from the coordinator. Thread-safe: the runner's and the heartbeat thread report to one.
    """

    def __init__(self, coordinator: str):
        self.coordinator = coordinator
        self._lock = threading.Lock()
        self._since: Optional[float] = None  # monotonic time of the first failure of the current outage
        self._last_warning = 0.0
        self._failures = 0

    @property
    def unreachable_for(self) -> Optional[float]:
        """Seconds since the current outage began; ``None`` while the coordinator answers."""
        since = self._since
        return None if since is None else time.monotonic() - since

    def failed(self, error: RondoError, retry_in: float) -> None:
        where = getattr(error, "coordinator", None) or self.coordinator  # the replica that did not answer
        now = time.monotonic()
        with self._lock:
            first = self._since is None
            if first:
                self._since, self._failures = now, 0
            self._failures += 1
            failures, down = self._failures, now - (self._since or now)
            due = first or now - self._last_warning >= _connection.LOG_REPEAT_SECONDS
            if due:
                self._last_warning = now
        if first:
            logger.warning("coordinator unreachable at %s (%s); retrying in %s",
                           where, error.message, _seconds(retry_in))
        elif due:
            logger.warning("coordinator unreachable at %s for %s (%d failed attempts, last: %s); retrying in %s",
                           where, _seconds(down), failures, error.message, _seconds(retry_in))
        else:
            logger.debug("coordinator still unreachable (%s); retrying in %s", error.message, _seconds(retry_in))

    def answered(self) -> None:
        if self._since is None:  # the common case, without the lock
            return
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            logger.info("coordinator reachable again after %s", _seconds(time.monotonic() - since))
