"""Deploy/kubernetes/ (and ingress/): the documents parse, and the Deployment, Service, monitoring and Ingress agree
with the image and the coordinator's limits. Deploy/kubernetes/ha/ (replicas on PostgreSQL) is an alternative to
rondo.yaml, not part of it: kubernetes_ha.py checks it."""
import glob
import os
import re

import yaml

from .facts import drain_seconds, flag
from .paths import KUBERNETES, ROOT
from .report import Failure

INGRESS_MIN_TIMEOUT = 75
HA = "ha"  # the subdirectory with the replicated deployment (Deploy/kubernetes/ha/)


def kubernetes_documents(report, subdirectory=None):
    """The documents of Deploy/kubernetes/*.yaml and its subdirectories except ha/, or of one subdirectory."""
    if subdirectory:
        paths = glob.glob(os.path.join(KUBERNETES, subdirectory, "*.yaml"))
    else:
        paths = glob.glob(os.path.join(KUBERNETES, "*.yaml")) + [
            path for path in glob.glob(os.path.join(KUBERNETES, "*", "*.yaml"))
            if os.path.basename(os.path.dirname(path)) != HA]
    documents = []
    for path in sorted(paths):
        with open(path, encoding="utf-8") as handle:
            try:
                loaded = [document for document in yaml.safe_load_all(handle) if document is not None]
            except yaml.YAMLError as error:
                report.check(False, f"{os.path.relpath(path, ROOT)} does not parse: {error}")
                continue
        for document in loaded:
            complete = isinstance(document, dict) and document.get("apiVersion") and document.get("kind") and \
                (document.get("metadata") or {}).get("name")
            report.check(complete, f"{os.path.relpath(path, ROOT)}: a document without apiVersion, kind or name")
            if complete:
                document["__file__"] = os.path.relpath(path, KUBERNETES)  # which file it came from (not Kubernetes')
                documents.append(document)
    report.ok(f"kubernetes{'/' + subdirectory if subdirectory else ''}: {len(documents)} documents parse: "
              + ", ".join(f"{d['kind']}/{d['metadata']['name']}" for d in documents))
    return documents


def one(documents, kind):
    found = [document for document in documents if document["kind"] == kind]
    if len(found) != 1:
        raise Failure(f"kubernetes: expected one {kind}, found {len(found)}")
    return found[0]


