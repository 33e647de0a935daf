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
4. Deploy/systemd/: ExecStart runs the binary where the image puts it (/usr/local/bin/rondo), as the user
   rondo.sysusers.conf creates (not DynamicUser), with --data-dir the StateDirectory= path and WorkingDirectory=; the
   hardening settings are present; `systemd-analyze verify` passes on the unit placed in the staged root next to this
   machine's system units, and `systemd-analyze security --offline` scores it at most 2.0 (both skipped with a note
   when systemd-analyze is missing).
5. Shutdown timing: the drain each command line implies (--drain-timeout, else --fit-timeout + --evaluate-timeout,
   defaults read from Sources/rondo/ServeCommand.swift) must be at least 15 s below the Kubernetes grace period, the
   systemd TimeoutStopSec, the compose stop_grace_period and the `docker run --stop-timeout` the Dockerfile shows,
   and those must be equal ("Shutdown and drain" in Deploy/kubernetes/rondo.yaml explains them).
Prints one line per check and a summary; exits non-zero on any failure. Temporary files are removed and every
process started is stopped.
"""
import contextlib
import glob
import json
import os
import queue
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(ROOT, "Deploy")
DOCKERFILE = os.path.join(DEPLOY, "Dockerfile")
DOCKERIGNORE = os.path.join(DEPLOY, "Dockerfile.dockerignore")
COMPOSE = os.path.join(DEPLOY, "compose.yaml")
KUBERNETES = os.path.join(DEPLOY, "kubernetes")
UNIT = os.path.join(DEPLOY, "systemd", "rondo.service")
SYSUSERS = os.path.join(DEPLOY, "systemd", "rondo.sysusers.conf")
OPENAPI = os.path.join(ROOT, "Sources", "Coordinator", "Resources", "openapi.yaml")
SERVE_SOURCE = os.path.join(ROOT, "Sources", "rondo", "ServeCommand.swift")
CONFIGURATION_SOURCE = os.path.join(ROOT, "Sources", "Coordinator", "CoordinatorConfiguration.swift")
VERSION_SOURCE = os.path.join(ROOT, "Sources", "FederationTelemetry", "RondoBuild.swift")
DRAIN_MARGIN = 15  # seconds every stop timeout must leave after the drain
SECURITY_THRESHOLD = 2.0  # highest `systemd-analyze security` exposure accepted
INGRESS_MIN_TIMEOUT = 75
# Libraries every Debian image has (glibc, the C++ runtime the Swift runtime links, libgcc_s).
BASE_LIBRARIES = re.compile(r"^(libc|libm|libdl|libpthread|librt|libutil|ld-linux[-\w]*|libstdc\+\+|libgcc_s)\.so")
UNIT_HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
    "PrivateDevices": "yes", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "SystemCallFilter": "@system-service", "CapabilityBoundingSet": "", "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes", "RestrictNamespaces": "yes", "RestrictSUIDSGID": "yes",
    "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectControlGroups": "yes",
    "UMask": "0077", "StateDirectoryMode": "0700",
}


class Failure(Exception):
    """A check failed; the message says which."""


class Report:
    """One `ok` line per group of checks that all passed, a `FAIL` line per failed check, `skip` lines."""

    def __init__(self):
        self.failures = []
        self.passed = 0
        self.skipped = []
        self.mark = 0

    def check(self, condition, message):
        if not condition:
            self.failures.append(message)
            print(f"FAIL {message}", flush=True)
        return condition

    def ok(self, message):
        """Prints MESSAGE when no check failed since the previous ok()."""
        if len(self.failures) == self.mark:
            self.passed += 1
            print(f"ok   {message}", flush=True)
        self.mark = len(self.failures)

    def skip(self, message):
        self.skipped.append(message)
        print(f"skip {message}", flush=True)


# ---------------------------------------------------------------------------------------------------------------------
# Facts read from the sources (never changed here)


def swift_default(pattern, path, what):
    """A default value matched in a Swift source; a changed source fails loudly instead of being guessed."""
    with open(path, encoding="utf-8") as handle:
        match = re.search(pattern, handle.read())
    if not match:
        raise Failure(f"cannot find {what} in {os.path.relpath(path, ROOT)} (pattern {pattern!r}); update this script")
    return match.group(1)


def integer_expression(text):
    """`512 << 20`, `536_870_912` or `1 << 30` as an int."""
    text = text.replace("_", "").strip()
    shifted = re.fullmatch(r"(\d+)\s*<<\s*(\d+)", text)
    return int(shifted.group(1)) << int(shifted.group(2)) if shifted else int(text)


def facts():
    return {
        "fit": float(swift_default(r"var fitTimeout = ([\d.]+)", SERVE_SOURCE, "the --fit-timeout default")),
        "evaluate": float(swift_default(r"var evaluateTimeout = ([\d.]+)", SERVE_SOURCE,
                                        "the --evaluate-timeout default")),
        "max_update_bytes": integer_expression(swift_default(r"maxUpdateBytes: Int = ([\d_ <]+?)[,)]",
                                                             CONFIGURATION_SOURCE, "the maxUpdateBytes default")),
        "long_poll": float(swift_default(r"maxLongPoll: Duration = \.seconds\(([\d.]+)\)", CONFIGURATION_SOURCE,
                                         "the maxLongPoll default")),
        "version": swift_default(r'static let version = "([^"]+)"', VERSION_SOURCE, "RondoBuild.version"),
    }


def flag(arguments, name):
    """The value of `--name V` or `--name=V` in an argument list, else None."""
    for index, argument in enumerate(arguments):
        if argument == name and index + 1 < len(arguments):
            return arguments[index + 1]
        if argument.startswith(name + "="):
            return argument.split("=", 1)[1]
    return None


def drain_seconds(arguments, known):
    """The drain `rondo serve ARGUMENTS` implies: --drain-timeout, else its fit plus evaluate timeouts."""
    explicit = flag(arguments, "--drain-timeout")
    if explicit is not None:
        return float(explicit)
    return float(flag(arguments, "--fit-timeout") or known["fit"]) + float(
        flag(arguments, "--evaluate-timeout") or known["evaluate"])


def duration_seconds(text):
    """A compose (Go) or systemd duration: 210, "210s", "3m30s", "3min 30s"."""
    text = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    units = {"h": 3600, "hour": 3600, "m": 60, "min": 60, "s": 1, "sec": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", text)
    if not parts or re.sub(r"[\d.\sa-z]", "", text) or any(unit not in units for _, unit in parts):
        raise Failure(f"cannot read the duration {text!r}")
    return sum(float(value) * units[unit] for value, unit in parts)


def pinned(image):
    """Whether an image reference is pinned: a digest, or a tag carrying a full version or a date (not latest)."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag or tag == "latest":
        return False
    return bool(re.search(r"\d+\.\d+\.\d+|\d{8}", tag))


