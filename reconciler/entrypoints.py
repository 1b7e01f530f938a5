"""The installed plugins' entry points, remembered between runs.

Finding them means importing ``importlib.metadata`` (it pulls in email,
zipfile, csv...) and reading every installed distribution's metadata: 20 to
40 ms on every command, more than a converged pass's own work. The answer only
changes when a distribution is installed, upgraded or removed, and each of
those adds or removes a ``*.dist-info`` directory in a ``sys.path`` folder,
which changes that folder's modification time. So the entry points of the
``reconciler`` group are kept in a small JSON file, under a key made of the
interpreter, ``sys.path`` and each of its folders' modification time: any
install anywhere on the path misses it, and the next run reads the metadata
again.

The file lives in the cache folder (``reconciler.cache``: ``RECONCILER_CACHE_DIR``, else
``$XDG_CACHE_HOME/reconciler``, else ``~/.cache/reconciler``; ``off``
disables both). It names modules the run then imports, so it is trusted only
when it belongs to this user and no one else may write it. Every failure to
read or write it falls back to reading the metadata: it is only an optimisation.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from .values import value

__all__ = ["EntryPoint", "entry_points"]

_FILE = "entry-points.json"


@value
class EntryPoint:
    """One plugin: its entry point's name and ``module[:attribute]``, and the distribution declaring it."""

    name: str
    value: str
    distribution: str
    version: str

    def load(self):
        """Import the module and return the object the entry point names, as ``importlib.metadata`` does."""
        import importlib

        module, _, attribute = self.value.partition(":")
        found = importlib.import_module(module.strip())
        for part in filter(None, attribute.strip().split(".")):
            found = getattr(found, part)
        return found


def entry_points(group: str) -> list[EntryPoint]:
    """Every entry point of ``group``, in the order distributions are found on ``sys.path``."""
    key = _key(group)
    path = _cache_file()
    cached = _read(path, key) if path is not None else None
    if cached is not None:
        return cached
    found = _scan(group)
    if path is not None:
        _write(path, key, found)
    return found


def _scan(group: str) -> list[EntryPoint]:
    import importlib.metadata

    return [EntryPoint(ep.name, ep.value, dist.metadata["name"], dist.version)
            for dist in importlib.metadata.distributions() for ep in dist.entry_points if ep.group == group]


def _key(group: str) -> str:
    digest = hashlib.sha256(f"{group}\0{sys.executable}\0{sys.version}".encode())
    for folder in sys.path:
        try:
            stamp = os.stat(folder or ".").st_mtime_ns
        except OSError:
            stamp = -1
        digest.update(f"\0{folder}\0{stamp}".encode())
    return digest.hexdigest()


def _cache_file() -> Path | None:
    from .cache import cache_root

    root = cache_root()
    return root / _FILE if root is not None else None


def _read(path: Path, key: str) -> list[EntryPoint] | None:
    from .private import read_trusted

    raw = read_trusted(path)  # it names modules to import: someone else's file is never believed
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        if data.get("key") != key:
            return None
        return [EntryPoint(**entry) for entry in data["entry_points"]]
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _write(path: Path, key: str, found: list[EntryPoint]) -> None:
    from .cache import write_file

    write_file(path, json.dumps({"key": key, "entry_points": [asdict(entry) for entry in found]}).encode())
