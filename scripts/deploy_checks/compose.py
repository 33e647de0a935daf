"""Deploy/compose.yaml and the files its services mount, including a live run of compose/alert-logger.py."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import yaml

from .facts import drain_seconds, duration_seconds, flag, pinned
from .paths import COMPOSE, DEPLOY, DOCKERFILE


def check_compose(report, known, kubernetes_image):
    """Returns (grace seconds, drain seconds)."""
    with open(COMPOSE, encoding="utf-8") as handle:
        compose = yaml.safe_load(handle)
    services = compose["services"]
    for name, service in services.items():
        if "image" in service:
            report.check(pinned(service["image"]) or service["image"] == kubernetes_image,
                         f"compose: service {name}'s image {service['image']} is not pinned")
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                report.check(os.path.exists(os.path.join(DEPLOY, source)),
                             f"compose: service {name} mounts {source}, which does not exist")
    rondo = services["rondo"]
    report.check(os.path.normpath(os.path.join(DEPLOY, rondo["build"]["context"], rondo["build"]["dockerfile"]))
                 == DOCKERFILE, "compose: the rondo service must build Deploy/Dockerfile")
    report.check(rondo.get("image") == kubernetes_image,
                 f"compose: the rondo image {rondo.get('image')} must be tagged like Kubernetes' {kubernetes_image}")
    report.check(rondo.get("read_only") is True and any(str(t).startswith("/tmp") for t in rondo.get("tmpfs", []))
                 and "ALL" in rondo.get("cap_drop", []),
                 "compose: rondo must run read-only with a /tmp tmpfs and cap_drop ALL, as in Kubernetes")
    arguments = [str(argument) for argument in rondo["command"]]
    report.ok(f"compose: {len(services)} services parse, images pinned, mounted files exist, rondo confined, "
              f"image {rondo.get('image')}")

    with open(os.path.join(DEPLOY, "compose", "alertmanager.yml"), encoding="utf-8") as handle:
        alertmanager = yaml.safe_load(handle)
    urls = [config["url"] for receiver in alertmanager["receivers"] for config in receiver.get("webhook_configs", [])]
    report.check(urls, "compose: Alertmanager needs a webhook receiver")
    for url in urls:
        match = re.fullmatch(r"http://([\w-]+):(\d+)(/\S*)?", url)
        target = services.get(match.group(1)) if match else None
        report.check(target is not None and match.group(2) in [str(word) for word in target.get("command", [])],
                     f"compose: Alertmanager posts to {url}, which is no service of the stack listening on that port")
    with open(os.path.join(DEPLOY, "compose", "prometheus.yml"), encoding="utf-8") as handle:
        prometheus = yaml.safe_load(handle)
    targets = [target for job in prometheus["scrape_configs"] for config in job.get("static_configs", [])
               for target in config["targets"]]
    targets += [target for manager in prometheus["alerting"]["alertmanagers"]
                for config in manager.get("static_configs", []) for target in config["targets"]]
    for target in targets:
        host = target.partition(":")[0]
        report.check(host in services, f"compose: prometheus.yml targets {target}, which is no service of the stack")
    report.check(f"rondo:{flag(arguments, '--port')}" in targets,
                 f"compose: prometheus.yml must scrape rondo on its --port {flag(arguments, '--port')}")
    if shutil.which("amtool"):
        result = subprocess.run(["amtool", "check-config", os.path.join(DEPLOY, "compose", "alertmanager.yml")],
                                check=False, capture_output=True, text=True)
        report.check(result.returncode == 0, f"compose: amtool check-config failed: {result.stdout}{result.stderr}")
        report.ok("compose: amtool check-config passes")
    else:
        report.skip("compose: amtool not installed (Debian package prometheus-alertmanager), config not validated")
    check_alert_logger(report)
    return duration_seconds(rondo.get("stop_grace_period", "10s")), drain_seconds(arguments, known)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def check_alert_logger(report):
    """compose/alert-logger.py answers an Alertmanager webhook payload with 200 and prints the alert."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-u", os.path.join(DEPLOY, "compose", "alert-logger.py"), str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    payload = {"version": "4", "status": "firing", "receiver": "alert-logger", "alerts": [{
        "status": "firing", "labels": {"alertname": "RondoCoordinatorDown", "severity": "critical"},
        "annotations": {"summary": "test alert", "runbook_url": "Prometheus/runbooks/RondoCoordinatorDown.md"},
        "startsAt": "2026-01-01T00:00:00Z"}]}
    try:
        deadline = time.monotonic() + 20
        status = None
        while status is None and time.monotonic() < deadline:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/alerts", data=json.dumps(payload).encode(),
                                                 headers={"Content-Type": "application/json"})
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                with opener.open(request, timeout=5) as response:
                    status = response.status
            except urllib.error.URLError:
                time.sleep(0.2)
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode("utf-8", "replace")
    report.check(status == 200 and '"alertname": "RondoCoordinatorDown"' in output,
                 f"compose: alert-logger answered {status} and printed {output!r}")
    report.ok("compose: alert-logger receives an Alertmanager payload and prints it")
