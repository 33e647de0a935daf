"""An unchanged flwr.client.NumPyClient runs through rondo_client.flower.start."""

from __future__ import annotations

import threading

import flwr
import numpy as np
from flwr.client import NumPyClient

from conftest import FAST, ClientThread, run_until_committed, write_model
from logreg import initial_model, load, loss_and_accuracy
from rondo_client import flower


class FlowerLogReg(NumPyClient):
    """Plain Flower code: lists of ndarrays in, lists out, Flower's config scalars."""

    def __init__(self, x, y, x_test, y_test):
        self.x, self.y, self.x_test, self.y_test = x, y, x_test, y_test
        self.configs = []
        self.lock = threading.Lock()

    def get_parameters(self, config):
        return [np.zeros(1, np.float32), np.zeros(30, np.float32)]

    def fit(self, parameters, config):
        with self.lock:
            self.configs.append(("fit", dict(config)))
        b, w = parameters  # the model's tensor order: the coordinator's file order (bias, weight)
        for _ in range(int(config["local_epochs"]) * 5):
            p = 1.0 / (1.0 + np.exp(-(self.x @ w + b[0])))
            g = p - self.y
            w = (w - config["learning_rate"] * self.x.T @ g / len(self.y)).astype(np.float32)
            b = (b - config["learning_rate"] * np.array([g.mean()])).astype(np.float32)
        return [b, w], len(self.y), {"seen_round": config["server_round"], "tag": "strings are dropped"}

    def evaluate(self, parameters, config):
        with self.lock:
            self.configs.append(("evaluate", dict(config)))
        loss, accuracy = loss_and_accuracy({"bias": parameters[0], "weight": parameters[1]}, self.x_test, self.y_test)
        return loss, len(self.y_test), {"accuracy": accuracy, "loss": loss}


def test_flower_numpy_client_runs_three_rounds(coordinators, tmp_path):
    assert flwr.__version__ == "1.40.0"
    parts, (x_test, y_test) = load(2, seed=3)
    model = write_model(tmp_path / "init.safetensors", initial_model())
    coordinator = coordinators(
        "--initial-model", model, "--open-enrolment",
        "--min-available-clients", "2", "--min-fit-clients", "2", "--min-fit-results", "2", "--rounds", "3",
        "--fit-config", "local_epochs=2", "learning_rate=0.25", "optimizer=sgd", *FAST,
    )
    clients = [FlowerLogReg(*parts[i], x_test, y_test) for i in range(2)]
    threads = [
        ClientThread(lambda stop, c=c, i=i: flower.start(
            client=c, coordinator=coordinator.url, name=f"flower-{i}", long_poll_seconds=1, stop_event=stop))
        for i, c in enumerate(clients)
    ]
    status = run_until_committed(coordinator, threads, rounds=3)
    for client in clients:
        fits = [config for kind, config in client.configs if kind == "fit"]
        assert [c["server_round"] for c in fits][:3] == [1, 2, 3], client.configs
        for config in fits:
            assert config["local_epochs"] == 2 and isinstance(config["local_epochs"], int)
            assert config["learning_rate"] == 0.25 and isinstance(config["learning_rate"], float)
            assert config["optimizer"] == "sgd"
        evaluations = [config for kind, config in client.configs if kind == "evaluate"]
        assert evaluations and all(isinstance(c["server_round"], int) for c in evaluations)
    rounds = coordinator.admin("/v1/rounds").json()["rounds"]
    assert all(r["status"] == "committed" for r in rounds if r["round"] <= 3), rounds
    checkpoint = coordinator.admin(f"/v1/checkpoints/{status['model_version']}").json()["checkpoint"]
    assert "seen_round" in checkpoint["metrics"]["fit_metrics"], checkpoint
    accuracy = loss_and_accuracy(coordinator.weights(status["model_version"]), x_test, y_test)[1]
    assert accuracy >= 0.85, accuracy


def test_flower_low_level_client_is_refused():
    import pytest
    from flwr.client import Client as FlowerClient

    class LowLevel(FlowerClient):
        pass

    with pytest.raises(TypeError):
        flower.FlowerClientAdapter(LowLevel())


def test_flower_config_conversion():
    config = flower.flower_config({"a": "3", "b": "0.5", "c": "1e-3", "d": "sgd", "e": "nan", "f": "-2"}, 7)
    assert config == {"a": 3, "b": 0.5, "c": 0.001, "d": "sgd", "e": "nan", "f": -2, "server_round": 7}
