"""Server optimizers against Flower's own strategies.

Three Flower NumPyClients answer every fit task with an update that is a fixed function of the model they
were sent (different per client, with different example counts). `rondo serve --strategy NAME` aggregates
them; Flower 1.40's strategy of the same name, fed the same results round after round, is the reference.
Every committed version must equal Flower's parameters after the same number of steps within 1e-6 relative
tolerance, including across a coordinator restart (the optimizer state is stored with each checkpoint).
"""

from __future__ import annotations

from typing import Dict, List

import flwr
import numpy as np
import pytest
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.client import NumPyClient
from flwr.server.strategy import (
    FedAdagrad, FedAdam, FedAvg, FedAvgM, FedMedian, FedProx, FedTrimmedAvg, FedYogi, Krum,
)

from conftest import FAST, ClientThread, write_model
from rondo_client import flower, proximal_gradient, proximal_mu, proximal_penalty

# Client i's update is x·(1 + SCALE[i]) + OFFSET[i] (element-wise), trained on EXAMPLES[i] examples. Models
# and offsets are positive, so every pseudo-gradient is positive and no coordinate's step hinges on the sign
# of a difference lost to rounding.
EXAMPLES = [3, 5, 11]
NAMES = ["a", "b"]  # the coordinator sends tensors in name order
SHAPES = {"a": (3, 4), "b": (5,)}


def initial() -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {name: rng.uniform(1.0, 2.0, SHAPES[name]).astype(np.float32) for name in NAMES}


def perturbation(client: int):
    rng = np.random.default_rng(100 + client)
    scales = [rng.uniform(0.0, 0.2, SHAPES[name]) for name in NAMES]
    offsets = [rng.uniform(0.01, 0.3, SHAPES[name]) for name in NAMES]
    return scales, offsets


# Robust rounds have five sites; the last one sends a far-off update (x·3 + 5), as a broken or hostile site
# would.
ROBUST_EXAMPLES = [3, 5, 11, 7, 2]
OUTLIER = 4


def update(client: int, parameters: List[np.ndarray], sites: int = 3) -> List[np.ndarray]:
    if sites == len(ROBUST_EXAMPLES) and client == OUTLIER:
        return [(np.asarray(x, np.float64) * 3 + 5).astype(np.float32) for x in parameters]
    scales, offsets = perturbation(client)
    return [
        (np.asarray(x, np.float64) * (1 + s) + o).astype(np.float32)
        for x, s, o in zip(parameters, scales, offsets)
    ]


class FixedUpdateClient(NumPyClient):
    def __init__(self, index: int, examples: List[int]):
        self.index = index
        self.examples = examples
        self.proximal_mus: List[float] = []

    def get_parameters(self, config):
        return [np.zeros(SHAPES[name], np.float32) for name in NAMES]

    def fit(self, parameters, config):
        self.proximal_mus.append(proximal_mu(config))
        return update(self.index, parameters, len(self.examples)), self.examples[self.index], {}

    def evaluate(self, parameters, config):
        return 0.0, 1, {}


FLOWER = {
    "fedavg": lambda init, options: FedAvg(initial_parameters=init),
    "fedavgm": lambda init, options: FedAvgM(initial_parameters=init, **options),
    "fedadam": lambda init, options: FedAdam(initial_parameters=init, **options),
    "fedyogi": lambda init, options: FedYogi(initial_parameters=init, **options),
    "fedadagrad": lambda init, options: FedAdagrad(initial_parameters=init, **options),
    "fedprox": lambda init, options: FedProx(initial_parameters=init, **options),
    "fedmedian": lambda init, options: FedMedian(initial_parameters=init),
    "fedtrimmedavg": lambda init, options: FedTrimmedAvg(initial_parameters=init, **options),
    "krum": lambda init, options: Krum(
        initial_parameters=init, **{key: int(value) for key, value in options.items()}),
}


def flower_reference(
    name: str, options: Dict[str, float], steps: int, examples: List[int] = EXAMPLES
) -> List[List[np.ndarray]]:
    """Flower's parameters after each of `steps` rounds of the same results."""
    start = [initial()[n] for n in NAMES]
    strategy = FLOWER[name](ndarrays_to_parameters(start), options)
    current = start
    history = []
    for server_round in range(1, steps + 1):
        results = [
            (None, FitRes(
                Status(Code.OK, ""), ndarrays_to_parameters(update(i, current, len(examples))), examples[i], {}))
            for i in range(len(examples))
        ]
        parameters, _ = strategy.aggregate_fit(server_round, results, [])
        current = parameters_to_ndarrays(parameters)
        history.append(current)
    return history


def start_clients(coordinator, examples: List[int] = EXAMPLES) -> List[ClientThread]:
    return [
        ClientThread(lambda stop, i=i: flower.start(
            client=FixedUpdateClient(i, examples), coordinator=coordinator.url, name=f"site-{i}",
            long_poll_seconds=1, stop_event=stop))
        for i in range(len(examples))
    ]