# ---------------------------------------------------------------------------------------------------------------------
# Dockerfile


def dockerfile_instructions(path):
    """(INSTRUCTION, arguments) in order, with continuation lines joined and comment lines dropped."""
    instructions, pending = [], ""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            stripped = line.strip()
            if stripped.startswith("#") or (not stripped and not pending):
                continue
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            pending += stripped
            word, _, rest = pending.partition(" ")
            instructions.append((word.upper(), rest.strip()))
            pending = ""
    if pending:
        raise Failure("Dockerfile ends inside a continued line")
    return instructions


def dockerfile_stages(path):
    stages = []
    for instruction, arguments in dockerfile_instructions(path):
        if instruction == "FROM":
            words = [word for word in arguments.split() if not word.startswith("--")]
            stages.append({"image": words[0], "name": words[2] if len(words) > 2 and words[1].lower() == "as"
                           else str(len(stages)), "steps": []})
        elif not stages:
            raise Failure(f"Dockerfile: {instruction} before the first FROM")
        else:
            stages[-1]["steps"].append((instruction, arguments))
    return stages


def copy_arguments(arguments):
    """(flags, sources, destination) of a COPY in shell or JSON form."""
    words = arguments.split()
    flags = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    rest = " ".join(words)
    paths = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    if len(paths) < 2:
        raise Failure(f"COPY {arguments}: needs a source and a destination")
    return flags, paths[:-1], paths[-1]


def dockerignore_allows(relative, patterns):
    """Docker's rule: the last matching pattern decides; `!` lets a path through; a parent's match covers it."""
    import fnmatch
    allowed = True
    parts = relative.split("/")
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        body = body.strip("/")
        for depth in range(1, len(parts) + 1):
            if fnmatch.fnmatchcase("/".join(parts[:depth]), body):
                allowed = negated
                break
    return allowed


