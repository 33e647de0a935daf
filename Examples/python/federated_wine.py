"""Runs 5 non-IID wine sites against a running `rondo serve`, then prints the final model's accuracy.

python3 Examples/python/federated_wine.py --coordinator http://127.0.0.1:8470 --data-dir /tmp/rondo-wine --rounds 20
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "Clients" / "python"))  # run from a checkout

import rondo_client  # noqa: E402
from wine_model import load_split, loss_and_accuracy, train  # noqa: E402


class WineSite(rondo_client.Client):
    def __init__(self, index, train_data, test_data):
        self.index = index
        self.x, self.y = train_data
        self.x_test, self.y_test = test_data

    def fit(self, parameters, config):
        updated = train(
            parameters, self.x, self.y,
            epochs=int(config.get("local_epochs", "2")), lr=float(config.get("learning_rate", "0.1")),
            batch_size=int(config.get("batch_size", "16")), seed=self.task.round * 100 + self.index,
        )
        loss, accuracy = loss_and_accuracy(updated, self.x, self.y)
        return updated, len(self.y), {"train_loss": loss, "train_accuracy": accuracy}

    def evaluate(self, parameters, config):
        loss, accuracy = loss_and_accuracy(parameters, self.x_test, self.y_test)
        return loss, len(self.y_test), {"accuracy": accuracy}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--coordinator", default="http://127.0.0.1:8470")
    parser.add_argument("--data-dir", default="./rondo-data", help="the coordinator's data dir (for its tokens)")
    parser.add_argument("--rounds", type=int, default=20, help="the coordinator's --rounds")
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--ca-file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    data_dir = Path(args.data_dir)
    enrolment = data_dir / "enrolment-token"
    enrolment_token = enrolment.read_text().strip() if enrolment.exists() else None
    admin_token = (data_dir / "admin-token").read_text().strip()
    shares, test_slices, (x_test, y_test) = load_split(args.clients)
    print("sites' label counts:", [list(map(int, __import__("numpy").bincount(y, minlength=3))) for _, y in shares])

    started = time.monotonic()
    stop = threading.Event()
    errors = []

    def run(i):
        try:
            rondo_client.start(
                WineSite(i, shares[i], test_slices[i]), args.coordinator, enrolment_token=enrolment_token,
                ca_file=args.ca_file, name=f"wine-site-{i}", long_poll_seconds=1, stop_event=stop,
            )
        except rondo_client.RondoError as error:
            errors.append(error)
            stop.set()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    admin = httpx.Client(base_url=args.coordinator, headers={"Authorization": f"Bearer {admin_token}"},
                         verify=args.ca_file or True)
    status = {}
    while not stop.is_set():
        status = admin.get("/v1/status").json()
        if status["phase"] == "finished" or status["committed_rounds"] + status["failed_rounds"] >= args.rounds:
            break
        time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join(10)
    elapsed = time.monotonic() - started
    if errors:
        print("a site gave up:", errors[0], file=sys.stderr)
        return 1
    from safetensors.numpy import load

    weights = load(admin.get(f"/v1/checkpoints/{status['model_version']}/weights").content)
    loss, accuracy = loss_and_accuracy(weights, x_test, y_test)
    print(f"rounds committed {status['committed_rounds']}, failed {status['failed_rounds']}, "
          f"model v{status['model_version']}")
    print(f"final held-out accuracy {accuracy:.4f} (loss {loss:.4f}) on {len(y_test)} wines; wall time {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
