"""numpy baselines for `rondo bench aggregate`: the same shapes (10 updates of 1,000,000 float32,
weights 100..109), medians of 7 timed runs after one warm-up, reported in GB/s of update data.

  streaming: what Rondo does (float64 running sum, one update at a time, then divide)
  flower:    Flower's FedAvg shape (scale every update, stack, sum, divide) in float32

Run it right after `rondo bench aggregate` on the same machine: python3 Benchmarks/numpy_fedavg.py
"""
import time

import numpy as np

rng = np.random.default_rng(42)
updates = [rng.uniform(-1, 1, 1_000_000).astype(np.float32) for _ in range(10)]
weights = [100 + i for i in range(10)]
data_gb = sum(u.nbytes for u in updates) / 1e9


def median_seconds(run):
    times = []
    for _ in range(8):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def streaming():
    total = np.zeros(1_000_000, dtype=np.float64)
    for update, weight in zip(updates, weights):
        total += weight * update.astype(np.float64)
    return (total / sum(weights)).astype(np.float32)


def flower():
    return np.sum([weight * update for update, weight in zip(updates, weights)], axis=0) / sum(weights)


for name, run in [("numpy streaming (float64)", streaming), ("numpy Flower-style (float32)", flower)]:
    seconds = median_seconds(run)
    print(f"{name}: {seconds:.4f} s  {data_gb / seconds:.2f} GB/s")
