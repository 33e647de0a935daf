"""Running the staged binary: it serves the OpenAPI document and runs the demo, and without its bundles it must not."""
import contextlib
import glob
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

from .paths import OPENAPI
from .report import Failure


def clean_environment(home):
    """This environment without RONDO_* and OTEL_* settings, and without Swift's crash backtracer (it takes ~10 s
    to symbolicate the debug binary; a crash's `Fatal error:` line is what the failure messages quote)."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("RONDO_", "OTEL_"))}
    environment.update(HOME=home, LC_ALL="C.UTF-8", SWIFT_BACKTRACE="enable=no")
    return environment


def http_get(url, timeout=10):
    """(status, body) of a GET, without any proxy from the environment."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@contextlib.contextmanager
def serving(binary, work, name):
    """Starts `rondo serve --demo-model` on a free port from BINARY; yields (base URL or None, process, log path)."""
    data = os.path.join(work, name + "-data")
    log_path = os.path.join(work, name + ".log")
    log = open(log_path, "wb")  # noqa: SIM115 (closed in the finally below, once the process has stopped)
    process = subprocess.Popen(
        [binary, "serve", "--demo-model", "--host", "127.0.0.1", "--port", "0", "--data-dir", data],
        stdout=subprocess.PIPE, stderr=log, cwd=work, env=clean_environment(work))
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    url = None
    deadline = time.monotonic() + 60
    try:
        while url is None and time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(queue.Empty):
                match = re.search(rb"listening on (https?://[\w.]+):(\d+)", lines.get(timeout=0.5))
                if match:
                    url = f"http://127.0.0.1:{int(match.group(2))}"
        yield url, process, log_path
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        log.close()


def tail(path, lines=4):
    """The lines of a log that say why a process failed (errors, else its last lines)."""
    with open(path, "rb") as handle:
        return errors(handle.read().decode("utf-8", "replace"), lines)


def errors(text, lines=4):
    found = [line for line in text.splitlines()
             if re.search(r"\berror\b", line, re.IGNORECASE) and not re.match(r"\s*\d+\s", line)]  # not stack frames
    return " | ".join((found or text.splitlines())[-lines:])


def run_staged(report, staged_binary, work):
    """The staged binary serves the OpenAPI document and runs the demo."""
    with open(OPENAPI, "rb") as handle:
        document = handle.read()
    with serving(staged_binary, work, "serve") as (url, process, log_path):
        if url is None:
            raise Failure(f"staged `rondo serve --demo-model` did not start: {tail(log_path)}")
        status, _ = http_get(url + "/healthz")
        report.check(status == 200, f"staged serve: GET /healthz answered {status}")
        try:
            status, body = http_get(url + "/v1/openapi.yaml")
        except OSError as error:
            status, body = f"no answer ({error})", b""
        report.check(status == 200 and body == document,
                     f"staged serve: GET /v1/openapi.yaml answered {status} "
                     f"{'with the document' if body == document else 'without the document'} "
                     f"(is Rondo_Coordinator.resources in the image?) {tail(log_path)}")
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            code = "still running after 60 s"
        report.check(code == 0, f"staged serve: SIGTERM should stop it with status 0, got {code}: {tail(log_path)}")
    report.ok(f"staged serve --demo-model: /healthz 200, /v1/openapi.yaml 200 with the repository's document "
              f"({len(document)} bytes), SIGTERM -> status 0")
    summary_path = os.path.join(work, "demo-summary.json")
    demo = subprocess.run(
        [staged_binary, "demo", "--clients", "3", "--rounds", "2", "--port", "0", "--host", "127.0.0.1",
         "--data-dir", os.path.join(work, "demo-data"), "--summary-json", summary_path],
        check=False, cwd=work, env=clean_environment(work), capture_output=True, text=True, timeout=600)
    summary = {}
    if demo.returncode == 0 and os.path.exists(summary_path):
        with open(summary_path, encoding="utf-8") as handle:
            summary = json.load(handle)
    report.check(demo.returncode == 0 and summary.get("committed_rounds") == 2,
                 f"staged demo --clients 3 --rounds 2: status {demo.returncode}, summary {summary} "
                 f"(is Rondo_DemoFederation.resources in the image?) {errors(demo.stdout + demo.stderr)}")
    report.ok(f"staged demo --clients 3 --rounds 2: 2 rounds committed, accuracy {summary.get('final_accuracy')}")


def run_control(report, staged_root, entrypoint, work):
    """Without its bundles the staged binary must fail both checks, or the build path was not hidden."""
    control_root = os.path.join(work, "control-root")
    shutil.copytree(staged_root, control_root, symlinks=True)
    for bundle in glob.glob(os.path.join(control_root + os.path.dirname(entrypoint), "*.resources")):
        shutil.rmtree(bundle)
    binary = control_root + entrypoint
    served = False
    with serving(binary, work, "control-serve") as (url, _, log_path):
        if url is None:
            raise Failure(f"control: `rondo serve --demo-model` did not start: {tail(log_path)}")
        with contextlib.suppress(OSError):
            status, body = http_get(url + "/v1/openapi.yaml")
            served = status == 200 and len(body) > 0
    demo = subprocess.run(
        [binary, "demo", "--clients", "2", "--rounds", "1", "--port", "0", "--host", "127.0.0.1",
         "--data-dir", os.path.join(work, "control-demo-data")],
        check=False, cwd=work, env=clean_environment(work), capture_output=True, text=True, timeout=300)
    report.check(not served and demo.returncode != 0,
                 "control: the staged binary without its *.resources still served /v1/openapi.yaml or ran the demo, so "
                 "it reached the build directory and this check could not catch a missing bundle")
    report.ok("control: without its bundles the staged binary cannot serve /v1/openapi.yaml and its demo fails "
              f"(status {demo.returncode}), so the checks above can fail")
