#!/usr/bin/env python3
"""Every dtype a PyTorch model carries, end to end through a live `rondo serve`.

Usage: check-dtypes.py PATH/TO/rondo

Two models, written with numpy + safetensors exactly as a PyTorch user would export them:
  - resnet18: the tensor names, shapes and dtypes of torchvision's `resnet18().state_dict()` (F32 weights and
    buffers, I64 `num_batches_tracked` scalars), 11.7 M parameters;
  - lora: a BF16 LoRA adapter (`lora_A` / `lora_B` for q and v projections of 4 layers).
For each: `serve --initial-model`, three clients (weights 1, 2 and 5 examples) answer one round with updates in
the model's own dtypes, the round commits, and `checkpoints export` of the new version must read back with
`safetensors.numpy` with every dtype preserved and every value bit-equal to a numpy reference of the same
example-weighted mean (float: computed in float64, rounded to the dtype; integers: rounded half away from zero).
BF16 update values are drawn so that the weighted sums are exact in float32: numpy's bfloat16 (ml_dtypes) rounds
float64 through float32, Rondo rounds once, and the two agree whenever the float32 step is exact.
Bad input is refused naming the tensor: a wrong dtype (422 wrong_dtype), a wrong shape (422 wrong_shape) and an
8-bit float (422 unsupported_dtype). `checkpoints diff` reads both versions.
"""
import contextlib
import hashlib
import json
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import ml_dtypes
import numpy as np
import requests
import safetensors.numpy

ADMIN = "dtype-check-admin-token-0123456789"
# safetensors' numpy backend reads BF16 only when told which numpy dtype is bfloat16 (numpy has none;
# ml_dtypes provides the one JAX and TensorFlow use). Saving needs nothing: it goes by the array's dtype name.
safetensors.numpy._TYPES.setdefault("BF16", ml_dtypes.bfloat16)
WEIGHTS = [1, 2, 5]
BF16 = np.dtype(ml_dtypes.bfloat16)


def resnet18():
    """(name, shape, numpy dtype) of torchvision's resnet18 state_dict."""
    tensors = []

    def conv(name, out_channels, in_channels, kernel):
        tensors.append((f"{name}.weight", (out_channels, in_channels, kernel, kernel), np.float32))

    def batch_norm(name, channels):
        for part in ("weight", "bias", "running_mean", "running_var"):
            tensors.append((f"{name}.{part}", (channels,), np.float32))
        tensors.append((f"{name}.num_batches_tracked", (), np.int64))

    conv("conv1", 64, 3, 7)
    batch_norm("bn1", 64)
    in_channels = 64
    for layer, (channels, stride) in enumerate([(64, 1), (128, 2), (256, 2), (512, 2)], start=1):
        for block in range(2):
            prefix = f"layer{layer}.{block}"
            conv(f"{prefix}.conv1", channels, in_channels if block == 0 else channels, 3)
            batch_norm(f"{prefix}.bn1", channels)
            conv(f"{prefix}.conv2", channels, channels, 3)
            batch_norm(f"{prefix}.bn2", channels)
            if block == 0 and (stride != 1 or in_channels != channels):
                conv(f"{prefix}.downsample.0", channels, in_channels, 1)
                batch_norm(f"{prefix}.downsample.1", channels)
        in_channels = channels
    tensors.append(("fc.weight", (1000, 512), np.float32))
    tensors.append(("fc.bias", (1000,), np.float32))
    return tensors


def lora():
    """(name, shape, dtype) of a rank-8 BF16 LoRA adapter on q/v projections of a 4-layer, 512-wide model."""
    tensors = []
    for layer in range(4):
        for projection in ("q_proj", "v_proj"):
            prefix = f"base_model.model.layers.{layer}.self_attn.{projection}"
            tensors.append((f"{prefix}.lora_A.weight", (8, 512), BF16))
            tensors.append((f"{prefix}.lora_B.weight", (512, 8), BF16))
    return tensors


