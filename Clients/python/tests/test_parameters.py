"""Parameters and the fit-result wire format, without a coordinator."""

import json
import struct

import numpy as np
import pytest

from rondo_client import Parameters, decode_safetensors, encode_fit_result


def test_list_view_round_trip():
    p = Parameters([("z", np.zeros(2, np.float32)), ("a", np.ones((2, 2), np.float64))])
    assert p.names == ["z", "a"]
    arrays = p.to_list()
    back = p.from_list([a + 1 for a in arrays])
    assert back.names == ["z", "a"] and back["a"].dtype == np.float64
    with pytest.raises(ValueError):
        p.from_list(arrays[:1])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64])
def test_fit_result_keeps_dtype_and_metadata(dtype):
    body = encode_fit_result({"w": np.arange(6, dtype=dtype).reshape(2, 3)}, 42, {"acc": 0.5, "ok": True, "s": "x"})
    (n,) = struct.unpack("<Q", body[:8])
    header = json.loads(body[8 : 8 + n])
    assert header["__metadata__"]["num_examples"] == "42"
    assert json.loads(header["__metadata__"]["metrics"]) == {"acc": 0.5, "ok": 1.0}
    params, metadata = decode_safetensors(body)
    assert params["w"].dtype == dtype and params["w"].shape == (2, 3)
    assert metadata["num_examples"] == "42"
