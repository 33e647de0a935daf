#!/usr/bin/env python3
"""Many enrolled, few online: start-up time and memory of `rondo serve` over a store holding N enrolled clients.

Usage: scripts/bench-enrolled.py --rondo PATH [--rondo PATH ...] [--enrolled 50000] [--online 2000] [--runs 3]

For each run and each binary (alternating, so the machine's load hits both alike) it:
  1. copies one prepared data directory (created by the first binary, then N client rows written into its
     SQLite store with known tokens, the way a long-running federation leaves it);
  2. starts `rondo serve` on it and times the wait until /readyz answers 200 (start-up), then reads the
     coordinator's RSS from /proc;
  3. sends one heartbeat for each of `--online` clients (their first request since the start) and then a second
     one each, on one kept-alive connection, timing each; reads the RSS again.

Prints a table and, with --json, one object. Figures are medians over the runs.
"""

import argparse
import hashlib
import http.client
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def token(index):
    return f"bench-token-{index:08d}-0123456789abcdef"


def start(rondo, directory):
    port = free_port()
    log = open(os.path.join(directory, "serve.log"), "w")
    began = time.monotonic()
    process = subprocess.Popen(
        [rondo, "serve", "--data-dir", directory, "--port", str(port), "--demo-model",
         "--max-clients", "1000000", "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT)
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"rondo serve exited with {process.returncode}; see {directory}/serve.log")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return process, port, time.monotonic() - began
        except OSError:
            pass
        time.sleep(0.005)


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def prepare(rondo, enrolled, root):
    """A data directory with a store holding `enrolled` clients."""
    directory = os.path.join(root, "template")
    os.makedirs(directory)
    process, _, _ = start(rondo, directory)
    stop(process)
    database = sqlite3.connect(os.path.join(directory, "rondo.db"))
    now = time.time() - 3600
    database.executemany(
        "INSERT INTO clients (client_id, name, token_sha256, first_seen, last_seen, identity_sha256) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        ((f"c-bench-{i:08d}", f"site {i}", hashlib.sha256(token(i).encode()).hexdigest(), now, now,
          hashlib.sha256(f"identity-{i}".encode()).hexdigest()) for i in range(enrolled)))
    database.commit()
    database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    database.close()
    return directory


def heartbeats(port, online):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies = []
    for i in range(online):
        began = time.perf_counter()
        connection.request("POST", f"/v1/clients/c-bench-{i:08d}/heartbeat",
                           headers={"Authorization": f"Bearer {token(i)}", "Content-Length": "0"})
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - began)
        if response.status != 204:
            raise RuntimeError(f"heartbeat {i}: {response.status}")
        if response.getheader("Connection", "").lower() == "close":
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.close()
    return latencies


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rondo", action="append", required=True, help="rondo binary (repeat to compare)")
    parser.add_argument("--enrolled", type=int, default=50_000)
    parser.add_argument("--online", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    root = tempfile.mkdtemp(prefix="rondo-bench-enrolled-")
    try:
        template = prepare(arguments.rondo[0], arguments.enrolled, root)
        samples = {rondo: [] for rondo in arguments.rondo}
        for run in range(arguments.runs):
            for rondo in arguments.rondo:
                directory = os.path.join(root, f"run-{run}-{len(samples[rondo])}-{os.path.basename(rondo)}")
                shutil.copytree(template, directory)
                process, port, startup = start(rondo, directory)
                try:
                    idle = rss_mb(process.pid)
                    first = heartbeats(port, arguments.online)
                    second = heartbeats(port, arguments.online)
                    online = rss_mb(process.pid)
                finally:
                    stop(process)
                samples[rondo].append({
                    "startup_s": startup, "rss_idle_mb": idle, "rss_online_mb": online,
                    "first_p50_ms": percentile(first, 0.5) * 1000, "first_p99_ms": percentile(first, 0.99) * 1000,
                    "again_p50_ms": percentile(second, 0.5) * 1000, "again_p99_ms": percentile(second, 0.99) * 1000,
                })
                shutil.rmtree(directory)
        report = {
            rondo: {key: statistics.median(sample[key] for sample in runs) for key in runs[0]}
            for rondo, runs in samples.items()
        }
        report_all = {"enrolled": arguments.enrolled, "online": arguments.online, "runs": arguments.runs,
                      "medians": report, "samples": samples}
        if arguments.json:
            print(json.dumps(report_all, indent=2))
            return
        print(f"{arguments.enrolled} enrolled, {arguments.online} heard from, medians of {arguments.runs} runs")
        print(f"{'binary':40} {'start-up':>9} {'RSS idle':>9} {'RSS online':>11} "
              f"{'1st beat p50/p99':>17} {'2nd beat p50/p99':>17}")
        for rondo, figures in report.items():
            print(f"{rondo:40} {figures['startup_s']:8.2f}s {figures['rss_idle_mb']:7.0f}MB "
                  f"{figures['rss_online_mb']:9.0f}MB {figures['first_p50_ms']:7.2f}/{figures['first_p99_ms']:.2f}ms"
                  f" {figures['again_p50_ms']:7.2f}/{figures['again_p99_ms']:.2f}ms")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
