"""Deploy/kubernetes/ha/: several coordinator replicas on one PostgreSQL store (rondo-ha.yaml) and the database they
share (postgres-cnpg.yaml, a CloudNativePG Cluster). Besides what every rondo pod needs (kubernetes.check_pod), the
invariants of a replicated federation that can be read from the manifests:

- at least two replicas, each with its own data directory (an emptyDir or ephemeral volume, never a shared claim);
- `serve --store postgres://…` without a password in the URL, the password from a file on a Secret volume, never in
  the arguments or a literal environment value; every `$(VAR)` in the arguments defined in the container's env;
- --advertise-url naming the pod itself (a per-pod variable such as status.podIP), so standbys name the leader;
- the admin, enrolment and metrics tokens from Secrets (files or secretKeyRef), the same on every replica;
- readiness on /readyz (only the leader is Ready, so the Service routes to it) and liveness on /healthz (which a
  standby answers); a rollout strategy that replaces every pod at once, since a standby never becomes Ready;
- a PodDisruptionBudget selecting the pods that allows fewer than all of them, with unhealthyPodEvictionPolicy
  AlwaysAllow (standbys are never Ready);
- pod anti-affinity across nodes (kubernetes.io/hostname) selecting the pods themselves;
- a Service selecting the pods without publishing unready ones, and a PodMonitor scraping every replica (standbys
  and a draining leader too: RondoNoLeader needs them) with the ServiceMonitor's release label and metrics token;
- the image and --max-update-bytes equal to rondo.yaml's (the Ingress fronts either);
- the CloudNativePG Cluster, when present: more than one instance, a pinned image, and --store pointing at its
  `<name>-rw` Service as the owner of its database, with the password from `<name>-app` and, for verify-full, the CA
  from `<name>-ca`.
"""
import re
import urllib.parse

from .facts import drain_seconds, flag
from .kubernetes import check_pod, one, volume_holding

TOKENS = {"admin": "RONDO_ADMIN_TOKEN", "enrolment": "RONDO_ENROLMENT_TOKEN", "metrics": "RONDO_METRICS_TOKEN"}


def labels_select(selector, labels):
    """Whether a matchLabels selector selects LABELS (an empty selector selects nothing here)."""
    match = (selector or {}).get("matchLabels") or {}
    return bool(match) and match.items() <= (labels or {}).items()


def secret_file(pod, container, path):
    """(secret name, key) of the Secret that provides the file PATH through a secret or projected volume, else None."""
    volume = volume_holding(pod, container, path)
    mount = max((m["mountPath"] for m in container.get("volumeMounts", [])
                 if path.startswith(m["mountPath"].rstrip("/") + "/")), key=len, default="")
    relative = path[len(mount.rstrip("/")) + 1:]
    sources = []
    if "secret" in volume:
        sources.append((volume["secret"].get("secretName"), volume["secret"].get("items")))
    for source in (volume.get("projected") or {}).get("sources") or []:
        if "secret" in source:
            sources.append((source["secret"].get("name"), source["secret"].get("items")))
    for name, items in sources:
        if items is None and relative and "/" not in relative:
            return name, relative  # every key of the secret is a file named after it
        for item in items or []:
            if item.get("path") == relative:
                return name, item.get("key")
    return None


def env_secret(container, variable):
    """(secret, key, optional) when the env VARIABLE comes from a secretKeyRef, else None."""
    for entry in container.get("env") or []:
        if entry.get("name") == variable:
            reference = (entry.get("valueFrom") or {}).get("secretKeyRef")
            if reference:
                return reference.get("name"), reference.get("key"), reference.get("optional", False)
    return None