def values(generator, shape, dtype, step):
    """Model values of one client (or the base model for step 0)."""
    if dtype == np.int64:
        return np.asarray(100 + 7 * step, dtype=np.int64).reshape(shape)
    if dtype == BF16:
        # Magnitudes in [2^-8, 2^-6): weighted sums of three such bfloat16 values are exact in float32.
        magnitude = generator.uniform(2.0**-8, 2.0**-6, size=shape)
        return (magnitude * generator.choice([-1.0, 1.0], size=shape)).astype(np.float32).astype(BF16)
    return generator.normal(0, 0.05, size=shape).astype(dtype)


def reference(updates, dtype):
    """The example-weighted mean of `updates` in float64, rounded into `dtype` the documented way."""
    total = sum(WEIGHTS)
    mean = sum(weight * update.astype(np.float64) for weight, update in zip(WEIGHTS, updates)) / total
    if np.issubdtype(dtype, np.integer):
        return np.where(mean >= 0, np.floor(mean + 0.5), np.ceil(mean - 0.5)).astype(dtype)
    return mean.astype(dtype)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def coordinator(rondo, model_file, clients):
    data = tempfile.mkdtemp(prefix="rondo-dtypes-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [rondo, "serve", "--port", str(port), "--data-dir", data, "--initial-model", model_file,
         "--admin-token", ADMIN, "--open-enrolment", "--min-available-clients", str(clients),
         "--min-fit-clients", str(clients), "--min-fit-results", str(clients), "--fraction-evaluate", "0",
         "--rounds", "1", "--fit-timeout", "300"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            try:
                requests.get(url + "/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            sys.exit("the coordinator did not start: " + server.stderr.read().decode()[-2000:])
        yield url, server, data
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(data, ignore_errors=True)


def expect(condition, message):
    if not condition:
        sys.exit("dtypes: FAILED: " + message)


def register(url):
    answer = requests.post(url + "/v1/clients", json={"name": "dtype-check"}, timeout=10)
    expect(answer.status_code == 201, f"register: {answer.status_code} {answer.text}")
    body = answer.json()
    return body["client_id"], {"Authorization": f"Bearer {body['token']}"}


def safetensors_with_f8(name):
    """A one-tensor safetensors file whose tensor is F8_E4M3 (written by hand: numpy has no such dtype)."""
    header = json.dumps({name: {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]},
                         "__metadata__": {"num_examples": "1"}}).encode()
    header += b" " * (-(8 + len(header)) % 8)
    return struct.pack("<Q", len(header)) + header + bytes(4)


def check(rondo, label, layout, work):
    generator = np.random.default_rng(7)
    base = {name: values(generator, shape, dtype, 0) for name, shape, dtype in layout}
    model_file = f"{work}/{label}.safetensors"
    safetensors.numpy.save_file(base, model_file)
    updates = [{name: values(generator, shape, dtype, step)
                for name, shape, dtype in layout} for step in range(1, len(WEIGHTS) + 1)]
    started = time.monotonic()
    with coordinator(rondo, model_file, len(WEIGHTS)) as (url, server, data):
        clients = [register(url) for _ in WEIGHTS]
        tasks = []
        for client_id, headers in clients:
            task = requests.get(f"{url}/v1/clients/{client_id}/tasks/next?wait_seconds=30", headers=headers,
                                timeout=60)
            expect(task.status_code == 200, f"{label}: no task: {task.status_code} {task.text}")
            tasks.append(task.json())
        model = requests.get(f"{url}/v1/models/{tasks[0]['model_version']}", headers=clients[0][1], timeout=60)
        expect(hashlib.sha256(model.content).hexdigest() == tasks[0]["model_sha256"], f"{label}: model hash")
        served = safetensors.numpy.load(model.content)
        expect(all(served[name].dtype == base[name].dtype and np.array_equal(served[name], base[name])
                   for name in base), f"{label}: the served model is the initial one, dtypes included")

        # Bad input first: each is refused, names its tensor, and changes nothing.
        name, shape, dtype = next(entry for entry in layout if entry[2] != np.int64)
        refusals = {
            "wrong_dtype": {**updates[0], name: updates[0][name].astype(np.float16 if dtype != np.float16 else
                                                                        np.float32)},
            "wrong_shape": {**updates[0], name: np.zeros((3,) + tuple(shape), dtype=dtype)},
        }
        for code, bad in refusals.items():
            answer = requests.post(
                f"{url}/v1/tasks/{tasks[0]['task_id']}/result", headers={
                    **clients[0][1], "Content-Type": "application/vnd.safetensors", "Expect": ""},
                data=safetensors.numpy.save(bad, metadata={"num_examples": "1"}), timeout=120)
            expect(answer.status_code == 422 and answer.json()["error"]["code"] == code
                   and name in answer.json()["error"]["message"], f"{label}: {code}: {answer.status_code} {answer.text}")
        answer = requests.post(
            f"{url}/v1/tasks/{tasks[0]['task_id']}/result",
            headers={**clients[0][1], "Content-Type": "application/vnd.safetensors"},
            data=safetensors_with_f8("adapter.scale"), timeout=60)
        expect(answer.status_code == 422 and answer.json()["error"]["code"] == "unsupported_dtype"
               and "adapter.scale" in answer.json()["error"]["message"], f"{label}: F8: {answer.text}")

        for (client_id, headers), task, update, weight in zip(clients, tasks, updates, WEIGHTS):
            answer = requests.post(
                f"{url}/v1/tasks/{task['task_id']}/result",
                headers={**headers, "Content-Type": "application/vnd.safetensors", "Expect": ""},
                data=safetensors.numpy.save(update, metadata={"num_examples": str(weight)}), timeout=300)
            expect(answer.status_code == 202, f"{label}: result: {answer.status_code} {answer.text}")
        admin = {"Authorization": f"Bearer {ADMIN}"}
        for _ in range(600):
            status = requests.get(url + "/v1/status", headers=admin, timeout=10).json()
            if status["committed_rounds"] >= 1 or status["failed_rounds"] >= 1:
                break
            time.sleep(0.1)
        expect(status["committed_rounds"] == 1, f"{label}: the round did not commit: {status}")
        version = status["model_version"]
        round_seconds = time.monotonic() - started
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)

        exported = f"{work}/{label}-v{version}.safetensors"
        run = subprocess.run([rondo, "checkpoints", "export", str(version), "-o", exported, "--data-dir", data],
                             capture_output=True, text=True)
        expect(run.returncode == 0, f"{label}: export: {run.stdout}{run.stderr}")
        averaged = safetensors.numpy.load_file(exported)
        expect(sorted(averaged) == sorted(base), f"{label}: exported tensor names")
        for name, shape, dtype in layout:
            want = reference([update[name] for update in updates], dtype)
            got = averaged[name]
            expect(got.dtype == want.dtype and got.shape == tuple(shape), f"{label}: {name}: {got.dtype}{got.shape}")
            expect(got.tobytes() == want.tobytes(),
                   f"{label}: {name}: values differ from the numpy reference (max |d| "
                   f"{np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))})")
        diff = subprocess.run([rondo, "checkpoints", "diff", "1", str(version), "--data-dir", data, "--json"],
                              capture_output=True, text=True)
        expect(diff.returncode == 0 and len(json.loads(diff.stdout)["tensors"]) == len(layout),
               f"{label}: diff: {diff.stdout[-300:]}")
    parameters = sum(int(np.prod(shape)) for _, shape, _ in layout)
    dtypes = sorted({np.dtype(dtype).name for _, _, dtype in layout})
    return f"{label} ({len(layout)} tensors, {parameters / 1e6:.2f} M parameters, {'/'.join(dtypes)}): " \
           f"round committed in {round_seconds:.1f} s, export bit-equal to numpy"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    work = tempfile.mkdtemp(prefix="rondo-dtype-models-")
    try:
        summaries = [check(sys.argv[1], "resnet18", resnet18(), work), check(sys.argv[1], "lora-bf16", lora(), work)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("dtypes: " + "; ".join(summaries) + "; wrong dtype/shape and F8 refused with 422 naming the tensor: OK")


if __name__ == "__main__":
    main()
