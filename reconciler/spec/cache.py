"""A small on-disk memory of specs that already passed the JSON Schema.

Importing and running jsonschema costs more than a whole converged reconcile
pass, yet a GitOps loop re-validates the same spec over and over. So a
successful schema check is remembered under a hash of the schema text and the
spec's (interpolated) data: the same content skips straight to the semantic
checks, which always run (they look at the file system). Only successes are
remembered; any change to the spec or the schema misses the cache.

The cache lives in ``RECONCILER_CACHE_DIR``, else ``$XDG_CACHE_HOME/reconciler``,
else ``~/.cache/reconciler``; set ``RECONCILER_CACHE_DIR=off`` to disable it.
Every failure to read or write it is ignored: it is only ever an optimisation.

Other memories live there too, through ``read_entry`` and ``write_entry``
(a folder per kind, at most ``MAX_ENTRIES`` files each, the oldest dropped):
the parsed text of spec files (``yamlsafe``). Whatever is read back from the
cache is used only when this user owns the file and no one else may write it.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from ..hashing import canonical_json

__all__ = ["cache_root", "content_key", "known_valid", "read_entry", "read_trusted", "remember_valid",
           "schema_verdict_key", "write_entry", "write_private"]

MAX_ENTRIES = 256


def cache_root() -> Path | None:
    """The reconciler's cache folder (see above), or None when ``RECONCILER_CACHE_DIR=off``."""
    configured = os.environ.get("RECONCILER_CACHE_DIR")
    if configured == "off":
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "reconciler"


_SCHEMA_OK = "schema-ok"  # one empty file per verdict


def _folder() -> Path | None:
    root = cache_root()
    return root / _SCHEMA_OK if root is not None else None


def schema_verdict_key(schema_text: str, data: Any) -> str:
    """The content address of "this data against this schema"."""
    digest = hashlib.sha256(schema_text.encode())
    digest.update(b"\0" + canonical_json(data).encode())
    return digest.hexdigest()


def known_valid(key: str) -> bool:
    folder = _folder()
    return folder is not None and (folder / key).is_file()


def remember_valid(key: str) -> None:
    write_entry(_SCHEMA_OK, key, b"")


def content_key(*parts: str) -> str:
    """The content address of ``parts`` (a format's name, a file name, a text...)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


def read_entry(kind: str, key: str) -> bytes | None:
    """What ``write_entry(kind, key, ...)`` kept, or None (none, unreadable or untrusted)."""
    root = cache_root()
    return read_trusted(root / kind / key) if root is not None else None


def write_entry(kind: str, key: str, data: bytes) -> None:
    """Keep ``data`` under ``key``; the oldest entries of ``kind`` beyond ``MAX_ENTRIES`` go."""
    root = cache_root()
    if root is None:
        return
    folder = root / kind
    if write_private(folder / key, data):
        try:
            entries = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime)
            for stale in entries[:-MAX_ENTRIES]:
                stale.unlink(missing_ok=True)
        except OSError:
            pass


def read_trusted(path: Path) -> bytes | None:
    """The file's bytes when this user owns it and no one else may write it; else (or unreadable) None.

    What the cache holds decides what a run does (modules to import, a spec's
    data), so a file another user could have written is never believed.
    """
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if info.st_uid != os.geteuid() or info.st_mode & 0o022:
                return None
            return handle.read()
    except OSError:
        return None


def write_private(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically, readable by this user only; False when it could not be."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600), "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
        return True
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        return False