def serve_args(model: str, name: str, options: Dict[str, float], rounds: int, sites: int = 3) -> List[str]:
    args = [
        "--initial-model", model, "--open-enrolment", "--fraction-evaluate", "0",
        "--min-available-clients", str(sites), "--min-fit-clients", str(sites), "--min-fit-results", str(sites),
        "--rounds", str(rounds), "--strategy", name, *FAST,
    ]
    for key, value in options.items():
        args += ["--strategy-option", f"{key}={value!r}"]
    return args


def run_rounds(coordinator, rounds: int, examples: List[int] = EXAMPLES) -> None:
    threads = start_clients(coordinator, examples)
    try:
        coordinator.wait_for(
            lambda s: s["phase"] == "finished" or s["committed_rounds"] >= rounds, 90, f"{rounds} committed rounds")
    finally:
        for thread in threads:
            thread.stop()
    for thread in threads:
        assert thread.error is None, thread.error


def committed_weights(coordinator) -> List[List[np.ndarray]]:
    listing = coordinator.admin("/v1/checkpoints").json()["checkpoints"]
    versions = sorted(c["version"] for c in listing if c["status"] == "committed")
    return [[coordinator.weights(v)[n] for n in NAMES] for v in versions]


def assert_matches(ours: List[List[np.ndarray]], reference: List[List[np.ndarray]]) -> None:
    assert len(ours) == len(reference), (len(ours), len(reference))
    for step, (mine, theirs) in enumerate(zip(ours, reference), start=1):
        for name, x, y in zip(NAMES, mine, theirs):
            np.testing.assert_allclose(
                np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=1e-6, atol=0,
                err_msg=f"step {step}, tensor {name}")


CASES = [
    ("fedavg", {}),
    ("fedavgm", {"server_learning_rate": 0.7, "server_momentum": 0.9}),
    ("fedadam", {"eta": 0.05, "beta_1": 0.8, "beta_2": 0.95, "tau": 1e-3}),
    ("fedyogi", {"eta": 0.05, "beta_1": 0.9, "beta_2": 0.99, "tau": 1e-3}),
    ("fedadagrad", {"eta": 0.1, "tau": 1e-3}),
]


@pytest.mark.parametrize("name,options", CASES, ids=[case[0] for case in CASES])
def test_each_strategy_equals_flowers_over_several_rounds(coordinators, tmp_path, name, options):
    assert flwr.__version__ == "1.40.0"
    steps = 4
    model = write_model(tmp_path / "init.safetensors", initial())
    coordinator = coordinators(*serve_args(model, name, options, rounds=steps))
    run_rounds(coordinator, steps)
    assert_matches(committed_weights(coordinator), flower_reference(name, options, steps))

    configured = coordinator.status()["configuration"]["strategy"]
    assert configured["name"] == name
    for key, value in options.items():
        assert configured["parameters"][key] == value, configured
    listing = coordinator.admin("/v1/checkpoints").json()["checkpoints"]
    recorded = [c["strategy"] for c in listing if c["status"] == "committed"]
    assert recorded and all(r == configured for r in recorded), recorded
    assert [c["strategy"] for c in listing if c["status"] == "imported"] == [None]


def test_the_optimizer_state_survives_a_restart(coordinators, tmp_path):
    name, options = CASES[2]  # fedadam: two moment buffers and a step count in the bias correction
    model = write_model(tmp_path / "init.safetensors", initial())
    data = tmp_path / "data"
    first = coordinators(*serve_args(model, name, options, rounds=2), data_dir=data)
    run_rounds(first, 2)
    first.stop()
    second = coordinators(*serve_args(model, name, options, rounds=2), data_dir=data)
    run_rounds(second, 2)
    assert_matches(committed_weights(second), flower_reference(name, options, 4))


def test_a_live_rollback_resumes_the_optimizer_state_of_its_version(coordinators, tmp_path):
    name, options = CASES[2]  # fedadam: two moment buffers and a step count in the bias correction
    model = write_model(tmp_path / "init.safetensors", initial())
    coordinator = coordinators(*serve_args(model, name, options, rounds=50))
    threads = start_clients(coordinator)
    try:
        coordinator.wait_for(lambda s: s["committed_rounds"] >= 3, 90, "three committed rounds")
        coordinator.admin_post("/v1/federation/pause")  # the open round may still finish
        coordinator.wait_for(lambda s: s["phase"] == "selecting", 30, "the paused federation to settle")
        versions = sorted(
            c["version"] for c in coordinator.admin("/v1/checkpoints").json()["checkpoints"]
            if c["status"] == "committed")
        coordinator.admin_post(f"/v1/checkpoints/{versions[0]}/rollback", {"reason": "test"})
        coordinator.admin_post("/v1/federation/resume")
        coordinator.wait_for(
            lambda s: s["model_version"] > versions[-1], 60, "a round committed after the rollback")
    finally:
        for thread in threads:
            thread.stop()
    for thread in threads:
        assert thread.error is None, thread.error
    listing = coordinator.admin("/v1/checkpoints").json()["checkpoints"]
    after = min(c["version"] for c in listing if c["status"] == "committed" and c["version"] > versions[-1])
    assert next(c for c in listing if c["version"] == after)["parent_version"] == versions[0]
    # Rolled back to the version of step 1, the next round is step 2 with step 1's buffers.
    assert_matches([[coordinator.weights(after)[n] for n in NAMES]], flower_reference(name, options, 2)[1:])