def check_kubernetes_ha(report, documents, single, known, uid, gid, image):
    """Returns (grace seconds, drain seconds), or (None, None) when there is no ha/ directory."""
    if not documents:
        report.skip("kubernetes/ha: no replicated deployment (Deploy/kubernetes/ha/) to check")
        return None, None
    deployment = one(documents, "Deployment")
    name = f"kubernetes/ha: Deployment {deployment['metadata']['name']}"
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"].get("labels") or {}
    container = next(c for c in pod["containers"] if c["name"] == "rondo")
    report.check(check_pod(report, name, pod, container, known, uid, gid) == image,
                 f"{name}: the image must be rondo.yaml's ({image})")

    # Replicas, rollout, probes.
    replicas = spec.get("replicas", 1)
    report.check(replicas >= 2, f"{name}: replicas {replicas}: a replicated federation needs at least 2")
    report.check(labels_select(spec.get("selector"), pod_labels), f"{name}: its selector does not select its pods")
    strategy = spec.get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    unavailable = str(rolling.get("maxUnavailable", ""))
    all_at_once = strategy.get("type") == "Recreate" or (
        strategy.get("type", "RollingUpdate") == "RollingUpdate" and str(rolling.get("maxSurge", "")) == "0"
        and (unavailable == "100%" or (unavailable.isdigit() and int(unavailable) >= replicas)))
    report.check(all_at_once, f"{name}: a standby never becomes Ready, so a rolling update that waits for Ready pods "
                 "never ends: use Recreate or RollingUpdate with maxSurge 0 and maxUnavailable 100%")

    def probe_path(kind):
        return ((container.get(kind) or {}).get("httpGet") or {}).get("path")

    report.check(probe_path("readinessProbe") == "/readyz",
                 f"{name}: readinessProbe must GET /readyz (200 on the leader only, so the Service routes to it)")
    report.check(probe_path("livenessProbe") == "/healthz",
                 f"{name}: livenessProbe must GET /healthz (a standby answers /readyz 503 and would be restarted "
                 "forever)")
    report.ok(f"{name}: {replicas} replicas, rollout replaces every pod at once, readiness /readyz, liveness /healthz")

    # The store, the password, the data directory, the advertised URL.
    arguments = [str(argument) for argument in container.get("args", [])]
    environment = {entry.get("name"): entry for entry in container.get("env") or []}
    report.check(arguments[:1] == ["serve"], f"{name}: the container must run `serve` (args {arguments[:1]})")
    store = flag(arguments, "--store") or (environment.get("RONDO_STORE") or {}).get("value") or ""
    parsed = urllib.parse.urlsplit(store)
    report.check(parsed.scheme in ("postgres", "postgresql") and parsed.hostname,
                 f"{name}: replicas need --store postgres://USER@HOST:PORT/DB (or env RONDO_STORE); found {store!r}")
    report.check(parsed.password is None, f"{name}: --store must not carry the password (`ps` and the pod spec show "
                 "it): give --store-password-file")
    password_file = flag(arguments, "--store-password-file")
    password_secret = password_file and secret_file(pod, container, password_file)
    report.check(password_secret, f"{name}: --store-password-file {password_file} must be a file of a Secret volume")
    report.check("value" not in environment.get("RONDO_STORE_PASSWORD", {}),
                 f"{name}: RONDO_STORE_PASSWORD must not be a literal value in the manifest")
    data_dir = flag(arguments, "--data-dir") or ""
    data_volume = volume_holding(pod, container, data_dir)
    report.check("emptyDir" in data_volume or "ephemeral" in data_volume,
                 f"{name}: --data-dir {data_dir} must lie in a per-pod volume (emptyDir or ephemeral): replicas share "
                 "the store, never a data directory")
    advertise = flag(arguments, "--advertise-url") or ""
    report.check(advertise, f"{name}: --advertise-url is needed: standbys name the leader by it (the default is "
                 "the listener, 0.0.0.0)")
    for variable in re.findall(r"\$\((\w+)\)", " ".join(arguments)):
        report.check(variable in environment, f"{name}: $({variable}) in the arguments is not in the container's env "
                     "(Kubernetes would pass it literally)")
    per_pod = [variable for variable in re.findall(r"\$\((\w+)\)", advertise)
               if ((environment.get(variable) or {}).get("valueFrom") or {}).get("fieldRef")]
    report.check(per_pod, f"{name}: --advertise-url {advertise} must name the pod itself (a variable from a fieldRef "
                 "such as status.podIP)")
    report.ok(f"{name}: --store {store}, password from {password_file} (secret {password_secret and password_secret[0]})"
              f", --data-dir {data_dir} per pod, --advertise-url {advertise}")

    # Tokens: the same on every replica, so from Secrets.
    token_secrets = {}
    for token, variable in TOKENS.items():
        if token == "enrolment" and "--open-enrolment" in arguments:
            continue
        path = flag(arguments, f"--{token}-token-file")
        source = secret_file(pod, container, path) if path else None
        from_env = env_secret(container, variable)
        if from_env and not from_env[2]:
            source = from_env[:2]
        report.check(source, f"{name}: the {token} token must come from a Secret (--{token}-token-file on a secret "
                     f"volume, or {variable} from a non-optional secretKeyRef): a generated one differs per replica")
        token_secrets[token] = source
    report.ok(f"{name}: tokens from secrets {sorted({s[0] for s in token_secrets.values() if s})}")

    # Anti-affinity across nodes.
    anti = (pod.get("affinity") or {}).get("podAntiAffinity") or {}
    terms = list(anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []) + [
        term.get("podAffinityTerm") or {} for term in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
    report.check(any(term.get("topologyKey") == "kubernetes.io/hostname"
                     and labels_select(term.get("labelSelector"), pod_labels) for term in terms),
                 f"{name}: needs pod anti-affinity on kubernetes.io/hostname selecting its own pods")

    # Disruption budget.
    budgets = [d for d in documents if d["kind"] == "PodDisruptionBudget"
               and labels_select(d["spec"].get("selector"), pod_labels)]
    report.check(len(budgets) == 1, f"{name}: needs one PodDisruptionBudget selecting its pods, found {len(budgets)}")
    if budgets:
        budget = budgets[0]["spec"]
        minimum, maximum = budget.get("minAvailable"), budget.get("maxUnavailable")
        report.check((isinstance(minimum, int) and 1 <= minimum < replicas)
                     or (isinstance(maximum, int) and 1 <= maximum < replicas),
                     f"{name}: the PodDisruptionBudget must keep one pod and allow evicting the others "
                     f"(minAvailable {minimum}, maxUnavailable {maximum}, replicas {replicas})")
        report.check(budget.get("unhealthyPodEvictionPolicy") == "AlwaysAllow",
                     f"{name}: the PodDisruptionBudget needs unhealthyPodEvictionPolicy AlwaysAllow (standbys are never "
                     "Ready; otherwise they can only be evicted while the leader is)")
    report.ok(f"{name}: anti-affinity across nodes, PodDisruptionBudget {budgets and budgets[0]['spec']}")

    # Service and monitoring.
    service = one(documents, "Service")
    report.check(service["spec"].get("selector", {}).items() <= pod_labels.items() and service["spec"].get("selector"),
                 "kubernetes/ha: the Service's selector does not select the replicas")
    report.check(not service["spec"].get("publishNotReadyAddresses"),
                 "kubernetes/ha: the Service must not publish unready pods: standbys would get traffic")
    monitor = one(documents, "PodMonitor")
    release = (monitor["metadata"].get("labels") or {}).get("release")
    rule = one(single, "PrometheusRule")
    report.check(release and release == (rule["metadata"].get("labels") or {}).get("release"),
                 f"kubernetes/ha: the PodMonitor's `release` label {release!r} must equal the PrometheusRule's")
    report.check(labels_select(monitor["spec"].get("selector"), pod_labels),
                 "kubernetes/ha: the PodMonitor does not select the replicas")
    ports = {port.get("name") for port in container.get("ports") or []}
    endpoints = monitor["spec"].get("podMetricsEndpoints") or []
    report.check(endpoints and all(endpoint.get("port") in ports for endpoint in endpoints),
                 "kubernetes/ha: the PodMonitor scrapes a port the container does not name")
    metrics_secret = token_secrets.get("metrics")
    for endpoint in endpoints:
        credentials = (endpoint.get("authorization") or {}).get("credentials") or {}
        report.check(metrics_secret and (credentials.get("name"), credentials.get("key")) == tuple(metrics_secret),
                     f"kubernetes/ha: the PodMonitor must send the metrics token the replicas use {metrics_secret}, "
                     f"not {credentials}")
    single_deployment = one(single, "Deployment")
    single_arguments = [str(a) for a in next(c for c in single_deployment["spec"]["template"]["spec"]["containers"]
                                             if c["name"] == "rondo").get("args", [])]
    report.check(flag(arguments, "--max-update-bytes") == flag(single_arguments, "--max-update-bytes"),
                 "kubernetes/ha: --max-update-bytes must equal rondo.yaml's (ingress/ingress-nginx.yaml's "
                 "proxy-body-size is checked against that)")
    report.ok(f"kubernetes/ha: Service routes to Ready pods only; PodMonitor scrapes every replica, release={release}")

    # The database, when this directory runs it.
    clusters = [d for d in documents if d["kind"] == "Cluster" and d["apiVersion"].startswith("postgresql.cnpg.io/")]
    if not clusters:
        report.skip("kubernetes/ha: no CloudNativePG Cluster: the store is an external database")
    for cluster in clusters:
        cname, cspec = cluster["metadata"]["name"], cluster["spec"]
        what = f"kubernetes/ha: Cluster {cname}"
        report.check(cspec.get("instances", 1) >= 2,
                     f"{what}: instances {cspec.get('instances', 1)}: one PostgreSQL instance is the single point of "
                     "failure the replicas are there to avoid")
        image_name = cspec.get("imageName", "")
        tag = image_name.rpartition(":")[2] if ":" in image_name.rsplit("/", 1)[-1] else ""
        report.check("@sha256:" in image_name or re.match(r"\d+\.\d+", tag),
                     f"{what}: imageName {image_name!r} must be pinned to a PostgreSQL release (major.minor) or digest")
        initdb = (cspec.get("bootstrap") or {}).get("initdb") or {}
        host = parsed.hostname or ""
        report.check(host == f"{cname}-rw" or host.startswith(f"{cname}-rw."),
                     f"{what}: --store must connect to its primary's Service {cname}-rw, not {host}")
        report.check(parsed.username == initdb.get("owner") and parsed.path.lstrip("/") == initdb.get("database"),
                     f"{what}: --store's user and database ({parsed.username}, {parsed.path.lstrip('/')}) must be "
                     f"bootstrap.initdb's owner and database ({initdb.get('owner')}, {initdb.get('database')})")
        report.check(password_secret and tuple(password_secret) == (f"{cname}-app", "password"),
                     f"{what}: the password must be the generated secret {cname}-app's key password, not "
                     f"{password_secret}")
        query = dict(urllib.parse.parse_qsl(parsed.query))
        if query.get("sslmode") == "verify-full" and query.get("sslrootcert"):
            ca = secret_file(pod, container, query["sslrootcert"])
            report.check(ca and tuple(ca) == (f"{cname}-ca", "ca.crt"),
                         f"{what}: sslrootcert must be the generated secret {cname}-ca's ca.crt, not {ca}")
        report.ok(f"{what}: {cspec.get('instances')} instances, {image_name}, --store {parsed.username}@{host}/"
                  f"{parsed.path.lstrip('/')} with {cname}-app's password, sslmode {query.get('sslmode', 'disable')}")

    return pod.get("terminationGracePeriodSeconds"), drain_seconds(arguments, known)
