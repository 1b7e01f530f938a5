"""The ``btrfs`` storage driver: each volume a btrfs subvolume, bound to an engine volume, snapshotted in an instant.

Why it wraps the ``local`` driver: a btrfs volume *is* an engine volume of
the ``local`` driver bound to a directory (``type=none, o=bind,
device=ROOT/volumes/NAME``), so containers mount it by name like any other
volume. Listing, creating and removing that engine volume is the local
driver's code, reached through the registry (``registry.lookup``: plugins
never import each other) and told to claim the volumes labelled ``btrfs``.
What this driver adds is the subvolume under it (``pool``): made before the
engine volume, deleted after it, and snapshotted, restored and listed without
the engine at all.

The subvolumes are made by this process with btrfs-progs, so the reconciler
must run on the engine's host: an engine URL that is not local (``tcp://`` to
another host, ``ssh://``) is refused with a ``PermanentError`` on every call
that would touch a subvolume. ``observe`` stays an engine read, and works anywhere.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from reconciler.sdk import (DriverContext, LiveObject, PermanentError, Restored, Snapshot, StorageDriver,
                            VolumeSpec)
from reconciler.sdk.labels import DRIVER, STACK

from .layout import NAME, ROOT_ENV, Pool, name_problems, pool_of
from .pool import SubvolumePool

__all__ = ["BtrfsVolumeDriver", "engine_options", "engine_problem", "root_of"]

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
Progress = Callable[[int, "int | None"], None]  # what reconciler.drivers calls Progress


def root_of(options: Mapping[str, str]) -> str | None:
    """The pool's root a volume's ``options`` name: ``root``, else ``$RECONCILER_BTRFS_ROOT``; None if neither."""
    return options.get("root") or os.environ.get(ROOT_ENV) or None


def engine_options(path: str) -> tuple[tuple[str, str], ...]:
    """The ``local`` driver's options that bind an engine volume to the subvolume ``path`` (sorted pairs)."""
    return (("device", path), ("o", "bind"), ("type", "none"))


def engine_problem(url: str | None) -> str | None:
    """Why the engine at ``url`` (None: ``DOCKER_HOST``, else the local socket) cannot have btrfs volumes, or None."""
    url = url or os.environ.get("DOCKER_HOST") or ""
    if not url or url.startswith(("unix://", "npipe://")):
        return None
    parts = urlsplit(url)
    if parts.scheme in ("tcp", "http", "https") and parts.hostname in _LOCAL_HOSTS:
        return None
    return (f"the btrfs storage driver makes subvolumes on the reconciler's own host, so the engine must run there "
            f"too; {parts.scheme}://{parts.hostname or ''} is not this host")


