"""A stack's volume snapshots handled by hand: listed, restored and deleted (``reconcile snapshots``), and the
ones a ``rollback --with-data`` brings back.

A release records the snapshots it takes (``StackBook.snapshot_taken``); the
storage driver keeps them. People ask about both at once: the record says
which pass took a snapshot and for which container and revision, the driver
which snapshots exist. So a listing is the record's rows plus any snapshot the
driver holds that the record does not know (state ``unrecorded``), and
nothing is hidden. A restore touches only what the stack owns: a volume the
record lists, and of the running containers that mount it only those the
stack's labels and record both claim; they are stopped first and started again
after (``releasedata.restore_volumes`` keeps the write-ahead row). Deleting is
the driver's first, then the record's, so a snapshot is never forgotten while
it still takes space.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .defaults import DEFAULT_DRIVERS
from .errors import ReconcilerError
from .labels import is_owned
from .lock import stack_lock
from .model import Kind, LiveObject, Restored
from .stackbook import SnapshotRow

__all__ = ["UNRECORDED", "Restoration", "StackSnapshots", "for_rollback", "open_snapshots", "restore_for_rollback"]

#: The state of a snapshot the driver holds and the record does not know.
UNRECORDED = "unrecorded"


def for_rollback(rows: Sequence[SnapshotRow], revision: str) -> list[SnapshotRow]:
    """What ``rollback --to REVISION --with-data`` restores: per volume, the newest recorded snapshot taken when
    the stack left ``revision`` (its ``from_revision``), volumes in name order."""
    chosen: dict[str, SnapshotRow] = {}
    for row in rows:
        if row.state == UNRECORDED or row.from_revision != revision:
            continue
        best = chosen.get(row.volume)
        if best is None or (row.snapshot.created, row.snapshot.id) > (best.snapshot.created, best.snapshot.id):
            chosen[row.volume] = row
    return [chosen[volume] for volume in sorted(chosen)]


def users(volume: str, containers: Sequence[LiveObject], stack: str, recorded: set[str]) -> list[LiveObject]:
    """The running containers that mount ``volume`` and that the stack owns: its labels claim them and its
    record lists their ids (another stack's or a person's container is never stopped)."""
    return [c for c in containers if c.state in ("running", "restarting", "paused")
            and volume in (c.details.get("volumes") or ()) and is_owned(c.labels, stack, kind=Kind.CONTAINER)
            and c.id in recorded]


@dataclass
class Restoration:
    """What a restore did: each volume's ``Restored``, and the containers stopped for it and started again."""

    restored: list[Restored] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)


