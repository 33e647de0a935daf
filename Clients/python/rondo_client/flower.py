"""Runs an unchanged Flower ``flwr.client.NumPyClient`` against a Rondo coordinator.

>>> from rondo_client import flower
>>> flower.start(client=MyFlowerClient(), coordinator="http://127.0.0.1:8470", enrolment_token="...")  # doctest: +SKIP

Flower's NumPyClient takes and returns lists of ndarrays; they are mapped to and from the model's tensor order
(the order of the coordinator's safetensors file). The task's config (strings on the wire) reaches the client
as Flower's ``config`` dict: ``server_round`` is the task's round (int), and values that look like integers or
floats become ``int``/``float`` (Flower's scalars); everything else stays a string. Metrics the client returns
are sent when they are numbers (bools as 0/1); strings and bytes are dropped with a debug log, and an
evaluation metric named ``loss`` is dropped (the loss is sent separately and the coordinator refuses the name).

``flwr.client.Client`` (the low-level, ``FitIns``/``FitRes`` client) is not supported: use a NumPyClient.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any, Dict, Mapping, Optional, Union

from .client import Client, Runner, start as _start
from .connection import CoordinatorURLs
from .parameters import Parameters

logger = logging.getLogger("rondo_client")

_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")

Scalar = Union[bool, bytes, float, int, str]


def flower_config(config: Mapping[str, str], server_round: int) -> Dict[str, Scalar]:
    """The task config as Flower's ``Config``: numeric strings become int/float; ``server_round`` added."""
    out: Dict[str, Scalar] = {}
    for key, value in config.items():
        text = value.strip()
        if _INT.match(text):
            out[key] = int(text)
        elif _FLOAT.match(text):
            number = float(text)
            out[key] = number if math.isfinite(number) else value
        else:
            out[key] = value
    out["server_round"] = int(server_round)
    return out


def _numeric_metrics(metrics: Optional[Mapping[str, Any]], drop: tuple = ()) -> Dict[str, float]:
    out: Dict[str, float] = {}
    for name, value in (metrics or {}).items():
        if name in drop:
            continue
        if isinstance(value, bool):
            out[name] = 1.0 if value else 0.0
        elif isinstance(value, (int, float)) or hasattr(value, "item"):
            try:
                out[name] = float(value)
            except (TypeError, ValueError):
                logger.debug("dropping non-numeric metric %r", name)
        else:
            logger.debug("dropping non-numeric metric %r (Rondo metrics are numbers)", name)
    return out


class FlowerClientAdapter(Client):
    """A :class:`rondo_client.Client` that forwards to a Flower NumPyClient."""

    def __init__(self, numpy_client: Any):
        try:
            from flwr.client import Client as FlowerClient
            from flwr.client import NumPyClient as FlowerNumPyClient
        except ImportError as error:  # pragma: no cover - exercised only without flwr
            raise ImportError("rondo_client.flower needs Flower: pip install 'rondo-client[flower]'") from error
        if isinstance(numpy_client, FlowerClient) and not isinstance(numpy_client, FlowerNumPyClient):
            raise TypeError(
                "rondo_client.flower supports flwr.client.NumPyClient only, not flwr.client.Client "
                "(FitIns/FitRes); wrap your model in a NumPyClient"
            )
        if not isinstance(numpy_client, FlowerNumPyClient):
            raise TypeError(f"expected a flwr.client.NumPyClient, got {type(numpy_client).__name__}")
        self.numpy_client = numpy_client

    def fit(self, parameters: Parameters, config: Dict[str, str]):
        assert self.task is not None
        arrays, num_examples, metrics = self.numpy_client.fit(
            parameters.to_list(), flower_config(config, self.task.round)
        )
        return parameters.from_list(arrays), num_examples, _numeric_metrics(metrics)

    def evaluate(self, parameters: Parameters, config: Dict[str, str]):
        assert self.task is not None
        loss, num_examples, metrics = self.numpy_client.evaluate(
            parameters.to_list(), flower_config(config, self.task.round)
        )
        return float(loss), num_examples, _numeric_metrics(metrics, drop=("loss",))


def start(*, client: Any, coordinator: CoordinatorURLs = "http://127.0.0.1:8470", **options: Any) -> Runner:
    """Like :func:`rondo_client.start`, for a ``flwr.client.NumPyClient`` instance (unchanged).

    ``coordinator`` is one URL, or several replicas' (a list, or one comma-separated string), as for
    :func:`rondo_client.start`.

    Takes the same keyword options (``enrolment_token``, ``ca_file``, ``name``, ``identity_key``,
    ``identity_key_file``, ``long_poll_seconds``, ``idle_timeout``, ``max_tasks``, ``stop_event`` …)."""
    return _start(FlowerClientAdapter(client), coordinator, **options)