def check_dockerfile(report, stages):
    """Static checks; returns (build stage, runtime stage, runtime uid, runtime gid, entrypoint)."""
    for stage in stages:
        report.check(pinned(stage["image"]), f"Dockerfile: base image {stage['image']} is not pinned "
                     "(use a version or date tag, e.g. swift:6.3.1-bookworm, or a digest)")
    report.ok("Dockerfile: base images pinned: " + ", ".join(stage["image"] for stage in stages))
    runtime = stages[-1]
    copies_from = [copy_arguments(arguments) for instruction, arguments in runtime["steps"]
                   if instruction == "COPY" and "--from=" in arguments]
    sources = {flags["from"] for flags, _, _ in copies_from}
    if len(sources) != 1:
        raise Failure(f"Dockerfile: the runtime stage must copy from exactly one build stage (found {sources})")
    build = next((stage for stage in stages if stage["name"] == sources.pop()), None)
    if build is None:
        raise Failure("Dockerfile: the runtime stage copies from a stage that does not exist")
    patterns = []
    if os.path.exists(DOCKERIGNORE):
        with open(DOCKERIGNORE, encoding="utf-8") as handle:
            patterns = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    for stage in stages:
        for instruction, arguments in stage["steps"]:
            if instruction not in ("COPY", "ADD") or "--from=" in arguments:
                continue
            _, paths, _ = copy_arguments(arguments)
            for source in paths:
                wildcard = any(character in source for character in "*?[")
                matches = glob.glob(os.path.join(ROOT, source))
                report.check(matches or wildcard, f"Dockerfile: COPY source {source} does not exist in the repository")
                for match in matches:
                    relative = os.path.relpath(match, ROOT)
                    report.check(dockerignore_allows(relative, patterns), f"Dockerfile: COPY source {relative} is "
                                 f"excluded by {os.path.relpath(DOCKERIGNORE, ROOT)}")
    report.ok("Dockerfile: build-stage COPY sources exist and pass the dockerignore file")
    user = [arguments for instruction, arguments in runtime["steps"] if instruction == "USER"]
    match = re.fullmatch(r"(\d+)(?::(\d+))?", user[-1]) if user else None
    if not match:
        raise Failure(f"Dockerfile: the runtime stage needs a numeric USER uid:gid (found {user[-1:] or 'none'}); "
                      "Kubernetes can check runAsNonRoot only against a numeric user")
    uid, gid = int(match.group(1)), int(match.group(2) or match.group(1))
    report.check(uid != 0, "Dockerfile: the runtime user is root")
    entrypoint = [json.loads(arguments) for instruction, arguments in runtime["steps"] if instruction == "ENTRYPOINT"]
    if not entrypoint or not isinstance(entrypoint[-1], list):
        raise Failure("Dockerfile: the runtime stage needs an ENTRYPOINT in JSON form")
    report.ok(f"Dockerfile: runtime user {uid}:{gid}, entrypoint {entrypoint[-1][0]}")
    apt = set()
    for instruction, arguments in runtime["steps"]:
        if instruction == "RUN":
            for install in re.findall(r"apt-get install ([^&;|]*)", arguments):
                apt.update(word for word in install.split() if not word.startswith("-"))
    return build, runtime, copies_from, uid, gid, entrypoint[-1][0], apt


def path_token(directory):
    """A regex for DIRECTORY used as a path in a shell command (not as a part of a longer path)."""
    return re.compile(r"(?<![\w./-])" + re.escape(directory) + r"(?=[/\s\"';&|)]|$)")


SWIFT_STAND_IN = r'''
swift() {
    case " $* " in
        *" -c release "*) ;;
        *) echo "check-deploy: the Dockerfile runs swift without -c release: swift $*" >&2; return 1 ;;
    esac
    case " $* " in
        *" --show-bin-path "*) printf '%s\n' "$CHECK_DEPLOY_BIN_DIR" ;;
        " build "*) echo "check-deploy: skipped (the prebuilt bin dir stands in for it): swift $*" >&2 ;;
        *) echo "check-deploy: unexpected swift command: swift $*" >&2; return 1 ;;
    esac
}
'''


