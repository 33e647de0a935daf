"""Central differential privacy (DP-FedAvg) against independent references.

* `rondo privacy epsilon` against Google's dp_accounting 0.6 RDP accountant (Poisson-sampled Gaussian).
* Fixed clipping against Flower 1.40's `DifferentialPrivacyServerSideFixedClipping` around `FedAvg` (noise
  multiplier 0, so the result is deterministic), and against a numpy unweighted mean of clipped models when the
  example counts differ (a private average weighs every update the same).
* Adaptive clipping against numpy written from Andrew et al. 2021, Algorithm 1 (noise multiplier 0, no count
  noise).
* The epsilon budget: the round that would pass it does not start, also after a restart on the same store.
* Start-up refusals of combinations DP does not support.

Three Flower NumPyClients answer every fit task with x + MAG[i]·(x·s_i + o_i), so the update norms sit near
0.6, 1.6 and 3.2: a clip norm between them clips some updates and not others.
"""

from __future__ import annotations

import json
import subprocess
from typing import List, Optional

import numpy as np
import pytest
from dp_accounting import dp_event
from dp_accounting.rdp import RdpAccountant
from flwr.client import NumPyClient
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg

from conftest import FAST, ClientThread, binary_path, free_port, write_model
from rondo_client import flower
from test_strategies import NAMES, SHAPES, assert_matches, committed_weights, initial, perturbation

MAG = [0.4, 1.0, 2.0]
EQUAL = [10, 10, 10]
UNEQUAL = [3, 5, 11]


def update(client: int, parameters: List[np.ndarray]) -> List[np.ndarray]:
    scales, offsets = perturbation(client)
    return [
        (np.asarray(x, np.float64) + MAG[client] * (np.asarray(x, np.float64) * s + o)).astype(np.float32)
        for x, s, o in zip(parameters, scales, offsets)
    ]


class ScaledUpdateClient(NumPyClient):
    def __init__(self, index: int, examples: List[int]):
        self.index, self.examples = index, examples

    def get_parameters(self, config):
        return [np.zeros(SHAPES[name], np.float32) for name in NAMES]

    def fit(self, parameters, config):
        return update(self.index, parameters), self.examples[self.index], {}

    def evaluate(self, parameters, config):
        return 0.0, 1, {}


def dp_args(model: str, rounds: int, *dp: str) -> List[str]:
    return [
        "--initial-model", model, "--open-enrolment", "--fraction-evaluate", "0",
        "--min-available-clients", "3", "--min-fit-clients", "3", "--min-fit-results", "3",
        "--rounds", str(rounds), *FAST, *dp,
    ]


def run_until(coordinator, predicate, what: str, examples: List[int]) -> dict:
    """Runs the three clients until `predicate(status)` holds; stops them and checks none of them raised."""
    threads = [
        ClientThread(lambda stop, i=i: flower.start(
            client=ScaledUpdateClient(i, examples), coordinator=coordinator.url, name=f"site-{i}",
            long_poll_seconds=1, stop_event=stop))
        for i in range(3)
    ]
    try:
        status = coordinator.wait_for(predicate, 120, what)
    finally:
        for thread in threads:
            thread.stop()
    for thread in threads:
        assert thread.error is None, thread.error
    return status


def finished(status: dict) -> bool:
    return status["phase"] == "finished"


def metric(coordinator, name: str) -> float:
    for line in coordinator.metrics_text().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not on /metrics")


def reference_epsilon(q: float, z: float, rounds: int, delta: float) -> float:
    accountant = RdpAccountant()
    accountant.compose(dp_event.SelfComposedDpEvent(
        dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(z)), rounds))
    return float(accountant.get_epsilon(delta))


