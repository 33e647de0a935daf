"""Model parameters: an ordered mapping name -> numpy array, and the safetensors wire format."""

from __future__ import annotations

import json
import math
import struct
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

SAFETENSORS_MEDIA_TYPE = "application/vnd.safetensors"


class Parameters(dict):
    """Tensors by name, in the model's order (the order of the coordinator's safetensors file).

    A plain ``dict`` (insertion-ordered) with a list view for code written against Flower's
    ``List[np.ndarray]``: ``params.to_list()`` gives the arrays in model order and
    ``params.from_list(arrays)`` builds new :class:`Parameters` with the same names from such a list.
    """

    @property
    def names(self) -> List[str]:
        return list(self.keys())

    def to_list(self) -> List[np.ndarray]:
        return list(self.values())

    def from_list(self, arrays: Sequence[np.ndarray]) -> "Parameters":
        """New parameters with this model's names (in order) and the given arrays."""
        arrays = list(arrays)
        if len(arrays) != len(self):
            raise ValueError(f"expected {len(self)} arrays (tensors {', '.join(self.names)}), got {len(arrays)}")
        return Parameters(zip(self.names, (np.asarray(a) for a in arrays)))

    def copy(self) -> "Parameters":  # keep the type
        return Parameters((k, np.array(v, copy=True)) for k, v in self.items())


ParametersLike = Union[Parameters, Mapping[str, np.ndarray], Sequence[np.ndarray]]


def coerce_parameters(value: ParametersLike, like: Parameters) -> Parameters:
    """Accepts a mapping or a list (mapped onto ``like``'s names, in order)."""
    if isinstance(value, Mapping):
        return Parameters((str(k), np.asarray(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return like.from_list(value)
    raise TypeError(f"parameters must be a mapping name -> ndarray or a list of ndarrays, not {type(value).__name__}")


def _dtypes() -> Dict[str, Any]:
    """safetensors dtype names -> numpy dtypes; BF16 is ml_dtypes' bfloat16 (numpy has none, and safetensors'
    numpy loader does not know it)."""
    import ml_dtypes

    return {
        "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
        "BF16": np.dtype(ml_dtypes.bfloat16),
        "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
        "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
        "BOOL": np.dtype(bool),
    }


def decode_safetensors(data: bytes) -> Tuple[Parameters, Dict[str, str]]:
    """Decodes a safetensors file; tensors come back in the file's data order (the model's order), each in
    its own dtype (BF16 as ml_dtypes.bfloat16), writable."""
    if len(data) < 8:
        raise ValueError("safetensors payload shorter than its 8-byte header length")
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    metadata = header.pop("__metadata__", None) or {}
    order = sorted(header, key=lambda name: (header[name]["data_offsets"][0], name))
    dtypes = _dtypes()
    section = memoryview(data)[8 + header_len :]
    tensors = []
    for name in order:
        entry = header[name]
        dtype = dtypes.get(entry["dtype"])
        if dtype is None:
            raise ValueError(f"tensor {name!r} has dtype {entry['dtype']}, which this client does not read")
        begin, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if end - begin != count * dtype.itemsize or end > len(section):
            raise ValueError(f"tensor {name!r}: offsets {begin}..{end} do not hold {shape} of {entry['dtype']}")
        tensors.append((name, np.frombuffer(section[begin:end], dtype=dtype, count=count).reshape(shape).copy()))
    return Parameters(tensors), dict(metadata)


def encode_safetensors(parameters: Mapping[str, np.ndarray], metadata: Optional[Mapping[str, str]] = None) -> bytes:
    """Encodes tensors (dtype kept as given, never cast) with string metadata."""
    from safetensors.numpy import save

    tensors = {}
    for name, array in parameters.items():
        array = np.asarray(array)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        # ascontiguousarray makes a 0-d array (a PyTorch scalar such as num_batches_tracked) 1-d: keep its shape.
        tensors[str(name)] = np.ascontiguousarray(array).reshape(array.shape)
    return save(tensors, metadata=dict(metadata) if metadata else None)


def encode_fit_result(
    parameters: Mapping[str, np.ndarray], num_examples: int, metrics: Optional[Mapping[str, Any]]
) -> bytes:
    """A fit result: one safetensors file with ``num_examples`` (decimal) and ``metrics`` (JSON) metadata."""
    metadata = {"num_examples": str(int(num_examples))}
    clean = clean_metrics(metrics)
    if clean:
        metadata["metrics"] = json.dumps(clean, sort_keys=True)
    return encode_safetensors(parameters, metadata)


def clean_metrics(metrics: Optional[Mapping[str, Any]]) -> Dict[str, float]:
    """Metrics as JSON numbers: bools become 0/1, numpy scalars plain numbers; other values are dropped."""
    out: Dict[str, float] = {}
    for name, value in (metrics or {}).items():
        if isinstance(value, (bool, np.bool_)):
            out[str(name)] = 1.0 if value else 0.0
        elif isinstance(value, (int, float, np.integer, np.floating)):
            number = value.item() if isinstance(value, np.generic) else value
            if isinstance(number, float) and not math.isfinite(number):
                continue
            out[str(name)] = number
    return out


def iter_arrays(parameters: Mapping[str, np.ndarray]) -> Iterable[Tuple[str, np.ndarray]]:
    return ((k, np.asarray(v)) for k, v in parameters.items())
