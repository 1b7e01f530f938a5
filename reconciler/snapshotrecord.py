"""The record of a stack's volume snapshots: which release took which snapshot, and restores under way.

A release that snapshots its data (``update.snapshot``, issue 26) writes one
row per snapshot before the new container starts: the storage driver keeps
the content, the record says which pass took it (``revision``, the revision
that pass applied) and what the stack ran before (``from_revision``), so
``rollback --to REV --with-data`` finds the snapshot per volume whose
``from_revision`` is REV. A restore is write-ahead: the row goes to
``restoring`` before the driver is asked and to ``restored`` after, so a
pass that finds a ``restoring`` row knows a process died mid-restore and
finishes it (``reconciler.releasedata``). Only ids, sizes, times and the
driver's own details are kept: never the content, never a secret.

``StackBook`` (``reconciler.stackbook``) carries these methods; the table is
``reconciler.statedb``'s migration 8.
"""
from __future__ import annotations

import json
import time
from typing import Any

from .model import Snapshot
from .values import value

__all__ = ["RESTORED", "RESTORING", "SNAPSHOT_STATES", "TAKEN", "SnapshotRecord", "SnapshotRow"]

TAKEN, RESTORING, RESTORED = "taken", "restoring", "restored"
SNAPSHOT_STATES = (TAKEN, RESTORING, RESTORED)

_COLUMNS = ("volume, driver, snapshot_id, created, size, content, details, container, revision, from_revision, "
            "state, taken_at")


@value
class SnapshotRow:
    """One snapshot in the record."""

    #: The engine volume's name.
    volume: str
    #: The storage driver that keeps it (the one to restore or delete it with).
    driver: str
    snapshot: Snapshot
    #: The container (engine name) whose release took it.
    container: str
    #: The revision the pass that took it applied (None: not recorded, e.g. outside git).
    revision: str | None
    #: The revision the stack ran before that pass (its last recorded sync's; None: none recorded).
    from_revision: str | None
    #: ``taken``, ``restoring`` (a restore under way, or killed midway) or ``restored``.
    state: str
    #: When it was recorded: UTC, ISO 8601, like the record's other times.
    taken_at: str


class SnapshotRecord:
    """The snapshot methods of ``StackBook``: written at once (write-ahead), each in its own transaction."""

    store: Any
    engine: str
    stack: str

    def _now_with_held(self, *statements: tuple[str, tuple]) -> None:  # StackBook's
        raise NotImplementedError

    def snapshot_taken(self, volume: str, driver: str, snapshot: Snapshot, *, container: str,
                       revision: str | None, from_revision: str | None) -> None:
        """Record a snapshot a release took of ``volume`` (state ``taken``), before the new container starts."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._now_with_held(
            ("INSERT OR IGNORE INTO stacks (engine, stack, first_seen) VALUES (?, ?, ?)",
             (self.engine, self.stack, now)),
            ("INSERT OR REPLACE INTO snapshots (engine, stack, volume, snapshot_id, driver, created, size, content, "
             "details, container, revision, from_revision, state, taken_at) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             (self.engine, self.stack, volume, snapshot.id, driver, float(snapshot.created), int(snapshot.size),
              int(snapshot.content), json.dumps(dict(snapshot.details), sort_keys=True), container, revision,
              from_revision, TAKEN, now)))

    def snapshot_state(self, volume: str, snapshot_id: str, state: str) -> None:
        """Move a snapshot's row to ``state`` (``restoring`` before a restore, ``restored`` after, or ``taken``)."""
        if state not in SNAPSHOT_STATES:
            raise ValueError(f"snapshot state {state!r} is not one of {', '.join(SNAPSHOT_STATES)}")
        self._now_with_held(("UPDATE snapshots SET state = ? WHERE engine = ? AND stack = ? AND volume = ? "
                             "AND snapshot_id = ?", (state, self.engine, self.stack, volume, snapshot_id)))

    def snapshots(self, volume: str | None = None) -> list[SnapshotRow]:
        """The stack's recorded snapshots (of ``volume`` only, when given), oldest first."""
        return self._snapshot_rows("(?1 IS NULL OR volume = ?1)", (volume,))

    def restoring(self) -> list[SnapshotRow]:
        """The stack's snapshots whose restore is under way or was killed midway (one indexed read)."""
        return self._snapshot_rows("state = 'restoring'", ())

    def last_revision(self) -> str | None:
        """The revision of the stack's last recorded sync (None: none, or outside git): a snapshot's
        ``from_revision``."""
        rows = self.store._read("SELECT revision FROM syncs WHERE engine = ? AND stack = ? ORDER BY id DESC LIMIT 1",
                                (self.engine, self.stack))
        return rows[0][0] or None if rows else None

    def forget_snapshot(self, volume: str, snapshot_id: str) -> None:
        """Take a snapshot out of the record (its driver deleted it, or it is gone)."""
        self._now_with_held(("DELETE FROM snapshots WHERE engine = ? AND stack = ? AND volume = ? "
                             "AND snapshot_id = ?", (self.engine, self.stack, volume, snapshot_id)))

    def _snapshot_rows(self, where: str, params: tuple) -> list[SnapshotRow]:
        at = len(params)
        rows = self.store._read(
            f"SELECT {_COLUMNS} FROM snapshots WHERE engine = ?{at + 1} AND stack = ?{at + 2} AND {where} "
            "ORDER BY created, snapshot_id", (*params, self.engine, self.stack))
        return [_row(*row) for row in rows]


def _row(volume: str, driver: str, snapshot_id: str, created: float, size: int, content: int, details: str,
         container: str, revision: str | None, from_revision: str | None, state: str, taken_at: str) -> SnapshotRow:
    try:
        kept = {str(k): str(v) for k, v in (json.loads(details) or {}).items()}
    except (ValueError, AttributeError):
        kept = {}
    snapshot = Snapshot(id=snapshot_id, volume=volume, created=created, size=size, content=content, details=kept)
    return SnapshotRow(volume, driver, snapshot, container, revision, from_revision, state, taken_at)
