#!/usr/bin/env python3
"""Each target declares exactly the modules it imports (Package.swift, read with `swift package dump-package`).

A module imported but not declared builds today only because some other dependency drags it in, and breaks
when that one changes; a module declared but never imported is a dependency (and build time) for nothing.
Modules of the toolchain (Foundation, Glibc, Synchronization, Testing, ...) need no declaration.
"""
import json
import pathlib
import re
import subprocess
import sys

TOOLCHAIN = {"Foundation", "FoundationEssentials", "FoundationNetworking", "Glibc", "Synchronization", "Testing",
             "Dispatch", "_Concurrency", "XCTest", "Darwin"}
IMPORT = re.compile(r"^\s*(?:@testable\s+|@_exported\s+)?(?:public\s+|internal\s+|private\s+)?import\s+([A-Za-z_][A-Za-z0-9_]*)",
                    re.MULTILINE)


def imports(text):
    """The modules a Swift file imports, skipping multi-line string literals (which may hold Python)."""
    modules, in_string = set(), False
    for line in text.splitlines():
        if line.count('"""') % 2 == 1:
            in_string = not in_string
            continue
        if not in_string:
            modules |= set(IMPORT.findall(line))
    return modules


def declared(target):
    names = set()
    for dependency in target["dependencies"]:
        for kind in ("byName", "target", "product"):
            if kind in dependency:
                names.add(dependency[kind][0])
    return names


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    manifest = json.loads(subprocess.run(["swift", "package", "dump-package"], cwd=root, check=True,
                                         capture_output=True, text=True).stdout)
    problems = []
    for target in manifest["targets"]:
        if target["type"] == "system":
            continue
        default = "Tests" if target["type"] == "test" else "Sources"
        path = root / (target.get("path") or f"{default}/{target['name']}")
        imported = set()
        for source in path.rglob("*.swift"):
            imported |= imports(source.read_text())
        imported -= TOOLCHAIN | {target["name"]}
        wanted = declared(target)
        for module in sorted(imported - wanted):
            problems.append(f"{target['name']} imports {module} but does not declare it")
        for module in sorted(wanted - imported):
            problems.append(f"{target['name']} declares {module} but never imports it")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"target imports: ok ({len(manifest['targets'])} targets)")


if __name__ == "__main__":
    main()
