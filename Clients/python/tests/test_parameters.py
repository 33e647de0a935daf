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


def test_every_dtype_a_pytorch_model_carries_round_trips_with_its_shape():
    import ml_dtypes

    model = {
        "lora_A": np.array([[0.5, -1.25]], dtype=ml_dtypes.bfloat16),
        "bn.num_batches_tracked": np.array(7, dtype=np.int64),  # a 0-d scalar, as PyTorch writes it
        "mask": np.array([True, False, True]),
        "half": np.array([1.5, -2.0], dtype=np.float16),
        "w": np.arange(4, dtype=np.float32).reshape(2, 2),
    }
    params, _ = decode_safetensors(encode_fit_result(model, 3, {}))
    for name, array in model.items():
        assert params[name].dtype == array.dtype and params[name].shape == array.shape, name
        assert np.array_equal(params[name].astype(np.float64), array.astype(np.float64)), name
    params["w"][0, 0] = 9  # decoded tensors are the client's to train in place
