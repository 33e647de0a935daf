"""Retrying calls to the coordinator: the backoff policy, and the runner's retry loop with its throttling logs."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Callable, Optional, TypeVar

# LOG_REPEAT_SECONDS is read from the connection module when a warning is due: it is set (and patched) there.
from . import connection as _connection
from .errors import RondoError, UnauthenticatedError, UnavailableError
from .reachability import is_throttled, is_unreachable

logger = logging.getLogger("rondo_client")

T = TypeVar("T")


@dataclass
class RetryPolicy:
    """Jittered exponential backoff: the n-th wait is uniform in [0, min(max_delay, initial_delay * 2**n)]."""

    initial_delay: float = 0.1
    max_delay: float = 5.0
    max_attempts: Optional[int] = None  # None: retry until stopped

    def delay(self, attempt: int) -> float:
        return random.uniform(0.0, min(self.max_delay, self.initial_delay * (2 ** min(attempt, 20))))


class _Interrupted(BaseException):
    """Raised by the signal handler to cut a long-poll or backoff short."""


class RetryingMixin:
    """:class:`~rondo_client.client.Runner`'s retry loop. Uses the runner's ``connection``, ``retry`` (a
    :class:`RetryPolicy`), ``stop_event``, ``stopped``, ``_throttle_log`` and ``_register``."""

    def _log_throttled(self, what: str, error: RondoError, delay: float) -> None:
        """A warning for the first throttled call of a kind (``what``) and code, then at most one per
        ``LOG_REPEAT_SECONDS`` for it however the throttled calls come (one long streak or many calls), with how
        many were throttled since the last warning."""
        now = time.monotonic()
        key = (what, error.code)
        last, count = self._throttle_log.get(key, (None, 0))
        count += 1
        if last is not None and now - last < _connection.LOG_REPEAT_SECONDS:
            self._throttle_log[key] = (last, count)
            logger.debug("throttled %s again: %s; retrying in %.2f s", what, error, delay)
            return
        self._throttle_log[key] = (now, 0)
        retry_after = getattr(error, "retry_after", None)
        logger.warning(
            "coordinator throttled %s%s: %s (%s); retrying in %.1f s (Retry-After: %s)",
            error.endpoint or what,
            "" if last is None or count == 1 else f" ({count} times in the last {now - last:.0f} s)",
            error.code, error.message, delay, "none" if retry_after is None else f"{retry_after:g} s")

    def _retrying(self, what: str, operation: Callable[[], T]) -> T:
        """Runs ``operation``, retrying transport errors, 5xx and 429 with jittered backoff (at least the
        answer's Retry-After), and registering again after a 401 on any call but registration itself. A call that
        found no answer or a standby (503 ``not_leader``) has already moved the connection to another replica
        when there are several, so the retry goes there."""
        attempt = 0
        while True:
            try:
                return operation()
            except RondoError as error:
                reregister = isinstance(error, UnauthenticatedError) and what != "register"
                if not (error.retryable or reregister):
                    raise
                attempt += 1
                if self.retry.max_attempts is not None and attempt >= self.retry.max_attempts:
                    raise
                if self.stopped:
                    raise _Interrupted()
                delay = self.retry.delay(attempt - 1)
                if isinstance(error, UnavailableError) and error.retry_after is not None:
                    delay = max(delay, error.retry_after)
                warn = attempt in (3, 10) or attempt % 50 == 0
                if is_unreachable(error):
                    self.connection.reachability.failed(error, delay)
                    warn = False
                elif is_throttled(error):
                    self._log_throttled(what, error, delay)
                    warn = False
                log = logger.warning if warn else logger.debug
                log("retrying %s in %.2f s (attempt %d): %s", what, delay, attempt, error)
                if self.stop_event.wait(delay):
                    raise _Interrupted()
                if reregister:
                    logger.info(
                        "coordinator does not know this client's token any more; registering again%s",
                        " (if another process runs with the same identity key, the two take the client from "
                        "each other: each site needs its own key)" if self.connection.has_identity_key else "")
                    self._retrying("register", self._register)
