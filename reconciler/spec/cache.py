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
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from ..hashing import canonical_json

__all__ = ["cache_root", "schema_verdict_key", "known_valid", "remember_valid"]

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


def _folder() -> Path | None:
    root = cache_root()
    return root / "schema-ok" if root is not None else None


def schema_verdict_key(schema_text: str, data: Any) -> str:
    """The content address of "this data against this schema"."""
    digest = hashlib.sha256(schema_text.encode())
    digest.update(b"\0" + canonical_json(data).encode())
    return digest.hexdigest()


def known_valid(key: str) -> bool:
    folder = _folder()
    return folder is not None and (folder / key).is_file()


def remember_valid(key: str) -> None:
    folder = _folder()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / key).touch()
        entries = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime)
        for stale in entries[:-MAX_ENTRIES]:
            stale.unlink(missing_ok=True)
    except OSError:
        pass