def docker_copy(source, destination):
    """Docker's COPY for one source path: a directory's contents go into the destination, a file goes into it when
    the destination ends with / (else becomes it)."""
    if os.path.isdir(source):
        shutil.copytree(source, destination, symlinks=True, dirs_exist_ok=True)
    else:
        target = os.path.join(destination, os.path.basename(source)) if destination.endswith("/") else destination
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)


def stage_image(report, build, copies_from, bin_dir, work):
    """Replays the build stage's output steps and the runtime stage's COPY --from; returns the staged root."""
    build_fs = os.path.join(work, "build-stage")
    staged_root = os.path.join(work, "image-root")
    os.makedirs(build_fs)
    os.makedirs(staged_root)
    output_dirs = set()
    for _, sources, _ in copies_from:
        for source in sources:
            if not source.startswith("/"):
                raise Failure(f"Dockerfile: COPY --from source {source} must be absolute")
            output_dirs.add("/" + source.strip("/").split("/")[0])
    replayed = 0
    for instruction, arguments in build["steps"]:
        if instruction != "RUN" or not any(path_token(directory).search(arguments) for directory in output_dirs):
            continue
        if arguments.startswith("["):
            raise Failure("Dockerfile: a RUN writing the output directory must use the shell form")
        command = arguments
        for directory in output_dirs:
            command = path_token(directory).sub(shlex.quote(build_fs + directory).replace("\\", "\\\\"), command)
        environment = dict(os.environ, CHECK_DEPLOY_BIN_DIR=os.path.abspath(bin_dir))
        result = subprocess.run(["/bin/sh", "-c", "set -e\n" + SWIFT_STAND_IN + command], cwd=work,
                                env=environment, capture_output=True, text=True, timeout=300)
        for line in result.stderr.splitlines():
            print(f"     {line}")
        if result.returncode != 0:
            raise Failure(f"Dockerfile: replaying the build stage's RUN failed (status {result.returncode}): "
                          f"{result.stderr.strip()[-400:]}")
        replayed += 1
    if not replayed:
        raise Failure(f"Dockerfile: no build-stage RUN writes {sorted(output_dirs)}, the runtime stage's source")
    for flags, sources, destination in copies_from:
        for source in sources:
            matches = glob.glob(build_fs + source.rstrip("/")) if source.rstrip("/") else [build_fs]
            if not matches:
                raise Failure(f"Dockerfile: COPY --from={flags['from']} {source}: not produced by the build stage's "
                              "output steps")
            for match in matches:
                docker_copy(match, staged_root + destination)
    report.ok(f"Dockerfile: replayed {replayed} build-stage RUN step(s) and {len(copies_from)} COPY --from; the image "
              f"root holds {sorted(os.path.relpath(p, staged_root) for p in glob.glob(staged_root + '/*/*/*/*'))}")
    return staged_root


def bundle_references(binary):
    """(fallback directories, bundle names) compiled into a SwiftPM binary's resource accessors."""
    with open(binary, "rb") as handle:
        data = handle.read()
    names = set(re.findall(rb"\x00([A-Za-z0-9_.-]+\.resources)(?=\x00)", data))
    fallbacks = set()
    for directory, name in re.findall(rb"\x00(/[\x21-\x7e]+?)/([A-Za-z0-9_.-]+\.resources)(?=\x00)", data):
        fallbacks.add(directory)
        names.add(name)
    return fallbacks, {name.decode() for name in names}


def hide_build_path(binary, fallbacks):
    """Overwrites each compiled-in fallback directory in BINARY with a path of the same length that does not exist."""
    with open(binary, "rb") as handle:
        data = handle.read()
    for directory in fallbacks:
        replacement = (b"/nonexistent-rondo-build-" + b"x" * len(directory))[:len(directory)]
        if os.path.exists(replacement):
            raise Failure(f"{replacement.decode()} exists; cannot hide the build path")
        data = data.replace(directory + b"/", replacement + b"/")
    with open(binary, "wb") as handle:
        handle.write(data)
    with open(binary, "rb") as handle:
        return not any(directory + b"/" in handle.read() for directory in fallbacks)


