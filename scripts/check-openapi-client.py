#!/usr/bin/env python3
"""Generate a Python client from the repo's OpenAPI document and drive a live coordinator with it.

Usage: check-openapi-client.py RONDO_BINARY

In a temporary directory:
  1. openapi-python-client 0.29.1 generates a package from Sources/Coordinator/Resources/openapi.yaml (post hooks
     off; application/vnd.safetensors read as bytes). Generation must succeed with no warning except the one
     known omission (GET /v1/openapi.yaml is application/yaml, which the generator cannot parse).
  2. The package must be importable, with one module per operationId under its tag (api/client/register_client.py,
     …, no path-named modules such as get_v1_status), every error status must reference a shared response whose
     body is the shared Error schema, and the generated models must include Error, RoundPhase and TaskKind.
     (A known 0.29.1 bug, a missing `Unset` import in submit_result, is patched and named in the summary.)
  3. A real `rondo serve` (free port, temporary data directory, enrolment/admin/viewer token files, one client
     enough for a round) is started and, with the GENERATED client only: registerClient; nextTask (a typed Task
     with a TaskKind, or a 204); downloadModel for that task (the bytes hash to the task's model_sha256);
     getStatus with the viewer token (a typed Status whose phase is a RoundPhase); listCheckpoints and listRounds
     with the admin token (CheckpointStatus / RoundStatus enums); listEvents (EventKind enum); and refusals that
     must parse into the shared Error model (nextTask with an unknown token: 401; pauseFederation as viewer: 403).
Prints one summary line; exits non-zero on any failure. The coordinator is always stopped (SIGTERM, then kill)
and the temporary directory removed.
"""
import contextlib
import hashlib
import importlib
import importlib.metadata
import os
import pkgutil
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCUMENT = os.path.join(ROOT, "Sources", "Coordinator", "Resources", "openapi.yaml")
GENERATOR_VERSION = "0.29.1"
PACKAGE = "rondo_api_client"
TAGS = {"client", "operator", "ops"}
# Operations the generator may warn about (their response is omitted from the generated client, nothing else).
TOLERATED_WARNINGS = {"GET /v1/openapi.yaml"}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
GENERATOR_CONFIG = """\
package_name_override: rondo_api_client
post_hooks: []
content_type_overrides:
  application/vnd.safetensors: application/octet-stream
"""


class Failure(Exception):
    """A check failed; the message says which."""


def check(condition, message):
    if not condition:
        raise Failure(message)


def snake(operation_id):
    """The module name openapi-python-client gives an operationId (registerClient → register_client)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", operation_id).lower()


def operations(document):
    """(METHOD, path, operation) for every operation of the document."""
    return [(method.upper(), path, operation)
            for path, item in document["paths"].items()
            for method, operation in item.items() if method in METHODS]


def check_document(document):
    """Every operation has a unique operationId and exactly one known tag; every error status references a shared
    response whose JSON body is the shared Error schema. Returns the count of operations per tag."""
    declared = {tag["name"] for tag in document.get("tags", [])}
    check(declared == TAGS, f"top-level tags are {sorted(declared)}, expected {sorted(TAGS)}")
    responses = document["components"]["responses"]
    check("Error" in document["components"]["schemas"], "no components/schemas/Error")
    seen, per_tag = set(), {tag: 0 for tag in TAGS}
    for method, path, operation in operations(document):
        name = f"{method} {path}"
        operation_id = operation.get("operationId")
        check(operation_id and re.fullmatch(r"[a-z][A-Za-z0-9]*", operation_id),
              f"{name}: operationId {operation_id!r} is not camelCase")
        check(operation_id not in seen, f"{name}: operationId {operation_id} is not unique")
        seen.add(operation_id)
        tags = operation.get("tags", [])
        check(len(tags) == 1 and tags[0] in TAGS, f"{name}: tags {tags}, expected exactly one of {sorted(TAGS)}")
        per_tag[tags[0]] += 1
        for status, response in operation["responses"].items():
            if not status.startswith(("4", "5")):
                continue
            reference = response.get("$ref", "")
            check(reference.startswith("#/components/responses/"),
                  f"{name} {status}: not a $ref to a shared response")
            shared = responses[reference.rsplit("/", 1)[1]]
            schema = shared.get("content", {}).get("application/json", {}).get("schema", {})
            check(schema.get("$ref") == "#/components/schemas/Error",
                  f"{name} {status}: {reference} does not answer the shared Error schema")
    return per_tag


def generate(scratch):
    """Run openapi-python-client in `scratch`; returns the package directory."""
    try:
        version = importlib.metadata.version("openapi-python-client")
    except importlib.metadata.PackageNotFoundError:
        raise Failure("openapi-python-client is not installed (make venv)") from None
    check(version == GENERATOR_VERSION, f"openapi-python-client {version}, expected {GENERATOR_VERSION} (make venv)")
    config = os.path.join(scratch, "generator.yaml")
    with open(config, "w") as file:
        file.write(GENERATOR_CONFIG)
    generator = os.path.join(os.path.dirname(sys.executable), "openapi-python-client")
    run = subprocess.run(
        [generator, "generate", "--path", DOCUMENT, "--meta", "none", "--config", config],
        cwd=scratch, capture_output=True, text=True, check=False, env={**os.environ, "NO_COLOR": "1"})
    output = run.stdout + run.stderr
    check(run.returncode == 0, f"openapi-python-client failed ({run.returncode}):\n{output[-3000:]}")
    warned = set(re.findall(r"WARNING parsing (\S+ \S+) within", output))
    check(not warned - TOLERATED_WARNINGS,
          f"openapi-python-client warned about {sorted(warned - TOLERATED_WARNINGS)}:\n{output[-3000:]}")
    package = os.path.join(scratch, PACKAGE)
    check(os.path.isfile(os.path.join(package, "__init__.py")), f"no package {PACKAGE} in the generator's output")
    return package


def work_around_unset_import(document, package):
    """openapi-python-client 0.29.1 annotates a required request body with several content types as `… | Unset`
    without importing `Unset` (openapi-generators/openapi-python-client#1451, fix in PR #1478), so such a module
    fails to import with a NameError. Adds the import to exactly those modules (nothing once the generator is
    fixed); the same symptom in any other module is a failure. Returns the patched modules."""
    multi_body = {f"{operation['tags'][0]}.{snake(operation['operationId'])}"
                  for _, _, operation in operations(document)
                  if operation.get("requestBody", {}).get("required")
                  and len(operation["requestBody"].get("content", {})) > 1}
    patched = []
    for tag in sorted(TAGS):
        directory = os.path.join(package, "api", tag)
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            with open(path) as file:
                text = file.read()
            if not re.search(r"\bUnset\b", text) or re.search(
                r"^from \.\.\.types import .*\bUnset\b", text, re.MULTILINE
            ):
                continue
            module = f"{tag}.{name.removesuffix('.py')}"
            check(module in multi_body, f"generated {module} uses Unset without importing it")
            with open(path, "w") as file:
                file.write("from ...types import Unset\n" + text)
            patched.append(module)
    return patched


def check_package(document):
    """The generated modules are named by operationId under their tag, and nothing else is generated."""
    expected = {f"{operation['tags'][0]}.{snake(operation['operationId'])}"
                for _, _, operation in operations(document)}
    generated = set()
    for tag in TAGS:
        tag_package = importlib.import_module(f"{PACKAGE}.api.{tag}")
        generated |= {f"{tag}.{module.name}" for module in pkgutil.iter_modules(tag_package.__path__)}
    check(generated == expected,
          f"generated API modules differ from the operationIds: missing {sorted(expected - generated)}, "
          f"unexpected {sorted(generated - expected)}")
    for name in sorted(expected):
        module = importlib.import_module(f"{PACKAGE}.api.{name}")
        check(callable(getattr(module, "sync_detailed", None)), f"{PACKAGE}.api.{name} has no sync_detailed")
    models = importlib.import_module(f"{PACKAGE}.models")
    error_models = [name for name in dir(models) if re.search(r"Response(4|5)\d\d", name)]
    check(not error_models, f"per-status error models were generated: {error_models}")
    for name in ("Error", "ErrorDetail", "Registration", "Task", "TaskKind", "Status", "RoundPhase", "RoundStatus",
                 "CheckpointStatus", "EventKind"):
        check(hasattr(models, name), f"no generated model {name}")
    return len(expected)


def free_port():
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def coordinator(rondo, scratch, tokens):
    """Run `rondo serve` on a free port; yields (url, process). Always stops it: SIGTERM, then kill."""
    data = os.path.join(scratch, "data")
    port = free_port()
    flags = ["--host", "127.0.0.1", "--port", str(port), "--data-dir", data, "--log-level", "error",
             # One connected client is enough for a round, so nextTask has a fit task to hand out.
             "--min-available-clients", "1", "--min-fit-clients", "1", "--min-fit-results", "1",
             # SIGTERM would otherwise wait for the open round (fit + evaluate timeouts) before stopping.
             "--drain-timeout", "1"]
    for role, token in tokens.items():
        path = os.path.join(scratch, f"{role}-token")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
            file.write(token + "\n")
        flags += [f"--{role}-token-file", path]
    environment = {key: value for key, value in os.environ.items() if not key.startswith("RONDO_")}
    help_text = subprocess.run([rondo, "serve", "--help"], capture_output=True, text=True, check=False,
                               env=environment).stdout
    if "--demo-model" in help_text:
        flags.append("--demo-model")
    log = open(os.path.join(scratch, "serve.log"), "w+b")  # noqa: SIM115 (closed in finally)
    server = subprocess.Popen([rondo, "serve", *flags], stdout=subprocess.DEVNULL, stderr=log, env=environment)
    server.log = log
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=30)
        log.close()


def log_tail(server):
    """The last lines the coordinator wrote to stderr."""
    server.log.flush()
    server.log.seek(0)
    return server.log.read().decode(errors="replace")[-2000:]


def drive(url, server, tokens):
    """The client and operator calls, through the generated package only. Returns a summary of what it saw."""
    import httpx

    package = importlib.import_module(PACKAGE)
    models = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")

    def api(name):
        return importlib.import_module(f"{PACKAGE}.api.{name}")

    def client(token=None):
        timeout = httpx.Timeout(30.0)
        if token is None:
            return package.Client(base_url=url, timeout=timeout, raise_on_unexpected_status=True)
        return package.AuthenticatedClient(base_url=url, token=token, timeout=timeout, raise_on_unexpected_status=True)

    def expect_error(response, status, code, what):
        check(response.status_code == status, f"{what}: status {response.status_code}, expected {status}")
        check(type(response.parsed) is models.Error,
              f"{what}: parsed into {type(response.parsed).__name__}, not the shared Error model")
        check(type(response.parsed.error) is models.ErrorDetail and response.parsed.error.code == code,
              f"{what}: error {response.parsed.error!r}, expected code {code}")

    # Ready: readiness through the generated client.
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            raise Failure(f"the coordinator exited ({server.returncode}): {log_tail(server)}")
        try:
            ready = api("ops.readiness").sync_detailed(client=client())
            if ready.status_code == 200:
                check(type(ready.parsed) is models.StatusObject and ready.parsed.status == "ready",
                      f"readiness parsed into {ready.parsed!r}")
                break
        except httpx.TransportError:
            pass
        check(time.monotonic() < deadline, "the coordinator did not become ready within 60 s")
        time.sleep(0.2)

    registered = api("client.register_client").sync_detailed(
        client=client(tokens["enrolment"]), body=models.RegistrationRequest(name="openapi-client-check"))
    check(registered.status_code == 201 and type(registered.parsed) is models.Registration,
          f"registerClient: {registered.status_code} {registered.content[:300]!r}")
    me = client(registered.parsed.token)
    client_id = registered.parsed.client_id

    polled = api("client.next_task").sync_detailed(id=client_id, client=me, wait_seconds=10.0)
    if polled.status_code == 200:
        task = polled.parsed
        check(type(task) is models.Task, f"nextTask 200 parsed into {type(task).__name__}, not Task")
        check(isinstance(task.kind, models.TaskKind), f"nextTask: kind {task.kind!r} is not a TaskKind")
        model = api("client.download_model").sync_detailed(version=str(task.model_version), client=me)
        check(model.status_code == 200 and isinstance(model.parsed, types.File),
              f"downloadModel: {model.status_code}, parsed {type(model.parsed).__name__}")
        digest = hashlib.sha256(model.parsed.payload.read()).hexdigest()
        check(digest == task.model_sha256, f"downloadModel: SHA-256 {digest}, the task says {task.model_sha256}")
        polled_summary = f"task {task.kind.value} of round {task.round_}, model v{task.model_version} downloaded"
    else:
        check(polled.status_code == 204 and polled.parsed is None,
              f"nextTask: {polled.status_code} parsed {polled.parsed!r}, expected a Task or 204")
        polled_summary = "204 no task"

    status = api("operator.get_status").sync_detailed(client=client(tokens["viewer"]))
    check(status.status_code == 200 and type(status.parsed) is models.Status,
          f"getStatus: {status.status_code} parsed into {type(status.parsed).__name__}, not Status")
    phase = status.parsed.phase
    check(type(phase) is models.RoundPhase, f"getStatus: phase {phase!r} is not the generated RoundPhase enum")
    check(status.parsed.clients_registered == 1, f"getStatus: {status.parsed.clients_registered} clients registered")

    checkpoints = api("operator.list_checkpoints").sync_detailed(client=client(tokens["admin"]))
    check(checkpoints.status_code == 200 and type(checkpoints.parsed) is models.CheckpointList,
          f"listCheckpoints: {checkpoints.status_code} parsed into {type(checkpoints.parsed).__name__}")
    statuses = [checkpoint.status for checkpoint in checkpoints.parsed.checkpoints]
    check(statuses and all(type(s) is models.CheckpointStatus for s in statuses),
          f"listCheckpoints: statuses {statuses!r} are not the generated CheckpointStatus enum")

    rounds = api("operator.list_rounds").sync_detailed(client=client(tokens["admin"]), limit=10)
    check(rounds.status_code == 200 and type(rounds.parsed) is models.RoundList,
          f"listRounds: {rounds.status_code} parsed into {type(rounds.parsed).__name__}")
    round_statuses = [record.status for record in rounds.parsed.rounds]
    check(all(type(s) is models.RoundStatus for s in round_statuses),
          f"listRounds: statuses {round_statuses!r} are not the generated RoundStatus enum")
    check(polled.status_code == 204 or round_statuses, "listRounds: no round, though nextTask handed out a task")

    events = api("operator.list_events").sync_detailed(client=client(tokens["viewer"]), limit=100)
    check(events.status_code == 200 and type(events.parsed) is models.EventList,
          f"listEvents: {events.status_code} parsed into {type(events.parsed).__name__}")
    kinds = [event.kind for event in events.parsed.events]
    check(kinds and all(type(kind) is models.EventKind for kind in kinds),
          f"listEvents: kinds {kinds!r} are not the generated EventKind enum")

    expect_error(api("client.next_task").sync_detailed(id=client_id, client=client("not-a-token"), wait_seconds=0),
                 401, "unauthenticated", "nextTask with an unknown token")
    expect_error(api("operator.pause_federation").sync_detailed(client=client(tokens["viewer"])),
                 403, "forbidden", "pauseFederation as viewer")
    return (f"registerClient → nextTask ({polled_summary}) → getStatus (phase {phase.value}) → listCheckpoints "
            f"({', '.join(s.value for s in statuses)}) → listRounds ({', '.join(s.value for s in round_statuses)}) "
            f"→ listEvents ({', '.join(sorted({k.value for k in kinds}))}) → 401/403 parsed as Error")


def main():
    # SIGTERM (a CI timeout) unwinds like Ctrl-C, so the coordinator is stopped and the scratch directory removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("check-openapi-client: terminated"))
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rondo = os.path.abspath(sys.argv[1])
    if not os.access(rondo, os.X_OK):
        sys.exit(f"check-openapi-client: {rondo} is not an executable")
    with open(DOCUMENT) as file:
        document = yaml.safe_load(file)
    scratch = tempfile.mkdtemp(prefix="rondo-openapi-client-")
    try:
        per_tag = check_document(document)
        patched = work_around_unset_import(document, generate(scratch))
        sys.path.insert(0, scratch)
        count = check_package(document)
        tokens = {"admin": "openapi-admin-" + os.urandom(16).hex(), "viewer": "openapi-viewer-" + os.urandom(16).hex(),
                  "enrolment": "openapi-enrolment-" + os.urandom(16).hex()}
        with coordinator(rondo, scratch, tokens) as (url, server):
            summary = drive(url, server, tokens)
            if server.poll() is not None:
                raise Failure(f"the coordinator exited ({server.returncode}) during the calls: {log_tail(server)}")
    except Failure as failure:
        sys.exit(f"check-openapi-client: FAILED: {failure}")
    except Exception:  # noqa: BLE001 (e.g. a generated model refusing a value the coordinator sent)
        traceback.print_exc()
        sys.exit("check-openapi-client: FAILED: unexpected error (traceback above)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    tags = ", ".join(f"{tag} {n}" for tag, n in sorted(per_tag.items()))
    workaround = f" (Unset import added to {', '.join(patched)}: generator bug #1451)" if patched else ""
    print(f"openapi client: openapi-python-client {GENERATOR_VERSION} generated {count} operations ({tags})"
          f"{workaround}; {summary}: OK")


if __name__ == "__main__":
    main()
