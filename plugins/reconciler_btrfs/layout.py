"""Where a btrfs pool keeps what, and how a restore's swap left halfway is settled: pure, no I/O.

Why a module of its own: the paths and the decisions after a crash are the
part of the driver that must be right without a btrfs to try them on, so they
are plain functions of names and of what exists, unit-tested exhaustively.

A pool is one directory ``ROOT`` on a mounted btrfs::

    ROOT/volumes/VOLUME                  the volume: a subvolume, bound to the engine volume VOLUME
    ROOT/volumes/VOLUME.restoring        a restore's writable copy of the snapshot, before it is swapped in
    ROOT/volumes/VOLUME.old-ID           the content a restore from snapshot ID replaced, until it is deleted
    ROOT/snapshots/VOLUME/ID             a snapshot: a read-only subvolume
    ROOT/snapshots/VOLUME/ID.json        its metadata, written last: a snapshot is listed only once it exists
    ROOT/.lock                           held (flock) by every call, so two never interleave

A restore is four steps: (1) snapshot ID, writable, to ``VOLUME.restoring``;
(2) rename ``VOLUME`` to ``VOLUME.old-ID``; (3) rename ``VOLUME.restoring`` to
``VOLUME``; (4) delete ``VOLUME.old-ID``. Renames are atomic, so whatever a
crash leaves, ``settle`` puts the volume back to either its old or its new
content, never a mix; a restore run again then does all four steps anew.
"""
from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass
from typing import Collection

__all__ = [
    "NAME",
    "OLD",
    "ROOT_ENV",
    "RESTORING",
    "Pool",
    "Step",
    "StepKind",
    "is_snapshot_id",
    "name_problems",
    "pool_of",
    "settle_steps",
]

NAME = "btrfs"  # the driver's name, in specs (driver: btrfs) and in its volumes' io.reconciler.driver label
ROOT_ENV = "RECONCILER_BTRFS_ROOT"  # the pool's root when a volume's options name none
RESTORING = ".restoring"
OLD = ".old-"
_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$")


def is_snapshot_id(text: str) -> bool:
    """Whether ``text`` has the shape of a snapshot id (what ``reconciler.sdk.snapshot_id`` makes)."""
    return bool(_ID.match(text))


def name_problems(name: str) -> list[str]:
    """Why the engine volume ``name`` cannot be a btrfs volume: its path would be another volume's swap name."""
    if name.endswith(RESTORING) or OLD in name:
        return [f"a btrfs volume's name may not end in {RESTORING!r} or contain {OLD!r} "
                f"(the driver's names for a restore in progress): {name!r}"]
    return []


@dataclass(frozen=True)
class Pool:
    """The paths of one pool: ``root`` is an absolute directory on a mounted btrfs."""

    root: str

    @property
    def volumes(self) -> str:
        return os.path.join(self.root, "volumes")

    @property
    def snapshots(self) -> str:
        return os.path.join(self.root, "snapshots")

    def volume(self, volume: str) -> str:
        """The subvolume holding ``volume``'s content (the engine volume's bind ``device``)."""
        return os.path.join(self.volumes, volume)

    def restoring(self, volume: str) -> str:
        return os.path.join(self.volumes, volume + RESTORING)

    def old(self, volume: str, snapshot_id: str) -> str:
        return os.path.join(self.volumes, f"{volume}{OLD}{snapshot_id}")

    def snapshot_dir(self, volume: str) -> str:
        return os.path.join(self.snapshots, volume)

    def snapshot(self, volume: str, snapshot_id: str) -> str:
        return os.path.join(self.snapshots, volume, snapshot_id)

    def metadata(self, volume: str, snapshot_id: str) -> str:
        return os.path.join(self.snapshots, volume, snapshot_id + ".json")

    @property
    def lock(self) -> str:
        return os.path.join(self.root, ".lock")

    def olds(self, volume: str, entries: Collection[str]) -> list[str]:
        """The snapshot ids of the ``VOLUME.old-ID`` entries among ``entries`` (names in ``volumes``), sorted."""
        prefix = volume + OLD
        return sorted(name[len(prefix):] for name in entries
                      if name.startswith(prefix) and is_snapshot_id(name[len(prefix):]))


def pool_of(device: str, volume: str) -> Pool | None:
    """The pool whose volume ``volume`` is bound to ``device`` (``ROOT/volumes/VOLUME``), or None if it is not one."""
    path = os.path.normpath(device)
    parent, base = os.path.split(path)
    if not os.path.isabs(path) or base != volume or os.path.basename(parent) != "volumes":
        return None
    return Pool(os.path.dirname(parent))


class StepKind(enum.Enum):
    """What ``settle`` does to one leftover of a swap."""

    DELETE = "delete"  # a subvolume that is neither the volume's content nor needed to make it
    RENAME = "rename"  # a subvolume that becomes the volume


@dataclass(frozen=True)
class Step:
    kind: StepKind
    source: str
    dest: str = ""


def settle_steps(pool: Pool, volume: str, *, has_volume: bool, has_restoring: bool,
                 olds: Collection[str]) -> list[Step]:
    """What to do, in order, so that a swap a crash left halfway is finished or undone.

    - the volume and the copy exist (crash after step 1): undo, delete the copy;
    - the copy and an old one exist, not the volume (after step 2): finish, the copy becomes the volume;
    - the volume and an old one exist (after step 3): finish, delete the old one;
    - only an old one exists (the copy vanished by hand): undo, the newest old one becomes the volume again;
    - only the copy exists (the volume was deleted meanwhile): delete it, the volume stays gone.
    Nothing left over: no step.
    """
    steps: list[Step] = []
    olds = sorted(olds)
    current = pool.volume(volume)
    if not has_volume and has_restoring and olds:
        steps.append(Step(StepKind.RENAME, pool.restoring(volume), current))
        has_volume, has_restoring = True, False
    elif not has_volume and olds:
        steps.append(Step(StepKind.RENAME, pool.old(volume, olds[-1]), current))
        has_volume, olds = True, olds[:-1]
    if has_restoring:
        steps.append(Step(StepKind.DELETE, pool.restoring(volume)))
    steps += [Step(StepKind.DELETE, pool.old(volume, old)) for old in olds]
    return steps