def check_libraries(report, binary, apt_packages):
    """Each shared library the binary needs beyond the Swift runtime, glibc, libstdc++ and libgcc_s must come from a
    package the runtime stage installs."""
    if not shutil.which("readelf") or not shutil.which("dpkg"):
        report.skip("shared libraries: readelf or dpkg missing, cannot map libraries to Debian packages")
        return
    dynamic = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
    runpath = [directory for found in re.findall(r"\((?:RUNPATH|RPATH)\)\s+Library r\w*path: \[([^\]]+)\]", dynamic)
               for directory in found.split(":") if directory.startswith("/")]
    swift_runtime = [name for name in needed if any(os.path.exists(os.path.join(d, name)) for d in runpath)]
    others = [name for name in needed if name not in swift_runtime and not BASE_LIBRARIES.match(name)]
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    for name in others:
        located = re.findall(r"^\s*" + re.escape(name) + r" \(([^)]*)\) => (\S+)", cache, re.MULTILINE)
        paths = [path for flags, path in located if "x86-64" in flags or "64bit" in flags or "AArch64" in flags]
        package = None
        for path in paths[:1] + [os.path.realpath(p) for p in paths[:1]]:
            for candidate in (path, "/usr" + path if not path.startswith("/usr/") else path[4:]):
                owner = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
                if owner.returncode == 0:
                    package = owner.stdout.split(":")[0].strip()
                    break
            if package:
                break
        if package is None:
            report.check(False, f"shared libraries: cannot find the Debian package of {name}")
            continue
        package = re.sub(r"t64$", "", package)  # Debian's 64-bit time_t renames (libcurl4t64) are the same library
        report.check(package in apt_packages, f"shared libraries: {name} comes from {package}, which the runtime "
                     f"stage does not install (it installs {sorted(apt_packages)})")
    report.ok(f"shared libraries: {', '.join(others)} come from runtime-stage packages; "
              f"{len(swift_runtime)} Swift runtime libraries are linked statically in the image")


# ---------------------------------------------------------------------------------------------------------------------
# Running the staged binary


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
    log = open(log_path, "wb")
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
        cwd=work, env=clean_environment(work), capture_output=True, text=True, timeout=600)
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
        cwd=work, env=clean_environment(work), capture_output=True, text=True, timeout=300)
    report.check(not served and demo.returncode != 0,
                 "control: the staged binary without its *.resources still served /v1/openapi.yaml or ran the demo, so "
                 "it reached the build directory and this check could not catch a missing bundle")
    report.ok("control: without its bundles the staged binary cannot serve /v1/openapi.yaml and its demo fails "
              f"(status {demo.returncode}), so the checks above can fail")


# ---------------------------------------------------------------------------------------------------------------------
# Kubernetes, compose, systemd


def kubernetes_documents(report):
    documents = []
    for path in sorted(glob.glob(os.path.join(KUBERNETES, "*.yaml")) + glob.glob(os.path.join(KUBERNETES, "*",
                                                                                                 "*.yaml"))):
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
                documents.append(document)
    report.ok(f"kubernetes: {len(documents)} documents parse: "
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


def check_kubernetes(report, documents, known, uid, gid):
    """Returns (image, grace seconds, drain seconds)."""
    deployment = one(documents, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "rondo")
    pod_security = pod.get("securityContext") or {}
    security = container.get("securityContext") or {}
    name = "kubernetes: Deployment rondo"

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
    arguments = [str(argument) for argument in container.get("args", [])]
    data_dir = flag(arguments, "--data-dir") or ""
    report.check(any(data_dir.startswith(path.rstrip("/") + "/") and "persistentVolumeClaim" in volumes.get(volume, {})
                     for path, volume in mounts.items()),
                 f"{name}: --data-dir {data_dir} must lie inside the PersistentVolumeClaim's mount")
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    report.check("cpu" in requests and "memory" in requests and "memory" in limits,
                 f"{name}: needs cpu and memory requests and a memory limit")
    image = container["image"]
    tag = image.rpartition(":")[2] if ":" in image.rsplit("/", 1)[-1] else ""
    report.check(tag and tag != "latest" and tag == known["version"],
                 f"{name}: image {image} must be tagged with the binary's version {known['version']} "
                 "(Sources/FederationTelemetry/RondoBuild.swift), never :latest")
    report.check(deployment["spec"].get("replicas") == 1 and
                 (deployment["spec"].get("strategy") or {}).get("type") == "Recreate",
                 f"{name}: one replica with the Recreate strategy (one writer of the SQLite file)")
    grace = pod.get("terminationGracePeriodSeconds")
    drain = drain_seconds(arguments, known)
    report.ok(f"{name}: uid {uid} non-root, read-only root + emptyDir /tmp, no escalation, caps dropped, "
              f"RuntimeDefault seccomp, fsGroup {gid}, no service links, requests {requests}, limits {limits}, "
              f"image {image}")

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
                                capture_output=True, text=True)
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