class StackSnapshots:
    """The snapshots of one stack's volumes on one engine: the record (``book``) and the storage drivers."""

    def __init__(self, book: Any, drivers: Any, *, engine: str | None, keys: Mapping[str, str] | None = None,
                 runtime: str | None = None) -> None:
        """``book``: the stack's ``StackBook``; ``engine``: the identity its lock is keyed on; ``keys``: the spec's
        volume keys → engine names (a volume may then be named by either); ``runtime``: the stack's runtime
        driver (default: the default one), whose containers a restore stops and starts."""
        self.book, self.drivers, self.engine = book, drivers, engine
        self.runtime = runtime or DEFAULT_DRIVERS["containers"]
        self.stack: str = book.stack
        self.keys = dict(keys or {})

    def owned(self) -> dict[str, str]:
        """The volumes the record says the stack created or adopted: engine name → storage driver."""
        return {row.name: row.driver or DEFAULT_DRIVERS["volumes"] for row in self.book.objects()
                if row.kind is Kind.VOLUME and row.object_id}

    def name_of(self, given: str) -> str:
        """The engine name of the volume ``given`` names: its key in the spec (without a spec: the key the
        stack's own volumes carry in their labels, one list call), else ``given`` itself."""
        if given in self.keys or given in self.owned():
            return self.keys.get(given, given)
        for driver in dict.fromkeys(self.owned().values()):
            try:
                found = self.drivers.get(Kind.VOLUME, driver).observe(self.stack, {})
            except ReconcilerError:  # its plugin is not loaded here: the name is taken as given
                continue
            for live in found:
                if live.owned and live.key == given:
                    return live.name
        return given

    def volume(self, given: str) -> str:
        """The engine name of the stack's volume ``given`` (its spec key or its name); refused when the stack does
        not own it (it may hold someone else's data)."""
        name = self.name_of(given)
        owned = self.owned()
        if name not in owned:
            listed = ", ".join(sorted(owned)) or "none"
            raise ReconcilerError(f"volume {given} is not a volume stack {self.stack} owns (its record lists: "
                                  f"{listed}): refused")
        return name

    def _storage(self, driver: str):
        try:
            found = self.drivers.get(Kind.VOLUME, driver)
        except ReconcilerError:  # its plugin is not loaded here: the record's rows still show
            return None
        return found if getattr(found, "takes_snapshots", False) else None

    def snapshots(self, volume: str | None = None) -> list[SnapshotRow]:
        """Every snapshot of the stack's volumes (of ``volume`` only, an engine name, when given): the record's
        rows, and the ones the driver holds that the record does not know (``UNRECORDED``); each volume's oldest
        first."""
        rows = list(self.book.snapshots(volume))
        known = {(row.volume, row.snapshot.id) for row in rows}
        volumes = {**self.owned(), **{row.volume: row.driver for row in rows}}
        for name, driver_name in sorted(volumes.items()):
            driver = self._storage(driver_name) if volume in (None, name) else None
            for snapshot in driver.list_snapshots(name) if driver is not None else ():
                if (name, snapshot.id) not in known:
                    rows.append(SnapshotRow(name, driver_name, snapshot, "", None, None, UNRECORDED,
                                            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(snapshot.created))))
        return sorted(rows, key=lambda row: (row.volume, row.snapshot.created, row.snapshot.id))

    def chosen(self, volume: str, snapshot_ids: Sequence[str] = ()) -> list[SnapshotRow]:
        """The snapshots of ``volume`` named by ``snapshot_ids`` (none named: its newest); an id it does not have
        is refused, naming those it has."""
        rows = self.snapshots(volume)
        if not rows:
            raise ReconcilerError(f"volume {volume} of stack {self.stack} has no snapshot")
        if not snapshot_ids:
            return [rows[-1]]
        by_id = {row.snapshot.id: row for row in rows}
        unknown = [given for given in snapshot_ids if given not in by_id]
        if unknown:
            raise ReconcilerError(f"volume {volume} of stack {self.stack} has no snapshot {', '.join(unknown)} "
                                  f"(its snapshots: {', '.join(by_id)})")
        return [by_id[given] for given in dict.fromkeys(snapshot_ids)]

    def restore(self, rows: Sequence[SnapshotRow], *, start_again: bool = True,
                lock_timeout: float = 10.0) -> Restoration:
        """Restore each row's volume from its snapshot, holding the stack's lock: the stack's running containers
        that mount one are stopped first and (``start_again``) started after. A snapshot the record did not know
        is recorded first, so its restore has its write-ahead row like any other.

        A restore that fails leaves the containers stopped (a half-restored volume must not be served); the
        record's ``restoring`` row makes the stack's next pass finish it.
        """
        from .releasedata import restore_volumes

        done = Restoration()
        with stack_lock(self.stack, self.engine, timeout=lock_timeout):
            for row in rows:
                if row.state == UNRECORDED:
                    self.book.snapshot_taken(row.volume, row.driver, row.snapshot, container="", revision=None,
                                             from_revision=None)
            runtime = self.drivers.get(Kind.CONTAINER, self.runtime)
            recorded = {o.object_id for o in self.book.objects() if o.kind is Kind.CONTAINER and o.object_id}
            live = runtime.observe(self.stack, {})
            using = {c.id: c for row in rows for c in users(row.volume, live, self.stack, recorded)}
            say = self.drivers.context.progress or (lambda name, line: None)

            def stop() -> None:
                for container in using.values():
                    if container.state == "paused":
                        runtime.unpause(container.id)
                    runtime.stop(container.id)
                    done.stopped.append(container.name)
                    say(container.name, "stopped: it mounts a volume being restored")

            def start() -> None:
                for container in using.values():
                    runtime.start(container.name)
                    done.started.append(container.name)
                    say(container.name, "started again")

            done.restored = restore_volumes(self.book, self.drivers, rows, stop=stop,
                                            start=start if start_again else None)
        return done

    def delete(self, volume: str, snapshot_ids: Sequence[str]) -> list[str]:
        """Delete these snapshots of ``volume``: each by its driver, then from the record; the ids deleted."""
        rows = self.chosen(volume, snapshot_ids)
        for row in rows:
            driver = self._storage(row.driver)
            if driver is None:
                raise ReconcilerError(f"snapshot {row.snapshot.id} of volume {volume}: its storage driver "
                                      f"{row.driver!r} is not loaded here (or takes no snapshots): not deleted")
            driver.delete_snapshot(row.snapshot)
            self.book.forget_snapshot(row.volume, row.snapshot.id)
        return [row.snapshot.id for row in rows]


def open_snapshots(reconciler: Any, stack: str, *, runtime: str | None = None,
                   keys: Mapping[str, str] | None = None) -> StackSnapshots:
    """The snapshots of ``stack`` on ``reconciler``'s engine (one ``/info`` for the engine's identity, which keys
    the record and the lock, as an apply's)."""
    drivers = reconciler.drivers(stack)
    engine = reconciler.engine_identity(drivers, runtime)
    return StackSnapshots(reconciler.book(stack, engine), drivers, engine=engine, keys=keys, runtime=runtime)


def restore_for_rollback(reconciler: Any, stack: str, revision: str, *, runtime: str | None = None,
                         lock_timeout: float = 10.0) -> Restoration:
    """``rollback --to REVISION --with-data``: restore each volume from the newest snapshot taken when ``stack``
    left ``revision`` (``for_rollback``), its running containers stopped first and left stopped: the pass that
    follows applies ``revision``'s containers onto that data (a newer container started on it again could
    migrate it anew). Refused, nothing touched, when the record holds no such snapshot."""
    snaps = open_snapshots(reconciler, stack, runtime=runtime)
    rows = for_rollback(snaps.book.snapshots(), revision)
    if not rows:
        raise ReconcilerError(f"no snapshot was taken when {stack} left {revision[:12]}: its data cannot be "
                              "rolled back (release the stack, or roll back without --with-data)")
    return snaps.restore(rows, start_again=False, lock_timeout=lock_timeout)
