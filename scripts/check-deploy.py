#!/usr/bin/env python3
"""What Deploy/ ships, checked without a container engine, Kubernetes or a running systemd.

Usage: check-deploy.py BIN_DIR        (make test passes .build/debug: the rondo binary and its *.resources bundles)

1. The image's contents (Deploy/Dockerfile). Its base images must be pinned (a version or date tag or a digest, never
   :latest), every COPY source of the build stage must exist and pass Deploy/Dockerfile.dockerignore, and the runtime
   user must be numeric. Then the Dockerfile's own steps are replayed: the build stage's RUN steps that write the
   directory the runtime stage copies from (`/out`) run under /bin/sh with that directory moved into a temporary
   staging area and `swift` replaced by a stand-in that skips the compile and answers `--show-bin-path` with BIN_DIR,
   and every `COPY --from=build` of the runtime stage is applied with Docker's rules to an empty root. The result
   holds only what the image would: /usr/local/bin/rondo and whatever the steps copied next to it.
   The test uses the debug build; the image is built with `-c release --static-swift-stdlib`. Only the file layout is
   the image's: what the copy steps take from the bin path and where they put it.
   A SwiftPM binary finds its resource bundles next to itself, else at the absolute build path compiled into it, which
   exists on this machine but not in the image. So the staged binary's copy of that path is overwritten with a path of
   the same length that does not exist (the strings are the accessor's fallback and nothing else), which is the
   image's situation. Then, run from the staged root:
     - `rondo serve --demo-model` must serve GET /healthz and GET /v1/openapi.yaml, byte-equal to
       Sources/Coordinator/Resources/openapi.yaml (Rondo_Coordinator.resources), and stop on SIGTERM with status 0;
     - `rondo demo --clients 3 --rounds 2` (the digits data: Rondo_DemoFederation.resources) must commit 2 rounds.
   A control run proves the check can fail: the same staged root without its *.resources bundles must NOT serve the
   document and its demo must fail; if it did, the build path was not hidden and the check would prove nothing.
   Every bundle the binary names must be in the staged directory, and every shared library the binary links beyond
   the Swift runtime (static in the image), glibc, libstdc++ and libgcc_s must come from a Debian package that the
   runtime stage installs (`dpkg -S` on this machine; skipped with a note without dpkg).
2. Deploy/compose.yaml: parses; images pinned; the rondo image tag equals the Kubernetes one; the rondo service is
   confined like the pod (read-only root, /tmp tmpfs, no capabilities); bind-mounted files exist; Alertmanager's
   receivers post to a service of the stack on the port it listens on, and that receiver (compose/alert-logger.py)
   really logs an Alertmanager payload when started here; `amtool check-config` when amtool is installed.
3. Deploy/kubernetes/ (and ingress/): every document parses and names its apiVersion, kind and name; the Deployment
   runs as the image's user, non-root, read-only root with an emptyDir /tmp, no privilege escalation, all
   capabilities dropped, RuntimeDefault seccomp, fsGroup, no service links (they would inject RONDO_PORT), resource
   requests and a memory limit, an image tag equal to the binary's version; the ServiceMonitor and PrometheusRule carry
   the same `release` label; the Ingress points at the Service, its proxy timeouts stay above the long-poll (60 s) and
   at least 75 s, and its proxy-body-size equals the Deployment's --max-update-bytes.
   Deploy/kubernetes/ha/ (replicas on PostgreSQL, instead of rondo.yaml): the same pod hardening and image, plus what
   a replicated federation needs (scripts/deploy_checks/kubernetes_ha.py lists it): 2+ replicas, --store postgres://
   with the password from a Secret file, a per-pod data directory, --advertise-url naming the pod, tokens from
   Secrets, readiness /readyz and liveness /healthz, a rollout that replaces every pod at once, a PodDisruptionBudget
   and anti-affinity selecting the pods, a PodMonitor scraping every replica, and --store matching the CloudNativePG
   Cluster and the secrets it generates.
4. Deploy/systemd/: ExecStart runs the binary where the image puts it (/usr/local/bin/rondo), as the user
   rondo.sysusers.conf creates (not DynamicUser), with --data-dir the StateDirectory= path and WorkingDirectory=; the
   hardening settings are present; `systemd-analyze verify` passes on the unit placed in the staged root next to this
   machine's system units, and `systemd-analyze security --offline` scores it at most 2.0 (both skipped with a note
   when systemd-analyze is missing).
5. Shutdown timing: the drain each command line implies (--drain-timeout, else --fit-timeout + --evaluate-timeout,
   defaults read from Sources/rondo/ServeCommand.swift) must be at least 15 s below the Kubernetes grace period, the
   systemd TimeoutStopSec, the compose stop_grace_period, the `docker run --stop-timeout` the Dockerfile shows and
   the replicated Deployment's grace period, and those must be equal ("Shutdown and drain" in Deploy/kubernetes/rondo.yaml explains them).
Prints one line per check and a summary; exits non-zero on any failure. Temporary files are removed and every
process started is stopped.
"""
import os
import re
import resource
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the deploy_checks package next to this script

