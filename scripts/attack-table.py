#!/usr/bin/env python3
"""Final held-out accuracy of the digits demo per aggregation strategy, clean and under each attack.

Usage: scripts/attack-table.py --rondo PATH [--malicious-rate 0.3] [--rounds 30] [--seeds 7 8 9]

Runs `rondo demo --no-guard --malicious-rate R --attack A --strategy S ...` for every strategy and attack (and a
clean run per strategy), each in a fresh data directory, reads the final held-out accuracy from
`--summary-json`, and prints a Markdown table (medians over the seeds). The regression guard is off so that
the table shows what the aggregator alone withstands.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

STRATEGIES = [
    ("FedAvg", ["--strategy", "fedavg"]),
    ("median", ["--strategy", "fedmedian"]),
    ("trimmed mean (β = 0.3)", ["--strategy", "fedtrimmedavg", "--strategy-option", "beta=0.3"]),
    ("Multi-Krum (f = 3, m = 7)", ["--strategy", "krum", "--strategy-option", "num_malicious_clients=3",
                                   "--strategy-option", "num_clients_to_keep=7"]),
]
ATTACKS = ["sign-flip", "gaussian-noise", "little-is-enough"]


def accuracy(rondo, strategy, attack, rate, rounds, clients, seed, alpha):
    with tempfile.TemporaryDirectory(prefix="rondo-attack-") as directory:
        summary = os.path.join(directory, "summary.json")
        command = [rondo, "demo", "--no-guard", "--port", "0", "--data-dir", os.path.join(directory, "data"),
                   "--clients", str(clients), "--rounds", str(rounds), "--seed", str(seed), "--alpha", str(alpha),
                   "--summary-json", summary, *strategy]
        if attack:
            command += ["--malicious-rate", str(rate), "--attack", attack]
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}")
        with open(summary) as file:
            return json.load(file)["final_accuracy"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rondo", required=True)
    parser.add_argument("--malicious-rate", type=float, default=0.3)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7])
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    table = {}
    for name, strategy in STRATEGIES:
        for attack in [None] + ATTACKS:
            values = [accuracy(arguments.rondo, strategy, attack, arguments.malicious_rate, arguments.rounds,
                               arguments.clients, seed, arguments.alpha) for seed in arguments.seeds]
            table[(name, attack or "clean")] = statistics.median(values)
    if arguments.json:
        print(json.dumps({f"{k[0]} / {k[1]}": v for k, v in table.items()}, indent=2))
        return
    print(f"| {arguments.clients} sites, {round(arguments.malicious_rate * arguments.clients)} malicious | clean | "
          + " | ".join(ATTACKS) + " |")
    print("|---|---|" + "---|" * len(ATTACKS))
    for name, _ in STRATEGIES:
        print(f"| {name} | " + " | ".join(f"{table[(name, a)]:.3f}" for a in ["clean"] + ATTACKS) + " |")


if __name__ == "__main__":
    sys.exit(main())
