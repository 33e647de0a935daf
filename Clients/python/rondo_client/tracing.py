"""Continues a task's W3C trace (its ``traceparent``) with client spans, when OpenTelemetry is installed.

OpenTelemetry is imported lazily, only when a task carries a ``traceparent``; without the ``otel`` extra
installed every span is a no-op. Spans record nothing unless the process configured a TracerProvider.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional

_otel: Any = None  # None: not tried yet; False: not installed; else (trace, extract) tuple


def _load() -> Any:
    global _otel
    if _otel is None:
        try:
            from opentelemetry import trace
            from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

            _otel = (trace, TraceContextTextMapPropagator())
        except ImportError:
            _otel = False
    return _otel


def task_context(traceparent: Optional[str]) -> Any:
    """The OpenTelemetry context of the task's span, or ``None`` (no traceparent, no OpenTelemetry)."""
    if not traceparent:
        return None
    otel = _load()
    if not otel:
        return None
    return otel[1].extract({"traceparent": traceparent})


@contextlib.contextmanager
def span(name: str, context: Any, **attributes: Any) -> Iterator[None]:
    """A span named ``name``, child of ``context``; a raised error marks it failed. No-op without context."""
    if context is None:
        yield
        return
    trace = _otel[0]
    from . import __version__

    tracer = trace.get_tracer("rondo_client", __version__)
    with tracer.start_as_current_span(name, context=context, kind=trace.SpanKind.INTERNAL) as current:
        for key, value in attributes.items():
            if value is not None:
                current.set_attribute(f"rondo.{key}", value)
        yield