def rondo_epsilon(q: float, z: float, rounds: int, delta: float) -> Optional[float]:
    out = subprocess.run(
        [binary_path(), "privacy", "epsilon", "--noise-multiplier", repr(z), "--sampling-rate", repr(q),
         "--rounds", str(rounds), "--delta", repr(delta), "--json"],
        capture_output=True, text=True, timeout=60, check=True)
    answer = json.loads(out.stdout)
    assert (answer["rounds"], answer["sampling_rate"], answer["noise_multiplier"], answer["delta"]) == \
        (rounds, q, z, delta), answer
    return answer["epsilon"]


def test_the_accountant_equals_dp_accounting_over_a_grid():
    """81 points (q × z × rounds at δ = 1e-5, one at 1e-6): the issue asks for 1 % of dp_accounting's RDP epsilon;
    the accountant runs the same series and conversion, so it must agree to 1e-9 and never come out below.
    Every mismatch is listed, not only the first."""
    grid = [(q, z, n, 1e-5) for q in (0.001, 0.01, 0.1, 0.5, 1.0) for z in (0.6, 1.0, 1.3, 3.0)
            for n in (1, 10, 100, 1000)] + [(0.01, 1.1, 100, 1e-6)]
    mismatches = []
    for q, z, n, delta in grid:
        ours, theirs = rondo_epsilon(q, z, n, delta), reference_epsilon(q, z, n, delta)
        assert ours is not None and np.isfinite(theirs), (q, z, n, delta, ours, theirs)
        if abs(ours - theirs) > 1e-9 * theirs or ours < theirs * (1 - 1e-12):
            mismatches.append(f"q={q} z={z} rounds={n} delta={delta}: rondo {ours:.6g}, dp_accounting "
                              f"{theirs:.6g} ({(ours - theirs) / theirs:+.2%})")
    assert not mismatches, f"{len(mismatches)} of {len(grid)} grid points off:\n" + "\n".join(mismatches)
    assert rondo_epsilon(1.0, 0.0, 3, 1e-5) is None, "no noise: epsilon is unbounded"


class NoClients:
    """Enough of a ClientManager for Flower's configure_fit, which the DP wrapper needs to record the base."""

    def num_available(self) -> int:
        return 0

    def sample(self, num_clients, min_num_clients=None, criterion=None):
        return []


def flower_fixed_clipping(clip: float, steps: int) -> List[List[np.ndarray]]:
    start = [initial()[n] for n in NAMES]
    strategy = DifferentialPrivacyServerSideFixedClipping(
        FedAvg(initial_parameters=ndarrays_to_parameters(start)),
        noise_multiplier=0.0, clipping_norm=clip, num_sampled_clients=3)
    current, history = start, []
    for server_round in range(1, steps + 1):
        strategy.configure_fit(server_round, ndarrays_to_parameters(current), NoClients())
        results = [(None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(update(i, current)), EQUAL[i], {}))
                   for i in range(3)]
        parameters, _ = strategy.aggregate_fit(server_round, results, [])
        current = parameters_to_ndarrays(parameters)
        history.append(current)
    return history


def clipped_models(base: List[np.ndarray], clip: float):
    """Each client's model clipped to `clip` around `base` (float64), and its update's flat L2 norm."""
    base64 = [np.asarray(x, np.float64) for x in base]
    out = []
    for i in range(3):
        delta = [np.asarray(u, np.float64) - b for u, b in zip(update(i, base), base64)]
        norm = float(np.sqrt(sum(float((d ** 2).sum()) for d in delta)))
        out.append(([b + min(1.0, clip / norm) * d for b, d in zip(base64, delta)], norm))
    return out


