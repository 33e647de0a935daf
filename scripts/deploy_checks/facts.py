"""Facts read from the sources (never changed here), and readers of the values the deploy files give."""
import os
import re

from .paths import CONFIGURATION_SOURCE, ROOT, SERVE_SOURCE, VERSION_SOURCE
from .report import Failure


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
