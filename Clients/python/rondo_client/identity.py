"""A site's stable identity: where its secret identity key comes from (argument, file or environment variable)."""

from __future__ import annotations

import os
import stat
from typing import Mapping, Optional

#: Environment variable :func:`resolve_identity_key` reads when no key is passed.
IDENTITY_KEY_ENV = "RONDO_CLIENT_IDENTITY_KEY"


def read_identity_key_file(path: "os.PathLike[str] | str") -> str:
    """The identity key in ``path`` (surrounding whitespace stripped). Refuses an empty file and one that users
    other than its owner may write (as the coordinator does for its token files)."""
    try:
        with open(path, "rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            data = file.read(4096)
    except OSError as error:
        raise ValueError(f"identity key file {os.fspath(path)} is unreadable: {error.strerror or error}") from None
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ValueError(
            f"identity key file {os.fspath(path)} is writable by other users (mode {stat.S_IMODE(mode):o}); "
            f"run `chmod 600 {os.fspath(path)}`")
    try:
        key = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"identity key file {os.fspath(path)} is not text") from None
    if not key:
        raise ValueError(f"identity key file {os.fspath(path)} is empty")
    return key


def resolve_identity_key(
    identity_key: Optional[str] = None,
    identity_key_file: "Optional[os.PathLike[str] | str]" = None,
    environ: Optional[Mapping[str, str]] = None,
) -> Optional[str]:
    """The identity key to register with: ``identity_key``, else the contents of ``identity_key_file``, else
    ``$RONDO_CLIENT_IDENTITY_KEY``, else ``None`` (a new client on every registration). The coordinator checks
    the key's form (16 to 256 printable ASCII characters without spaces)."""
    if identity_key is not None and identity_key_file is not None:
        raise ValueError("pass identity_key or identity_key_file, not both")
    if identity_key_file is not None:
        return read_identity_key_file(identity_key_file)
    if identity_key is not None:
        if not isinstance(identity_key, str):
            raise TypeError(f"identity_key must be a str, not {type(identity_key).__name__}")
        if not identity_key:
            raise ValueError("identity_key is empty (pass None for no stable identity)")
        return identity_key
    return (environ if environ is not None else os.environ).get(IDENTITY_KEY_ENV) or None
