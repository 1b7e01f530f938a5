"""The reconciler's cache folder: small memories that spare a run work it did before.

Importing and running jsonschema, parsing YAML, reading every installed
distribution's metadata: each costs more than a whole converged reconcile
pass, and a GitOps loop asks the same questions over and over. Their answers
are kept here, under a content address of the question, so any change misses.

The folder is ``RECONCILER_CACHE_DIR``, else ``$XDG_CACHE_HOME/reconciler``,
else ``~/.cache/reconciler``; ``RECONCILER_CACHE_DIR=off`` disables it. Every
failure to read or write it is ignored: it is only ever an optimisation.

What lives there: a folder per kind, through ``read_entry`` and ``write_entry``
(at most ``MAX_ENTRIES`` files each, the oldest dropped): the schema verdicts
(``spec.verdicts``) and the parsed text of spec files (``spec.yamlsafe``); and
files of their own through ``write_file`` (the plugins' entry points,
``entrypoints``). Whatever is read back is used only when this user owns the
file and no one else may write it (``private.read_trusted``): it decides what a
run does. Kept below the spec package: the core's start-up reads it too.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .private import read_trusted, write_private

__all__ = ["MAX_ENTRIES", "cache_root", "content_key", "read_entry", "write_entry", "write_file"]

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
    if write_file(folder / key, data):
        try:
            entries = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime)
            for stale in entries[:-MAX_ENTRIES]:
                stale.unlink(missing_ok=True)
        except OSError:
            pass


def write_file(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` (its folder made as needed) atomically, readable by this user only;
    False when it could not be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, data)
        return True
    except OSError:
        return False
