"""Volume snapshots as values: what a storage driver took, what a restore did, how long they are kept.

Why a module of its own: a release is image + config + data, and the data part
crosses every layer (a storage driver makes a ``Snapshot``, the record keeps it,
the rollout restores it and the report shows the ``Restored``). They are plain
frozen values, like the rest of the model: no I/O, nothing a driver must import
beyond them.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import field
from typing import Mapping

from ..values import value

__all__ = ["Restored", "Snapshot", "SnapshotRetention", "snapshot_id"]


def snapshot_id(created: float) -> str:
    """A new snapshot id for a snapshot taken at ``created`` (epoch seconds): ``20261207T184500Z-3f2a1c``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(created)) + "-" + secrets.token_hex(3)


@value
class Snapshot:
    """One point-in-time copy of a volume's content, as its storage driver keeps it."""

    #: Unique per volume; sorts by time: ``20261207T184500Z-3f2a1c`` (UTC, then 6 hex).
    id: str
    #: The engine volume's name.
    volume: str
    #: When it was taken, in epoch seconds.
    created: float
    #: Bytes it takes where it is kept (a compressed file; btrfs: the snapshot's content size).
    size: int
    #: Bytes of file content in the volume when it was taken.
    content: int
    #: The driver's own details (``path``, ``sha256``, ``compression``...); never secrets.
    details: Mapping[str, str] = field(default_factory=dict, hash=False)


@value
class Restored:
    """What a restore did."""

    snapshot: Snapshot
    #: Bytes of file content that differed from, or were written since, the snapshot and are gone
    #: (None: the driver cannot tell).
    discarded: int | None
    #: How long the restore took.
    seconds: float


@value
class SnapshotRetention:
    """How many snapshots of a volume are kept (``volumes.<key>.snapshots``): pruned after each good release."""

    #: How many of the newest are kept.
    keep: int = 5
    #: Seconds after which a snapshot is pruned (None: no age limit).
    max_age: float | None = None