from deploy_checks.compose import check_compose
from deploy_checks.dockerfile import check_dockerfile, dockerfile_stages
from deploy_checks.facts import facts
from deploy_checks.image import (
    bundle_references,
    check_libraries,
    hide_build_path,
    stage_image,
)
from deploy_checks.kubernetes import HA, check_kubernetes, kubernetes_documents
from deploy_checks.kubernetes_ha import check_kubernetes_ha
from deploy_checks.paths import DOCKERFILE
from deploy_checks.report import Failure, Report
from deploy_checks.staged import run_control, run_staged
from deploy_checks.systemd import check_systemd

DRAIN_MARGIN = 15  # seconds every stop timeout must leave after the drain


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    bin_dir = sys.argv[1]
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the control runs crash on purpose: no core files
    report = Report()
    work = tempfile.mkdtemp(prefix="rondo-check-deploy-")
    try:
        if not os.access(os.path.join(bin_dir, "rondo"), os.X_OK):
            raise Failure(f"no rondo binary in {bin_dir}")
        known = facts()
        stages = dockerfile_stages(DOCKERFILE)
        build, _, copies_from, uid, gid, entrypoint, apt = check_dockerfile(report, stages)
        staged_root = stage_image(report, build, copies_from, bin_dir, work)
        staged_binary = staged_root + entrypoint
        if not os.access(staged_binary, os.X_OK):
            raise Failure(f"the image has no executable {entrypoint} (its ENTRYPOINT)")
        fallbacks, bundles = bundle_references(staged_binary)
        staged_dir = os.path.dirname(staged_binary)
        missing = sorted(bundle for bundle in bundles if not os.path.isdir(os.path.join(staged_dir, bundle)))
        report.check(bundles and not missing, f"image: {os.path.dirname(entrypoint)} lacks the bundles the binary "
                     f"names: {missing or 'none found in the binary'}")
        report.ok(f"image: the binary names {sorted(bundles)}; all are in {os.path.dirname(entrypoint)}")
        check_libraries(report, staged_binary, apt)
        report.check(fallbacks and hide_build_path(staged_binary, fallbacks),
                     f"image: could not hide the compiled-in build path(s) {sorted(fallbacks)}")
        report.ok("image: the compiled-in fallback " + ", ".join(f.decode() for f in sorted(fallbacks))
                  + " is replaced by a path that does not exist, as in the image")
        run_staged(report, staged_binary, work)
        run_control(report, staged_root, entrypoint, work)

        documents = kubernetes_documents(report)
        image, kubernetes_grace, kubernetes_drain = check_kubernetes(report, documents, known, uid, gid)
        ha_grace, ha_drain = check_kubernetes_ha(report, kubernetes_documents(report, HA), documents, known, uid,
                                                 gid, image)
        compose_grace, compose_drain = check_compose(report, known, image)
        systemd_grace, systemd_drain = check_systemd(report, known, staged_root, entrypoint)
        graces = {"Kubernetes terminationGracePeriodSeconds": (kubernetes_grace, kubernetes_drain),
                  "compose stop_grace_period": (compose_grace, compose_drain),
                  "systemd TimeoutStopSec": (systemd_grace, systemd_drain)}
        if ha_drain is not None:
            graces["Kubernetes (replicated) terminationGracePeriodSeconds"] = (ha_grace, ha_drain)
        with open(DOCKERFILE, encoding="utf-8") as handle:
            docker_run = re.search(r"docker run --stop-timeout (\d+)", handle.read())
        report.check(docker_run, "shutdown: the Dockerfile's `docker run` line must give --stop-timeout (docker's "
                     "default, 10 s, cuts the drain short)")
        if docker_run:
            graces["Dockerfile's docker run --stop-timeout"] = (float(docker_run.group(1)), kubernetes_drain)
        for name, (grace, drain) in graces.items():
            report.check(grace is not None and grace >= drain + DRAIN_MARGIN,
                         f"shutdown: {name} {grace} s must be at least {DRAIN_MARGIN} s above the drain its command "
                         f"line implies ({drain:.0f} s)")
        report.check(len({grace for grace, _ in graces.values()}) == 1,
                     f"shutdown: the stop timeouts differ: {graces}")
        report.ok("shutdown: " + ", ".join(f"{name} {grace:g} s (drain {drain:g} s)"
                                           for name, (grace, drain) in graces.items()))
    except Failure as failure:
        report.failures.append(str(failure))
        print(f"FAIL {failure}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    skipped = f", {len(report.skipped)} skipped" if report.skipped else ""
    if report.failures:
        print(f"check-deploy: {len(report.failures)} FAILED, {report.passed} passed{skipped}")
        sys.exit(1)
    print(f"check-deploy: all {report.passed} checks passed{skipped}")


if __name__ == "__main__":
    main()
