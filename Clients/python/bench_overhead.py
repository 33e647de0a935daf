"""Per-round overhead of the Python client against the Swift SDK (`rondo client`), on one coordinator.

    python bench_overhead.py --rondo /path/to/rondo [--rounds 15] [--repeats 2]

One `rondo serve --demo-model` (the digits softmax model, 64x10 F32 + bias; one client per round, evaluation
on) serves, in turn (ABAB…), the Swift SDK's `rondo client --partition 0/1` and a Python client that trains a
numpy softmax regression of the same size on the same number of examples (the digits share of one site,
2 epochs, batch 16, synthetic data of that shape). For each phase the first rounds are warm-up and skipped;
a round's time is its `duration_seconds` (finished_at - started_at) from `/v1/rounds` (fit + aggregation + evaluation + commit,
everything a client's speed affects). Prints the median round time of each SDK and their ratio.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rondo_client  # noqa: E402


class SoftmaxClient(rondo_client.Client):
    """Trains on synthetic data with the digits site's shape: ~1,438 training examples / 1 site, 64 features."""

    def __init__(self, examples: int = 1438):
        self.examples = examples
        self.fit_seconds = []
        self.data = None

    def _data(self, features: int, classes: int):
        if self.data is None:
            rng = np.random.default_rng(0)
            x = rng.normal(size=(self.examples, features)).astype(np.float32)
            y = rng.integers(classes, size=self.examples)
            self.data = (x, np.eye(classes, dtype=np.float32)[y], y)
        return self.data

    @staticmethod
    def _split(parameters):
        matrix = next(k for k, v in parameters.items() if v.ndim == 2)
        vector = next(k for k, v in parameters.items() if v.ndim == 1)
        return matrix, vector

    def fit(self, parameters, config):
        started = time.perf_counter()
        wk, bk = self._split(parameters)
        w, b = parameters[wk], parameters[bk]
        if w.shape[1] != b.shape[0]:  # stored as (classes, features)
            w = w.T
        x, onehot, _ = self._data(w.shape[0], w.shape[1])
        lr, batch = float(config.get("learning_rate", "0.1")), int(config.get("batch_size", "16"))
        for _ in range(int(config.get("local_epochs", "2"))):
            for start in range(0, len(x), batch):
                xb, yb = x[start : start + batch], onehot[start : start + batch]
                z = xb @ w + b
                p = np.exp(z - z.max(axis=1, keepdims=True))
                p /= p.sum(axis=1, keepdims=True)
                g = p - yb
                w = w - (lr * xb.T @ g / len(xb)).astype(np.float32)
                b = b - (lr * g.mean(axis=0)).astype(np.float32)
        result = parameters.copy()
        result[wk] = w if parameters[wk].shape == w.shape else np.ascontiguousarray(w.T)
        result[bk] = b
        self.fit_seconds.append(time.perf_counter() - started)
        return result, len(x), {"train_seconds": self.fit_seconds[-1]}

    def evaluate(self, parameters, config):
        return 1.0, 100, {"accuracy": 0.5}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rondo", default=os.environ.get("RONDO_BINARY"), help="the rondo binary (or RONDO_BINARY)")
    parser.add_argument("--rounds", type=int, default=15, help="measured rounds per phase")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="Swift/Python phase pairs")
    parser.add_argument("--work-dir", help="parent of the coordinator's temp data dir (default: the system temp dir)")
    args = parser.parse_args()
    if not args.rondo:
        parser.error("--rondo or RONDO_BINARY is required")

    work = Path(tempfile.mkdtemp(prefix="rondo-bench-", dir=args.work_dir))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = subprocess.Popen(
        [args.rondo, "serve", "--port", str(port), "--data-dir", str(work / "data"), "--demo-model",
         "--open-enrolment", "--min-available-clients", "1", "--min-fit-clients", "1", "--min-fit-results", "1",
         "--fit-timeout", "20", "--evaluate-timeout", "20", "--drain-timeout", "1", "--log-level", "warning"],
        stdout=open(work / "serve.log", "wb"), stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    admin_token = (work / "data" / "admin-token").read_text().strip()
    admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_token}"})

    def committed() -> int:
        return admin.get("/v1/status").json()["committed_rounds"]

    def round_times(after: int) -> list:
        rounds = admin.get("/v1/rounds", params={"limit": 10000}).json()["rounds"]
        return sorted(
            (r["round"], r["duration_seconds"]) for r in rounds
            if r["status"] == "committed" and r["round"] > after and r.get("duration_seconds") is not None
        )

    def last_round() -> int:
        return admin.get("/v1/status").json()["round"]

    def wait_rounds(count: int, timeout: float = 300) -> None:
        target = committed() + count
        deadline = time.monotonic() + timeout
        while committed() < target:
            if time.monotonic() > deadline:
                raise RuntimeError("timed out")
            time.sleep(0.05)

    results = {"swift": [], "python": []}
    python_fit = []
    try:
        for _ in range(args.repeats):
            # Swift SDK
            start_round = last_round()
            swift = subprocess.Popen(
                [args.rondo, "client", "--coordinator", url, "--partition", "0/1", "--log-level", "warning"],
                stdout=open(work / "swift-client.log", "ab"), stderr=subprocess.STDOUT)
            wait_rounds(args.warmup + args.rounds)
            swift.send_signal(signal.SIGTERM)
            swift.wait(30)
            results["swift"] += [t for _, t in round_times(start_round)[args.warmup : args.warmup + args.rounds]]
            # Python client
            start_round = last_round()
            client = SoftmaxClient()
            stop = threading.Event()
            thread = threading.Thread(target=rondo_client.start, args=(client, url),
                                      kwargs={"stop_event": stop, "long_poll_seconds": 5, "name": "python-bench"})
            thread.start()
            wait_rounds(args.warmup + args.rounds)
            stop.set()
            thread.join(30)
            results["python"] += [t for _, t in round_times(start_round)[args.warmup : args.warmup + args.rounds]]
            python_fit += client.fit_seconds[args.warmup:]
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(5)
        except subprocess.TimeoutExpired:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(5)
            except subprocess.TimeoutExpired:
                serve.kill()
    swift_median = statistics.median(results["swift"]) * 1000
    python_median = statistics.median(results["python"]) * 1000
    print(f"rounds measured: swift {len(results['swift'])}, python {len(results['python'])} "
          f"({args.repeats} x {args.rounds}, after {args.warmup} warm-up rounds each)")
    print(f"median round time, Swift SDK (rondo client):  {swift_median:8.1f} ms")
    print(f"median round time, Python client:             {python_median:8.1f} ms "
          f"(of which fit in numpy: median {statistics.median(python_fit) * 1000:.1f} ms)")
    print(f"ratio python/swift: {python_median / swift_median:.2f}")
    print(f"(coordinator data and logs in {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