def test_fixed_clipping_equals_flowers_dp_wrapper(coordinators, tmp_path):
    """Equal example counts, z = 0, C = 1.2 (client 0 is not clipped, clients 1 and 2 are), 3 rounds."""
    clip, steps = 1.2, 3
    norms = [norm for _, norm in clipped_models([initial()[n] for n in NAMES], clip)]
    assert norms[0] < clip < min(norms[1:]), norms  # the check covers both sides of the clip
    model = write_model(tmp_path / "init.safetensors", initial())
    coordinator = coordinators(*dp_args(model, steps, "--dp-noise-multiplier", "0", "--dp-clip-norm", str(clip)))
    status = run_until(coordinator, finished, f"{steps} rounds", EQUAL)
    assert status["committed_rounds"] == steps, status
    assert_matches(committed_weights(coordinator), flower_fixed_clipping(clip, steps))
    privacy = status["privacy"]
    assert privacy["clipping"] == "fixed" and privacy["clip_norm"] == clip and privacy["noise_multiplier"] == 0
    assert privacy["rounds"] == steps and privacy["epsilon"] is None, privacy


def test_fixed_clipping_ignores_example_counts(coordinators, tmp_path):
    """Example counts 3, 5, 11: the committed models are the plain mean of the clipped models, not the
    example-weighted mean (which differs here by far more than the tolerance)."""
    clip, steps = 1.2, 2
    model = write_model(tmp_path / "init.safetensors", initial())
    coordinator = coordinators(*dp_args(model, steps, "--dp-noise-multiplier", "0", "--dp-clip-norm", str(clip)))
    run_until(coordinator, finished, f"{steps} rounds", UNEQUAL)
    current, unweighted, weighted = [initial()[n] for n in NAMES], [], []
    for _ in range(steps):
        models = [m for m, _ in clipped_models(current, clip)]
        mean = [np.mean([m[k] for m in models], axis=0) for k in range(len(NAMES))]
        weighted.append([np.average([m[k] for m in models], axis=0, weights=UNEQUAL) for k in range(len(NAMES))])
        current = [x.astype(np.float32) for x in mean]
        unweighted.append(current)
    assert_matches(committed_weights(coordinator), unweighted)
    gap = max(float(np.max(np.abs(w / u - 1))) for w, u in zip(weighted[0], unweighted[0]))
    assert gap > 1e-3, f"the weighted mean is only {gap} away: the check would not tell them apart"


def test_adaptive_clipping_follows_andrew_et_al(coordinators, tmp_path):
    """z = 0, σ_b = 0, C₀ = 0.5, η = 2, γ = 0.5: the rounds leave 0, 1 and 2 updates unclipped.

    The reference is numpy from the paper, not Flower: Flower 1.40's DifferentialPrivacyServerSideAdaptiveClipping
    counts the *clipped* updates as its norm bit (scaling factor < 1), the opposite of Algorithm 1's
    b = [‖Δ‖ ≤ C], so its clip norm moves the other way."""
    clip, rate, quantile, steps = 0.5, 2.0, 0.5, 3
    current, expected, counts = [initial()[n] for n in NAMES], [], []
    for _ in range(steps):
        models = clipped_models(current, clip)
        unclipped = sum(norm <= clip for _, norm in models)
        assert all(abs(norm / clip - 1) > 0.01 for _, norm in models), "a norm too close to C to call"
        counts.append(unclipped)
        current = [np.mean([m[k] for m, _ in models], axis=0).astype(np.float32) for k in range(len(NAMES))]
        expected.append(current)
        clip *= np.exp(-rate * (unclipped / 3 - quantile))
    assert counts == [0, 1, 2], counts

    model = write_model(tmp_path / "init.safetensors", initial())
    coordinator = coordinators(*dp_args(
        model, steps, "--dp-noise-multiplier", "0", "--dp-adaptive-clipping", "--dp-clip-norm", "0.5",
        "--dp-clip-learning-rate", str(rate), "--dp-target-quantile", str(quantile),
        "--dp-clipped-count-stddev", "0"))
    status = run_until(coordinator, finished, f"{steps} rounds", UNEQUAL)
    assert_matches(committed_weights(coordinator), expected)
    privacy = coordinator.status()["privacy"]
    assert privacy["clipping"] == "adaptive" and privacy["target_quantile"] == quantile, privacy
    assert privacy["rounds"] == steps and status["committed_rounds"] == steps, (privacy, status)
    np.testing.assert_allclose(privacy["clip_norm"], clip, rtol=1e-9, atol=0)
    np.testing.assert_allclose(metric(coordinator, "rondo_privacy_clip_norm"), clip, rtol=1e-9, atol=0)