ROBUST_CASES = [
    ("fedmedian", {}),
    ("fedtrimmedavg", {"beta": 0.2}),
    ("krum", {"num_malicious_clients": 1}),
    ("krum", {"num_malicious_clients": 1, "num_clients_to_keep": 3}),
]


@pytest.mark.parametrize(
    "name,options", ROBUST_CASES, ids=["fedmedian", "fedtrimmedavg", "krum", "multikrum"])
def test_robust_aggregators_equal_flowers_with_an_outlier_site(coordinators, tmp_path, name, options):
    steps = 3
    model = write_model(tmp_path / "init.safetensors", initial())
    coordinator = coordinators(
        *serve_args(model, name, {k: int(v) if name == "krum" else v for k, v in options.items()}, rounds=steps,
                    sites=len(ROBUST_EXAMPLES)))
    run_rounds(coordinator, steps, ROBUST_EXAMPLES)
    assert_matches(committed_weights(coordinator), flower_reference(name, options, steps, ROBUST_EXAMPLES))

    rounds = coordinator.admin("/v1/rounds").json()["rounds"]
    committed = [r for r in rounds if r["status"] == "committed"]
    assert len(committed) == steps, rounds
    clients = {c["name"]: c["client_id"] for c in coordinator.admin("/v1/clients").json()["clients"]}
    outlier = clients[f"site-{OUTLIER}"]
    events = coordinator.admin("/v1/events").json()["events"]
    robust = [e for e in events if e["kind"] == "robust_aggregation"]
    if name == "krum":
        # Krum keeps one result, Multi-Krum three: the outlier is never among them, and is named.
        assert all(outlier in (r.get("detail") or "") for r in committed), committed
        assert len(robust) == steps and all(outlier in e["detail"]["excluded"] for e in robust), robust
        excluded = len(ROBUST_EXAMPLES) - options.get("num_clients_to_keep", 1)
        assert f'rondo_aggregation_excluded_clients_total{{strategy="krum"}} {steps * excluded}' in \
            coordinator.metrics_text()
    elif name == "fedtrimmedavg":
        # The outlier's values are the largest everywhere: cut in every coordinate, and named first.
        assert all(e["detail"]["most_trimmed"].startswith(f"{outlier}=1.0") for e in robust), robust
    else:
        assert robust == [], "the median leaves nobody out"


def test_fedprox_sends_mu_to_every_fit_task_and_averages_as_flower_does(coordinators, tmp_path):
    options = {"proximal_mu": 0.5}
    model = write_model(tmp_path / "init.safetensors", initial())
    coordinator = coordinators(*serve_args(model, "fedprox", options, rounds=2))
    clients = [FixedUpdateClient(i, EXAMPLES) for i in range(len(EXAMPLES))]
    threads = [
        ClientThread(lambda stop, c=c, i=i: flower.start(
            client=c, coordinator=coordinator.url, name=f"site-{i}", long_poll_seconds=1, stop_event=stop))
        for i, c in enumerate(clients)
    ]
    try:
        coordinator.wait_for(lambda s: s["phase"] == "finished", 90, "two committed rounds")
    finally:
        for thread in threads:
            thread.stop()
    assert_matches(committed_weights(coordinator), flower_reference("fedprox", options, 2))
    for client in clients:
        assert client.proximal_mus[:2] == [0.5, 0.5], client.proximal_mus


def test_the_proximal_helpers_follow_the_term():
    assert proximal_mu({"proximal_mu": "0.25"}) == 0.25 and proximal_mu({"proximal_mu": 0.25}) == 0.25
    assert proximal_mu({}) == 0.0 and proximal_mu({"proximal_mu": "nan"}) == 0.0 and proximal_mu({"proximal_mu": "-1"}) == 0.0
    w = {"a": np.array([1.0, 2.0], np.float32), "n": np.array([3], np.int64)}
    g = {"a": np.array([0.0, 4.0], np.float32), "n": np.array([0], np.int64)}
    np.testing.assert_allclose(proximal_gradient(w["a"], g["a"], 0.5), [0.5, -1.0])
    assert proximal_penalty(w, g, 0.5) == 0.25 * (1 + 4), "integer tensors carry no term"
