"""A small numpy logistic regression on scikit-learn's breast-cancer data, split non-IID across clients."""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

import rondo_client


def load(num_clients: int, seed: int = 0) -> Tuple[List[Tuple[np.ndarray, np.ndarray]], Tuple[np.ndarray, np.ndarray]]:
    """Per-client (x, y) shares with skewed label mixes, and a held-out (x, y) set."""
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    held = len(y) // 5
    x_test, y_test, x_train, y_train = x[:held], y[:held], x[held:], y[held:]
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-9
    x_train, x_test = ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)
    # Non-IID: client i gets a share of each class drawn from Dirichlet(0.5).
    shares: List[List[int]] = [[] for _ in range(num_clients)]
    for label in (0, 1):
        idx = np.flatnonzero(y_train == label)
        proportions = rng.dirichlet([0.5] * num_clients)
        cuts = (np.cumsum(proportions)[:-1] * len(idx)).astype(int)
        for i, part in enumerate(np.split(idx, cuts)):
            shares[i].extend(part.tolist())
    parts = []
    for i in range(num_clients):
        if len(shares[i]) < 5:  # every client needs some data
            shares[i].extend(rng.choice(len(y_train), 5, replace=False).tolist())
        ids = np.array(shares[i])
        parts.append((x_train[ids], y_train[ids].astype(np.float32)))
    return parts, (x_test, y_test.astype(np.float32))


def initial_model(features: int = 30) -> dict:
    return {"weight": np.zeros((features,), np.float32), "bias": np.zeros((1,), np.float32)}


def predict(parameters, x: np.ndarray) -> np.ndarray:
    z = x @ parameters["weight"] + parameters["bias"][0]
    return 1.0 / (1.0 + np.exp(-z))


def loss_and_accuracy(parameters, x: np.ndarray, y: np.ndarray) -> Tuple[float, float]:
    p = np.clip(predict(parameters, x), 1e-7, 1 - 1e-7)
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return loss, float(np.mean((p >= 0.5) == (y >= 0.5)))


class LogRegClient(rondo_client.Client):
    def __init__(self, train: Tuple[np.ndarray, np.ndarray], test: Tuple[np.ndarray, np.ndarray]):
        self.x, self.y = train
        self.x_test, self.y_test = test
        self.rounds_seen: List[int] = []

    def fit(self, parameters, config):
        self.rounds_seen.append(self.task.round)
        epochs = int(config.get("local_epochs", "2"))
        lr = float(config.get("learning_rate", "0.1"))
        w, b = parameters["weight"].astype(np.float32), parameters["bias"].astype(np.float32)
        for _ in range(epochs * 5):
            p = 1.0 / (1.0 + np.exp(-(self.x @ w + b[0])))
            grad = p - self.y
            w = w - lr * (self.x.T @ grad / len(self.y)).astype(np.float32)
            b = b - lr * np.array([grad.mean()], np.float32)
        loss, accuracy = loss_and_accuracy({"weight": w, "bias": b}, self.x, self.y)
        return {"weight": w, "bias": b}, len(self.y), {"train_loss": loss, "train_accuracy": accuracy}

    def evaluate(self, parameters, config):
        loss, accuracy = loss_and_accuracy(parameters, self.x_test, self.y_test)
        return loss, len(self.y_test), {"accuracy": accuracy}
