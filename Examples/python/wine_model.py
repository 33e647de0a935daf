"""Softmax regression on scikit-learn's wine data set (178 wines, 13 features, 3 cultivars), in numpy."""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

FEATURES, CLASSES = 13, 3


def initial_model() -> dict:
    return {"weight": np.zeros((FEATURES, CLASSES), np.float32), "bias": np.zeros((CLASSES,), np.float32)}


def load_split(num_clients: int, alpha: float = 0.5, seed: int = 7):
    """Non-IID shares (Dirichlet(alpha) label mix per client) and a stratified 25 % held-out set."""
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    x, y = load_wine(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, stratify=y, random_state=seed)
    # Feature scaling agreed before training (published constants, as a real federation would ship them).
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-9
    x_train = ((x_train - mean) / std).astype(np.float32)
    x_test = ((x_test - mean) / std).astype(np.float32)
    rng = np.random.default_rng(seed)
    shares: List[List[int]] = [[] for _ in range(num_clients)]
    for label in range(CLASSES):
        idx = rng.permutation(np.flatnonzero(y_train == label))
        cuts = (np.cumsum(rng.dirichlet([alpha] * num_clients))[:-1] * len(idx)).astype(int)
        for i, part in enumerate(np.split(idx, cuts)):
            shares[i].extend(part.tolist())
    for share in shares:
        while len(share) < 4:
            share.append(int(rng.integers(len(y_train))))
    train = [(x_train[np.array(s)], y_train[np.array(s)]) for s in shares]
    # Federated evaluation: each site holds a slice of the held-out set.
    test_slices = [(x_test[i::num_clients], y_test[i::num_clients]) for i in range(num_clients)]
    return train, test_slices, (x_test, y_test)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def loss_and_accuracy(parameters, x: np.ndarray, y: np.ndarray) -> Tuple[float, float]:
    p = softmax(x @ parameters["weight"] + parameters["bias"])
    loss = float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0))))
    return loss, float(np.mean(p.argmax(axis=1) == y))


def train(parameters, x: np.ndarray, y: np.ndarray, epochs: int, lr: float, batch_size: int, seed: int):
    w, b = parameters["weight"].copy(), parameters["bias"].copy()
    onehot = np.eye(CLASSES, dtype=np.float32)[y]
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y), batch_size):
            batch = order[start : start + batch_size]
            grad = softmax(x[batch] @ w + b) - onehot[batch]
            w -= (lr * x[batch].T @ grad / len(batch)).astype(np.float32)
            b -= (lr * grad.mean(axis=0)).astype(np.float32)
    return {"weight": w, "bias": b}
