"""What changed in the writable layer of containers whose spec watches it, read at most once per interval.

A container is a writable layer on a read-only image; the engine's
``GET /containers/{id}/changes`` lists what was added, changed or deleted in
that layer since the container was created (someone exec'd in and edited a
config file). Reading it walks the layer on the engine's host, so it is asked
only for containers whose spec says ``filesystem: report`` or ``recreate``
(never for ``ignore``, the default, nor for a ``read_only`` container, whose
layer cannot change), and at most once per interval per container: the
answer is cached with the time it was read. The interval is
``RECONCILER_FILESYSTEM_INTERVAL`` seconds (default 60, the daemon's resync
default; the daemon's ``filesystem_interval`` sets it).

The cache is this process's, not the run's: ``watch`` and the daemon make new
drivers for every pass, and the point is that passes within one interval make
no extra request. It is keyed by engine and container id; a replaced container
has a new id, so it is read afresh. The planner reads the summary from
``LiveObject.details["filesystem"]`` (see ``reconciler.fsdrift``).
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

import docker.errors

from reconciler.sdk.docker import engine_errors

__all__ = ["INTERVAL_ENV", "LayerChanges", "interval", "layer_sizes", "summary"]

INTERVAL_ENV = "RECONCILER_FILESYSTEM_INTERVAL"
DEFAULT_INTERVAL = 60.0
#: Paths kept per container: enough to decide and to show; the counts stay exact beyond it.
MAX_PATHS = 5000
_KINDS = {0: "C", 1: "A", 2: "D"}  # the engine's Kind: 0 modified, 1 added, 2 deleted
#: Where the engine puts the init process of a container with ``init: true``: its doing, not a drift.
DOCKER_INIT = "/sbin/docker-init"


def interval() -> float:
    """Seconds a container's changes are reused before they are read again (``RECONCILER_FILESYSTEM_INTERVAL``)."""
    try:
        return max(0.0, float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


def _ancestors(path: str) -> list[str]:
    out = []
    while (path := path.rpartition("/")[0]):
        out.append(path)
    return out


def _engine_made(changes: list[dict], made: set[str]) -> list[dict]:
    """``changes`` without the engine's own: the mount points it made (``made``) and the folders made only
    to hold them (``/sbin`` for ``/sbin/docker-init`` in an image without one)."""
    holders = {parent for path in made for parent in _ancestors(path)}
    kept: list[dict] = []
    kept_below: set[str] = set()
    for change in sorted(changes, key=lambda c: -str(c.get("Path", "")).count("/")):  # deepest first
        path = str(change.get("Path", ""))
        if path in made or (path in holders and path not in kept_below):
            continue
        kept.append(change)
        kept_below.update(_ancestors(path))
    return kept


def summary(changes: list[dict] | None, checked_at: float, made: set[str] = frozenset()) -> dict[str, Any]:
    """The engine's answer as counts and ``{"kind": "A"|"C"|"D", "path": …}`` entries, sorted by path;
    ``made``: the mount points the engine made in the layer, left out with the folders that only hold them."""
    paths = sorted(({"kind": _KINDS.get(c.get("Kind"), "C"), "path": str(c.get("Path", ""))}
                    for c in _engine_made(list(changes or []), set(made))), key=lambda p: p["path"])
    counts = {"added": 0, "changed": 0, "deleted": 0}
    for entry in paths:
        counts[{"A": "added", "C": "changed", "D": "deleted"}[entry["kind"]]] += 1
    return {**counts, "paths": paths[:MAX_PATHS], "more": max(0, len(paths) - MAX_PATHS), "checked_at": checked_at}


class LayerChanges:
    """The process-wide cache of writable-layer summaries, by (engine, container id)."""

    _lock = threading.Lock()
    _cache: dict[tuple[str, str], dict[str, Any]] = {}

    def __init__(self, engine: str, api: Callable[[], Any], *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._api = api
        self._clock = clock

    def of(self, container_id: str, name: str, mounts: list[dict] | None = None) -> dict[str, Any] | None:
        """The summary of the container's changes: the cached one while fresh, else read now (one request).

        ``mounts``: the container's as the list call gives them; their mount points are the engine's doing.
        """
        now = self._clock()
        key = (self.engine, container_id)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now - cached["checked_at"] < interval():
            return cached
        with engine_errors(f"read the writable layer of container {name}"):  # the engine down: a failed pass
            try:
                changes = self._api().diff(container_id)
            except docker.errors.APIError:  # gone since the list call, or a storage driver that cannot tell:
                return None  # not checked, rather than a failed pass
        made = {str(m.get("Destination", "")) for m in mounts or ()} | {DOCKER_INIT}
        found = summary(changes, now, made)
        with self._lock:
            self._forget_old(now)
            self._cache[key] = found
        return found

    @classmethod
    def clear(cls) -> None:
        """Forget every summary (tests)."""
        with cls._lock:
            cls._cache.clear()

    def _forget_old(self, now: float) -> None:
        """Drop summaries ten intervals old: their containers are likely gone (caller holds the lock)."""
        horizon = now - 10 * max(interval(), 1.0)
        for key in [k for k, v in self._cache.items() if v["checked_at"] < horizon]:
            del self._cache[key]


def layer_sizes(api: Any, filters: dict) -> dict[str, int]:
    """The writable layer's size (``SizeRw``) of each container ``filters`` selects, by name: one list call.

    The engine measures every layer for it, so only ``status`` asks, and only
    for a stack that watches some container's layer.
    """
    with engine_errors("list containers with their sizes"):
        found = api.containers(all=True, size=True, filters=filters)
    return {c["Names"][0].lstrip("/"): int(c.get("SizeRw") or 0) for c in found if c.get("Names")}
