"""Schemathesis hooks for the client phase of `fuzz-api.py`: aim result submissions at real open evaluate tasks.

Loaded by schemathesis through `SCHEMATHESIS_HOOKS`. Every case of `POST /v1/tasks/{task_id}/result` gets the
`task_id` of an evaluate task that is open right now and the bearer token of the client it was given to, so the
generated bodies reach the coordinator's validation of evaluation results instead of stopping at 401/404.

The pool of open tasks drives the federation itself with urllib: when it is empty, every client long-polls for
its next task, answers a fit task with the model it was given (unchanged, `num_examples` "1"), and then polls
its evaluate task into the pool. A task leaves the pool once the coordinator answered 202 (accepted) or 409
(late or duplicate) for it; any other answer left it open, so later cases reuse it.

Settings come from the environment (set by `fuzz-api.py`):
  RONDO_FUZZ_URL      the coordinator's base URL
  RONDO_FUZZ_CLIENTS  JSON list of {"client_id", "token"} of the registered clients
  RONDO_FUZZ_STATS    file to keep {"cases", "statuses", "rounds"} in, rewritten after every call

The pool is not thread-safe: run schemathesis with `--workers 1`.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

import safetensors.numpy
import schemathesis

PATH = "/v1/tasks/{task_id}/result"
POLL_SECONDS = 5
REQUEST_TIMEOUT = 30
GIVE_UP_SECONDS = 30


class PoolError(RuntimeError):
    """The federation did not hand out evaluate tasks; the message says what was missing."""


class TaskPool:
    """Open evaluate tasks as (task_id, token), refilled by running the next round when empty."""

    def __init__(self, url, clients):
        """Use the coordinator at `url` and the registered `clients` ({"client_id", "token"} dicts)."""
        self.url = url
        self.clients = clients
        self.open = []
        self.rounds = 0
        self.models = {}
        self.failure = None

    def take(self):
        """Return an open evaluate task (task_id, token); it stays in the pool until `settle` drops it.

        Once a round could not be run, every later call fails at once with the same error, so a stuck federation
        costs one timeout, not one per case.
        """
        if self.failure:
            raise PoolError(self.failure)
        if not self.open:
            try:
                self.run_round()
            except Exception as error:
                self.failure = f"{type(error).__name__}: {error}"
                print(f"fuzz_hooks: cannot get an open evaluate task: {self.failure}", file=sys.stderr)
                raise
        return self.open[0]

    def settle(self, task_id, status):
        """Drop `task_id` when the coordinator closed it (202 accepted, 409 late or duplicate)."""
        if status in (202, 409):
            self.open = [task for task in self.open if task[0] != task_id]

    def run_round(self):
        """Poll every client until each holds an evaluate task, answering fit tasks on the way."""
        waiting = {client["client_id"]: client["token"] for client in self.clients}
        last_progress = time.monotonic()
        while waiting:
            for client_id, token in list(waiting.items()):
                if time.monotonic() - last_progress > GIVE_UP_SECONDS:
                    raise PoolError(
                        f"no evaluate task for {len(waiting)} of {len(self.clients)} clients after "
                        f"{GIVE_UP_SECONDS} s without progress (round {self.rounds + 1} of this run)")
                status, body = self.request(
                    "GET", f"/v1/clients/{client_id}/tasks/next?wait_seconds={POLL_SECONDS}", token)
                if status == 204:
                    continue
                if status != 200:
                    raise PoolError(f"GET tasks/next for {client_id}: HTTP {status} {body[:300]!r}")
                task = json.loads(body)
                if task["kind"] == "fit":
                    self.answer_fit(task, token)
                else:
                    self.open.append((task["task_id"], token))
                    del waiting[client_id]
                last_progress = time.monotonic()
        self.rounds += 1

    def answer_fit(self, task, token):
        """Submit the task's model back unchanged as the fit result, with `num_examples` "1"."""
        version = task["model_version"]
        if version not in self.models:
            status, body = self.request("GET", f"/v1/models/{version}", token)
            if status != 200:
                raise PoolError(f"GET /v1/models/{version}: HTTP {status} {body[:300]!r}")
            self.models[version] = safetensors.numpy.save(
                safetensors.numpy.load(body), metadata={"num_examples": "1"})
        status, body = self.request(
            "POST", f"/v1/tasks/{task['task_id']}/result", token, self.models[version], "application/vnd.safetensors")
        if status not in (202, 409):
            raise PoolError(f"fit result for {task['task_id']}: HTTP {status} {body[:300]!r}")

    def request(self, method, path, token, data=None, content_type=None):
        """(status, body bytes) of one request with the client's bearer token; HTTP errors are answers too."""
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


_pool = None
_stats = {"cases": 0, "statuses": {}, "rounds": 0}


def _is_result_submission(case):
    # `case.method`, not the operation's: the coverage phase also probes the path with undocumented methods.
    return case.operation.path == PATH and case.method.upper() == "POST"


def _get_pool():
    global _pool
    if _pool is None:
        _pool = TaskPool(os.environ["RONDO_FUZZ_URL"], json.loads(os.environ["RONDO_FUZZ_CLIENTS"]))
    return _pool


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    """Point a result submission at an open evaluate task, with its client's token."""
    if not _is_result_submission(case):
        return
    task_id, token = _get_pool().take()
    case.path_parameters = {**(case.path_parameters or {}), "task_id": task_id}
    headers = {name: value for name, value in (case.headers or {}).items() if name.lower() != "authorization"}
    case.headers = {**headers, "Authorization": f"Bearer {token}"}


@schemathesis.hook
def after_call(ctx, case, response):
    """Drop the task from the pool if the coordinator closed it, and count the answer."""
    if not _is_result_submission(case):
        return
    pool = _get_pool()
    pool.settle(case.path_parameters["task_id"], response.status_code)
    status = str(response.status_code)
    _stats["cases"] += 1
    _stats["statuses"][status] = _stats["statuses"].get(status, 0) + 1
    _stats["rounds"] = pool.rounds
    path = os.environ.get("RONDO_FUZZ_STATS")
    if path:
        with open(path, "w") as stats:
            json.dump(_stats, stats)
