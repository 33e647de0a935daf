"""Typed errors. Every failed call to the coordinator raises a :class:`RondoError`."""

from __future__ import annotations

from typing import Optional


class RondoError(Exception):
    """A call to the coordinator failed.

    ``status`` is the HTTP status (``None`` when there was no HTTP answer), ``code`` the coordinator's
    ``error.code`` (``wrong_shape``, ``late``, ``unauthenticated`` …) or one of the client-side codes
    ``transport`` (no answer), ``untrusted_server`` (TLS certificate not trusted or CA file unusable) and
    ``invalid_response`` (bad JSON, SHA-256 mismatch), and ``message`` the human-readable reason.
    ``endpoint`` is the request that failed (``"POST /v1/clients"``) and ``coordinator`` the base URL of the
    coordinator replica it went to, when it came from a :class:`~rondo_client.Connection` call.
    """

    endpoint: Optional[str] = None
    coordinator: Optional[str] = None

    def __init__(self, status: Optional[int], code: str, message: str):
        super().__init__(f"{code} (HTTP {status}): {message}" if status is not None else f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:
        """True when the same call may succeed later (no answer, 5xx, 429)."""
        return False


class TransportError(RondoError):
    """No HTTP answer: connection refused or reset, timeout. Retried by :func:`rondo_client.start`."""

    def __init__(self, message: str):
        super().__init__(None, "transport", message)

    @property
    def retryable(self) -> bool:
        return True


class UntrustedServerError(RondoError):
    """The coordinator's HTTPS certificate is not trusted, or the CA file is unusable. Never retried."""

    def __init__(self, message: str):
        super().__init__(None, "untrusted_server", message)


class InvalidResponseError(RondoError):
    """The coordinator's answer did not have the expected form (bad JSON, SHA-256 mismatch)."""

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(status, "invalid_response", message)


class UnavailableError(RondoError):
    """5xx or 429: the coordinator is busy, draining, failing, or a standby (503 ``not_leader``). Retried, after
    its Retry-After when it sent one."""

    def __init__(self, status: int, code: str, message: str, retry_after: Optional[float] = None):
        super().__init__(status, code, message)
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return True


class UnauthenticatedError(RondoError):
    """401: the enrolment token is wrong (when registering) or the coordinator no longer knows the client."""


class RefusedError(RondoError):
    """Any other 4xx: the request itself was refused (``wrong_shape``, ``late``, ``duplicate``, ``forbidden`` …)."""
