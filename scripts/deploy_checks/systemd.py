"""Deploy/systemd/: the unit runs the image's binary as the sysusers.d user, hardened; `systemd-analyze` agrees."""
import os
import re
import shlex
import shutil
import subprocess

from .facts import drain_seconds, duration_seconds, flag
from .paths import SYSUSERS, UNIT

SECURITY_THRESHOLD = 2.0  # highest `systemd-analyze security` exposure accepted
UNIT_HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
    "PrivateDevices": "yes", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "SystemCallFilter": "@system-service", "CapabilityBoundingSet": "", "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes", "RestrictNamespaces": "yes", "RestrictSUIDSGID": "yes",
    "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectControlGroups": "yes",
    "UMask": "0077", "StateDirectoryMode": "0700",
}


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
                                check=False, capture_output=True, text=True)
        report.check(verify.returncode == 0 and not verify.stdout.strip() and not verify.stderr.strip(),
                     f"systemd: systemd-analyze verify: {verify.stdout}{verify.stderr}")
        security = subprocess.run(["systemd-analyze", "security", "--offline=true", f"--root={staged_root}",
                                   f"--threshold={int(SECURITY_THRESHOLD * 10)}", "--no-pager", name],
                                  check=False, capture_output=True, text=True)
        score = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
        report.check(security.returncode == 0 and score and float(score.group(1)) <= SECURITY_THRESHOLD,
                     f"systemd: systemd-analyze security exposure above {SECURITY_THRESHOLD}: "
                     f"{security.stdout[-300:]}{security.stderr}")
        report.ok(f"systemd: systemd-analyze verify passes in the image root; security exposure "
                  f"{score.group(1) if score else '?'}")
    return duration_seconds(value("TimeoutStopSec") or "90"), drain_seconds(arguments, known)
