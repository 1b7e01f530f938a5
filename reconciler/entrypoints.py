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

The file lives beside the schema cache (``RECONCILER_CACHE_DIR``, else
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
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["EntryPoint", "entry_points"]

_FILE = "entry-points.json"


@dataclass(frozen=True)
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
    from .spec.cache import cache_root

    root = cache_root()
    return root / _FILE if root is not None else None


def _read(path: Path, key: str) -> list[EntryPoint] | None:
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if info.st_uid != os.geteuid() or info.st_mode & 0o022:
                return None  # someone else could have named the modules to import
            data = json.loads(handle.read())
        if data.get("key") != key:
            return None
        return [EntryPoint(**entry) for entry in data["entry_points"]]
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _write(path: Path, key: str, found: list[EntryPoint]) -> None:
    temporary = path.with_name(f".{_FILE}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600), "w") as handle:
            json.dump({"key": key, "entry_points": [asdict(entry) for entry in found]}, handle)
        os.replace(temporary, path)
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass
