"""Python client for the Rondo federated-learning coordinator.

>>> import rondo_client
>>> class MyClient(rondo_client.Client):
...     def fit(self, parameters, config): ...
...     def evaluate(self, parameters, config): ...
>>> rondo_client.start(MyClient(), coordinator="http://127.0.0.1:8470", enrolment_token="...")  # doctest: +SKIP
"""

__version__ = "0.1.0"

from .client import Client, NumPyClient, RetryPolicy, Runner, TaskContext, start
from .connection import Connection, Credentials, Task, read_identity_key_file, resolve_identity_key
from .errors import (
    InvalidResponseError,
    RefusedError,
    RondoError,
    TransportError,
    UnauthenticatedError,
    UnavailableError,
    UntrustedServerError,
)
from .fedprox import proximal_gradient, proximal_mu, proximal_penalty
from .parameters import Parameters, decode_safetensors, encode_fit_result, encode_safetensors

__all__ = [
    "__version__",
    "Client",
    "NumPyClient",
    "RetryPolicy",
    "Runner",
    "TaskContext",
    "start",
    "Connection",
    "Credentials",
    "Task",
    "resolve_identity_key",
    "read_identity_key_file",
    "Parameters",
    "decode_safetensors",
    "encode_safetensors",
    "encode_fit_result",
    "proximal_mu",
    "proximal_gradient",
    "proximal_penalty",
    "RondoError",
    "TransportError",
    "UntrustedServerError",
    "InvalidResponseError",
    "UnavailableError",
    "UnauthenticatedError",
    "RefusedError",
]