class BtrfsVolumeDriver(StorageDriver):
    """Engine volumes bound to btrfs subvolumes; snapshots are read-only subvolumes beside them."""

    takes_snapshots = True

    def __init__(self, context: DriverContext, local: StorageDriver) -> None:
        self.context = context
        self.local = local
        # The local driver reports the stack's volumes whose io.reconciler.driver label it claims: ours.
        local.claims = frozenset({NAME})  # type: ignore[attr-defined]

    # --- the engine volume -------------------------------------------------------------------

    def observe(self, stack: str, wanted: Mapping[str, VolumeSpec]) -> list[LiveObject]:
        """The local driver's answer for volumes labelled ``btrfs``, with each wanted one's subvolume path.

        A wanted volume whose subvolume is gone (or half swapped by a killed
        restore) is left out, so the plan creates it: ``create`` settles the swap
        or makes the subvolume, and the engine answers with the volume it has.
        """
        out = []
        for live in self.local.observe(stack, wanted):
            spec = wanted.get(live.name)
            root = root_of(dict(spec.options)) if live.owned and spec is not None else None
            if root is not None:
                path = Pool(root).volume(live.name)
                if not os.path.isdir(path):
                    continue
                live = dataclasses.replace(live, details={**live.details, "path": path}, info={"path": path})
            out.append(live)
        return out

    def differences(self, spec: VolumeSpec, live: LiveObject) -> None:
        """Cannot tell: no other tool makes a btrfs volume of this driver (adopting takes it over as it is)."""
        return None

    def create(self, spec: VolumeSpec, labels: Mapping[str, str]) -> str:
        """Make the subvolume ``ROOT/volumes/NAME`` (kept if it exists), then the engine volume bound to it."""
        pool = self._pool(spec)
        path = SubvolumePool(pool).create(spec.name)
        bound = dataclasses.replace(spec, driver="local", options=engine_options(path))
        return self.local.create(bound, labels)

    def delete(self, live: LiveObject) -> None:
        """Remove the engine volume, then its subvolume and data (if this stack's btrfs volume); snapshots stay."""
        self._refuse_remote()
        volume = self._inspect(live.name)
        if volume is None:
            return
        self.local.delete(live)
        labels = volume.get("Labels") or {}
        pool = pool_of((volume.get("Options") or {}).get("device", ""), live.name)
        if pool is not None and labels.get(DRIVER) == NAME and labels.get(STACK) == self.context.stack:
            SubvolumePool(pool).delete(live.name)

    # --- snapshots ---------------------------------------------------------------------------

    def snapshot(self, volume: str, *, progress: Progress | None = None) -> Snapshot:
        """A read-only snapshot of the volume's subvolume, copy-on-write: instant whatever its size."""
        return SubvolumePool(self._pool_of_volume(volume)).take(volume, progress=progress)

    def restore(self, volume: str, snapshot: Snapshot, *, progress: Progress | None = None) -> Restored:
        """Swap the volume's subvolume for a writable snapshot of ``snapshot`` (see ``layout``: crash-safe)."""
        pool = self._pool_of_volume(volume)
        if snapshot.details.get("root", pool.root) != pool.root:
            raise PermanentError(f"snapshot {snapshot.id} is kept in {snapshot.details['root']}, "
                                 f"not in volume {volume}'s pool {pool.root}: it cannot be swapped in")
        return SubvolumePool(pool).restore(volume, snapshot, progress=progress)

    def list_snapshots(self, volume: str) -> list[Snapshot]:
        """The volume's snapshots, oldest first (those of a volume that is gone: in ``$RECONCILER_BTRFS_ROOT``)."""
        pool = self._pool_of_volume(volume, missing_ok=True)
        return SubvolumePool(pool).list(volume) if pool is not None else []

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        """Delete the snapshot's metadata, then its read-only subvolume; one already gone is fine."""
        self._refuse_remote()
        root = snapshot.details.get("root") or os.environ.get(ROOT_ENV)
        if not root:
            raise PermanentError(f"snapshot {snapshot.id} of volume {snapshot.volume} names no btrfs pool")
        SubvolumePool(Pool(root)).delete_snapshot(snapshot)

    # --- where a volume lives ----------------------------------------------------------------

    def _refuse_remote(self) -> None:
        problem = engine_problem(self.context.engine_url)
        if problem is not None:
            raise PermanentError(problem)

    def _pool(self, spec: VolumeSpec) -> Pool:
        self._refuse_remote()
        problems = name_problems(spec.name)
        root = root_of(dict(spec.options))
        if root is None:
            problems.append(f"no pool: set options.root or {ROOT_ENV}")
        if problems:
            raise PermanentError(f"volume {spec.name}: " + "; ".join(problems))
        return Pool(root)

    def _pool_of_volume(self, volume: str, *, missing_ok: bool = False) -> Pool | None:
        """The pool of the engine volume ``volume``, from the subvolume it is bound to (one inspect)."""
        self._refuse_remote()
        found = self._inspect(volume)
        if found is None:
            if missing_ok:
                return Pool(os.environ[ROOT_ENV]) if os.environ.get(ROOT_ENV) else None
            raise PermanentError(f"no volume {volume} on the engine")
        # What the volume is bound to says where its subvolume is; whoever labelled it (the core, a bench, a
        # test) does not matter here: only delete, which destroys data, asks the labels.
        options = found.get("Options") or {}
        pool = pool_of(options.get("device", ""), volume)
        if found.get("Driver") != "local" or options.get("o") != "bind" or pool is None:
            raise PermanentError(f"volume {volume} is not a btrfs volume (not bound to ROOT/volumes/{volume})")
        return pool

    def _inspect(self, volume: str) -> dict[str, Any] | None:
        from reconciler.sdk.docker import api_client, engine_errors

        with engine_errors(f"inspect volume {volume}", missing_ok=True):
            return api_client(self.context).inspect_volume(volume)
        return None
