"""Deploy/Dockerfile: its instructions and stages, and the static checks of its images, COPY sources and user."""
import glob
import json
import os
import re
import shlex

from .facts import pinned
from .paths import DOCKERIGNORE, ROOT
from .report import Failure


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