def size_bytes(text):
    """An nginx size (512m, 1g, 100k, 1048576) in bytes."""
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", str(text).strip())
    if not match:
        raise Failure(f"cannot read the size {text!r}")
    return int(match.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[match.group(2).lower()]


def check_pod(report, name, pod, container, known, uid, gid):
    """What every rondo pod needs, one replica or several: the image's user, confinement, no service links, an
    emptyDir /tmp, requests and a memory limit, the binary's version as the image tag. Returns the image."""
    pod_security = pod.get("securityContext") or {}
    security = container.get("securityContext") or {}

    def effective(key):
        return security.get(key, pod_security.get(key))

    report.check(effective("runAsNonRoot") is True, f"{name}: runAsNonRoot must be true")
    report.check(effective("runAsUser") == uid, f"{name}: runAsUser must be the image's user {uid}")
    report.check(effective("runAsGroup") in (None, gid), f"{name}: runAsGroup must be the image's group {gid}")
    report.check(pod_security.get("fsGroup") == gid, f"{name}: the pod needs fsGroup {gid} for the volume")
    report.check(security.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem must be true")
    report.check(security.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation must be false")
    report.check("ALL" in ((security.get("capabilities") or {}).get("drop") or []),
                 f"{name}: capabilities must drop ALL")
    report.check((effective("seccompProfile") or {}).get("type") == "RuntimeDefault",
                 f"{name}: seccompProfile must be RuntimeDefault")
    report.check(pod.get("enableServiceLinks") is False,
                 f"{name}: enableServiceLinks must be false (a Service named rondo injects RONDO_PORT=tcp://…)")
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    mounts = {mount["mountPath"]: mount["name"] for mount in container.get("volumeMounts", [])}
    report.check("/tmp" in mounts and "emptyDir" in volumes.get(mounts["/tmp"], {}),
                 f"{name}: a read-only root needs an emptyDir mounted at /tmp")
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    report.check("cpu" in requests and "memory" in requests and "memory" in limits,
                 f"{name}: needs cpu and memory requests and a memory limit")
    image = container["image"]
    tag = image.rpartition(":")[2] if ":" in image.rsplit("/", 1)[-1] else ""
    report.check(tag and tag != "latest" and tag == known["version"],
                 f"{name}: image {image} must be tagged with the binary's version {known['version']} "
                 "(Sources/FederationTelemetry/RondoBuild.swift), never :latest")
    report.ok(f"{name}: uid {uid} non-root, read-only root + emptyDir /tmp, no escalation, caps dropped, "
              f"RuntimeDefault seccomp, fsGroup {gid}, no service links, requests {requests}, limits {limits}, "
              f"image {image}")
    return image


def volume_mounts(pod, container):
    """{mount path: volume} of the container."""
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    return {mount["mountPath"]: volumes.get(mount["name"], {}) for mount in container.get("volumeMounts", [])}


def volume_holding(pod, container, path):
    """The volume whose mount holds PATH (the innermost mount), else {}."""
    inside = [mount for mount in volume_mounts(pod, container) if path.startswith(mount.rstrip("/") + "/")]
    return volume_mounts(pod, container)[max(inside, key=len)] if inside else {}


def check_kubernetes(report, documents, known, uid, gid):
    """Returns (image, grace seconds, drain seconds)."""
    deployment = one(documents, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "rondo")
    name = "kubernetes: Deployment rondo"
    image = check_pod(report, name, pod, container, known, uid, gid)
    arguments = [str(argument) for argument in container.get("args", [])]
    data_dir = flag(arguments, "--data-dir") or ""
    report.check("persistentVolumeClaim" in volume_holding(pod, container, data_dir),
                 f"{name}: --data-dir {data_dir} must lie inside the PersistentVolumeClaim's mount")
    report.check(deployment["spec"].get("replicas") == 1 and
                 (deployment["spec"].get("strategy") or {}).get("type") == "Recreate",
                 f"{name}: one replica with the Recreate strategy (one writer of the SQLite file)")
    grace = pod.get("terminationGracePeriodSeconds")
    drain = drain_seconds(arguments, known)
    report.ok(f"{name}: one replica, Recreate, --data-dir {data_dir} on the PersistentVolumeClaim")

    service = one(documents, "Service")
    ports = {port.get("name"): port for port in service["spec"]["ports"]}
    report.check(service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items(),
                 "kubernetes: the Service's selector does not select the Deployment's pods")
    monitor = one(documents, "ServiceMonitor")
    release = (monitor["metadata"].get("labels") or {}).get("release")
    report.check(release, "kubernetes: the ServiceMonitor needs a `release` label for the Prometheus Operator")
    report.check(all(endpoint.get("port") in ports for endpoint in monitor["spec"]["endpoints"]),
                 "kubernetes: the ServiceMonitor scrapes a port the Service does not name")
    rule = one(documents, "PrometheusRule")
    report.check((rule["metadata"].get("labels") or {}).get("release") == release,
                 f"kubernetes: the PrometheusRule's `release` label must equal the ServiceMonitor's ({release!r}); "
                 "set it in prometheusRuleLabels of Prometheus/mixin.yaml and regenerate")
    report.ok(f"kubernetes: Service selects the pods; ServiceMonitor and PrometheusRule carry release={release}")

    ingress = one(documents, "Ingress")
    annotations = ingress["metadata"].get("annotations") or {}
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        value = annotations.get(f"nginx.ingress.kubernetes.io/{key}")
        report.check(value is not None and float(value) >= max(INGRESS_MIN_TIMEOUT, known["long_poll"] + 15),
                     f"kubernetes: Ingress {key} {value} must be at least {INGRESS_MIN_TIMEOUT} s and above the "
                     f"{known['long_poll']:.0f} s long-poll")
    max_update = int(flag(arguments, "--max-update-bytes") or known["max_update_bytes"])
    body = annotations.get("nginx.ingress.kubernetes.io/proxy-body-size")
    report.check(body is not None and size_bytes(body) == max_update,
                 f"kubernetes: Ingress proxy-body-size {body} must equal the Deployment's --max-update-bytes "
                 f"({max_update} bytes)")
    backends = [path["backend"]["service"] for rule_ in ingress["spec"]["rules"] for path in rule_["http"]["paths"]]
    report.check(all(backend["name"] == service["metadata"]["name"] and
                     (backend["port"].get("name") in ports or backend["port"].get("number") in
                      [port["port"] for port in ports.values()]) for backend in backends),
                 "kubernetes: the Ingress must route to the rondo Service's port")
    report.ok(f"kubernetes: Ingress timeouts {annotations.get('nginx.ingress.kubernetes.io/proxy-read-timeout')}/"
              f"{annotations.get('nginx.ingress.kubernetes.io/proxy-send-timeout')} s, body {body} = "
              f"--max-update-bytes {max_update}")
    return image, grace, drain
