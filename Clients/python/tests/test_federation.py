"""Three Python clients train a logistic regression on non-IID breast-cancer data through a real coordinator."""

from __future__ import annotations

import numpy as np

import rondo_client
from conftest import FAST, ClientThread, run_until_committed, write_model
from logreg import LogRegClient, initial_model, load, loss_and_accuracy

ACCURACY_THRESHOLD = 0.90  # held-out accuracy of the committed model (central check)
ROUNDS = 4


def test_three_clients_learn(coordinators, tmp_path):
    parts, (x_test, y_test) = load(3, seed=1)
    model = write_model(tmp_path / "init.safetensors", initial_model())
    coordinator = coordinators(
        "--initial-model", model, "--open-enrolment",
        "--min-available-clients", "3", "--min-fit-clients", "3", "--min-fit-results", "3",
        "--rounds", str(ROUNDS), "--fit-config", "local_epochs=4", "learning_rate=0.5", *FAST,
    )
    # Held-out accuracy of the initial (all-zero) model, to show learning happened.
    initial_accuracy = loss_and_accuracy(initial_model(), x_test, y_test)[1]
    slices = np.array_split(np.arange(len(y_test)), 3)
    clients = [LogRegClient(parts[i], (x_test[slices[i]], y_test[slices[i]])) for i in range(3)]
    threads = [
        ClientThread(
            lambda stop, c=c, i=i: rondo_client.start(
                c, coordinator.url, name=f"site-{i}", long_poll_seconds=1, stop_event=stop
            ),
            name=f"site-{i}",
        )
        for i, c in enumerate(clients)
    ]
    status = run_until_committed(coordinator, threads, rounds=3)
    weights = coordinator.weights(status["model_version"])
    assert set(weights) == {"weight", "bias"}
    assert weights["weight"].dtype == np.float32
    loss, accuracy = loss_and_accuracy(weights, x_test, y_test)
    print(f"\nheld-out accuracy {accuracy:.4f} (threshold {ACCURACY_THRESHOLD}, initial {initial_accuracy:.4f}), "
          f"loss {loss:.4f}, model v{status['model_version']}, {status['committed_rounds']} rounds committed")
    assert accuracy >= ACCURACY_THRESHOLD
    assert all(c.rounds_seen for c in clients)
    # Each client downloaded models but the cache kept the count at one per version at most.
    rounds = coordinator.admin("/v1/rounds").json()["rounds"]
    committed = [r for r in rounds if r["status"] == "committed"]
    assert all(r["answered"] == 3 for r in committed), rounds
    assert committed[0]["eval_metrics"].get("accuracy", 0) >= 0.8, committed[0]