def test_the_epsilon_budget_stops_training_and_survives_a_restart(coordinators, tmp_path):
    """z = 2, q = 1, budget between ε(2 rounds) and ε(3 rounds), --rounds 6: two rounds commit, then the
    federation finishes; a second coordinator on the same store starts no round."""
    delta = 1e-5
    two, three = reference_epsilon(1.0, 2.0, 2, delta), reference_epsilon(1.0, 2.0, 3, delta)
    budget = (two + three) / 2
    model = write_model(tmp_path / "init.safetensors", initial())
    args = dp_args(model, 6, "--dp-noise-multiplier", "2", "--dp-clip-norm", "1", "--dp-epsilon-budget",
                   repr(budget))
    data = tmp_path / "data"

    def check(coordinator, status, this_run: int):
        assert status["committed_rounds"] == this_run, status  # counts this process's commits only
        committed = [r for r in coordinator.admin("/v1/rounds").json()["rounds"] if r["status"] == "committed"]
        assert len(committed) == 2 and len(committed_weights(coordinator)) == 2, committed
        privacy = status["privacy"]
        assert privacy["budget_reached"] is True and privacy["rounds"] == 2, privacy
        assert privacy["epsilon_budget"] == budget and privacy["delta"] == delta, privacy
        np.testing.assert_allclose(privacy["epsilon"], two, rtol=0.01)
        assert metric(coordinator, "rondo_privacy_budget_reached") == 1
        np.testing.assert_allclose(metric(coordinator, "rondo_privacy_epsilon"), two, rtol=0.01)
        assert metric(coordinator, "rondo_privacy_epsilon_budget") == budget
        assert metric(coordinator, "rondo_privacy_delta") == delta
        assert metric(coordinator, "rondo_privacy_noise_multiplier") == 2
        assert metric(coordinator, "rondo_privacy_clip_norm") == 1

    first = coordinators(*args, data_dir=data)
    check(first, run_until(first, finished, "the budget to stop the federation", EQUAL), 2)
    first.stop()

    # The ledger is read back from the store: the restarted coordinator starts finished, before any client
    # connects, and clients that do connect get no round.
    second = coordinators(*args, data_dir=data)
    status = second.status()
    assert status["phase"] == "finished", status
    check(second, status, 0)
    check(second, run_until(second, finished, "the restarted federation to stay finished", EQUAL), 0)


REFUSALS = [
    (["--dp-noise-multiplier", "1", "--strategy", "fedmedian"], "fedmedian"),
    (["--dp-noise-multiplier", "1", "--max-client-weight-share", "0.5"], "weight"),
    (["--dp-noise-multiplier", "1", "--clip-update-norm", "1"], "--clip-update-norm"),
    (["--dp-clip-norm", "1"], "--dp-noise-multiplier"),
    # `--dp-noise-multiplier -1` would be refused by the argument parser as a missing value: `=` reaches the check.
    (["--dp-noise-multiplier=-1"], "noise multiplier must be in 0...1000000"),
]


@pytest.mark.parametrize("flags,named", REFUSALS, ids=["fedmedian", "weight-cap", "clip-update-norm",
                                                       "clip-without-noise", "negative-noise"])
def test_unsupported_combinations_are_refused_at_start(tmp_path, flags, named):
    model = write_model(tmp_path / "init.safetensors", initial())
    command = [binary_path(), "serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"),
               "--initial-model", model, "--open-enrolment", *flags]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert named.lower() in output.lower(), output
    assert "listening" not in output, output