def unit_settings(path):
    """{(section, key): [values]} of a systemd unit, in order (lines ending in a backslash continue)."""
    settings, section, pending = {}, None, ""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not pending and (not line or line.startswith(("#", ";"))):
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line, pending = pending + line, ""
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            settings.setdefault((section, key.strip()), []).append(value.strip())
    return settings


def check_systemd(report, known, staged_root, entrypoint):
    """Returns (grace seconds, drain seconds)."""
    settings = unit_settings(UNIT)

    def value(key):
        return (settings.get(("Service", key)) or [None])[-1]

    arguments = shlex.split(value("ExecStart") or "")
    report.check(arguments[:1] == [entrypoint], f"systemd: ExecStart must run {entrypoint} (where the image and the "
                 f"unit's install steps put the binary), not {arguments[:1]}")
    with open(SYSUSERS, encoding="utf-8") as handle:
        users = [line.split()[1] for line in handle if line.split() and line.split()[0] == "u"]
    report.check(value("DynamicUser") in (None, "no", "false"), "systemd: DynamicUser would not match sysusers.d")
    report.check(value("User") in users and value("Group") in (value("User"), None),
                 f"systemd: User={value('User')} Group={value('Group')} must be the user {users} creates")
    state = "/var/lib/" + (value("StateDirectory") or "")
    report.check(flag(arguments, "--data-dir") == state == value("WorkingDirectory"),
                 f"systemd: --data-dir {flag(arguments, '--data-dir')}, StateDirectory= ({state}) and "
                 f"WorkingDirectory={value('WorkingDirectory')} must be the same directory")
    for key, expected in UNIT_HARDENING.items():
        report.check(value(key) == expected, f"systemd: {key}={value(key)}, expected {key}={expected}")
    report.ok(f"systemd: ExecStart {arguments[0]}, user {value('User')} from sysusers.d, data in {state}, "
              f"{len(UNIT_HARDENING)} hardening settings")
    if not shutil.which("systemd-analyze"):
        report.skip("systemd: systemd-analyze missing; `systemd-analyze verify` and `security` not run")
    else:
        units = os.path.join(staged_root, "etc", "systemd", "system")
        os.makedirs(units)
        shutil.copy(UNIT, units)
        system_units = next((d for d in ("/usr/lib/systemd/system", "/lib/systemd/system") if os.path.isdir(d)), None)
        if system_units:
            shutil.copytree(system_units, os.path.join(staged_root, "usr", "lib", "systemd", "system"), symlinks=True)
        name = os.path.basename(UNIT)
        verify = subprocess.run(["systemd-analyze", "verify", "--man=no", f"--root={staged_root}", name],
                                capture_output=True, text=True)
        report.check(verify.returncode == 0 and not verify.stdout.strip() and not verify.stderr.strip(),
                     f"systemd: systemd-analyze verify: {verify.stdout}{verify.stderr}")
        security = subprocess.run(["systemd-analyze", "security", "--offline=true", f"--root={staged_root}",
                                   f"--threshold={int(SECURITY_THRESHOLD * 10)}", "--no-pager", name],
                                  capture_output=True, text=True)
        score = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
        report.check(security.returncode == 0 and score and float(score.group(1)) <= SECURITY_THRESHOLD,
                     f"systemd: systemd-analyze security exposure above {SECURITY_THRESHOLD}: "
                     f"{security.stdout[-300:]}{security.stderr}")
        report.ok(f"systemd: systemd-analyze verify passes in the image root; security exposure "
                  f"{score.group(1) if score else '?'}")
    return duration_seconds(value("TimeoutStopSec") or "90"), drain_seconds(arguments, known)


# ---------------------------------------------------------------------------------------------------------------------


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
        compose_grace, compose_drain = check_compose(report, known, image)
        systemd_grace, systemd_drain = check_systemd(report, known, staged_root, entrypoint)
        graces = {"Kubernetes terminationGracePeriodSeconds": (kubernetes_grace, kubernetes_drain),
                  "compose stop_grace_period": (compose_grace, compose_drain),
                  "systemd TimeoutStopSec": (systemd_grace, systemd_drain)}
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
