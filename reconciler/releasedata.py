"""A release's data: the snapshots taken of a container's volumes before it is replaced, and their restore.

Rolling back an image and its configuration does not roll back what the new
version wrote: a database migrated on start and then failed its health gate
leaves the old version starting on data it cannot read. A container whose
``update.snapshot`` names volumes gets a ``ReleaseData`` from the executor;
``reconciler.rollout`` calls ``take`` while nothing writes those volumes (the
old container stopped, or paused, or not running) and, when the new container
fails and the rollback puts the old one back, ``restore`` before the old one
starts again. So image, configuration and data return together.

Every snapshot is written to the record (``StackBook.snapshot_taken``) before
the new container starts, and a restore is write-ahead: the row goes to
``restoring`` before the storage driver is asked and to ``restored`` after.
A process killed midway leaves the row ``restoring``; the next pass of the
stack finds it in one indexed read (``StackBook.restoring``) and finishes it
before anything else (``finish_restores``): the storage driver guarantees a
restore run again with the same snapshot completes it.

After a successful release, ``prune`` keeps each volume's snapshots within
its retention (``snapshots: {keep, max_age}``), oldest deleted first, never
the one just taken. Nothing else deletes a snapshot but a person
(``reconcile snapshots delete``): ``destroy --prune-volumes`` keeps them.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable, Sequence

from .drivers import Drivers, RuntimeDriver, StorageDriver
from .errors import PermanentError, ReconcilerError
from .model import DesiredState, Kind, LiveObject, LiveState, Restored, Snapshot, SnapshotRetention
from .ownership import live_driver
from .snapshotrecord import RESTORED, RESTORING, TAKEN, SnapshotRow

__all__ = ["ReleaseData", "data_kept", "data_restored", "expired", "finish_restores", "restore_volumes"]

log = logging.getLogger(__name__)
_PROGRESS_EVERY = 1.0  # seconds between two progress lines of one snapshot or restore
_RUNNING = ("running", "restarting", "paused")


class ReleaseData:
    """The volumes one container's release snapshots (``update.snapshot``), their snapshots, and their restore."""

    def __init__(self, container: str, desired: DesiredState, drivers: Drivers, book: Any | None = None) -> None:
        """``container``: the engine name of the container being replaced (its spec in ``desired``);
        ``book``: the stack's record (``StackBook``; None: nothing is recorded, for tests)."""
        spec = desired.containers[container]
        self.container = container
        self.drivers = drivers
        self.book = book
        self.revision = desired.revision or None
        self.policy = spec.update.restore
        #: (engine volume name, storage driver, retention) of each volume to snapshot, in the spec's order.
        self.volumes = [(desired.volumes[key].name, desired.volumes[key].driver,
                         desired.volumes[key].retention or SnapshotRetention())
                        for key in spec.update.snapshot if key in desired.volumes]
        #: What ``take`` took: (engine volume name, storage driver, snapshot).
        self.taken: list[tuple[str, str, Snapshot]] = []
        #: Seconds the old container was paused for the snapshot (None: it was not paused).
        self.paused: float | None = None
        #: What ``restore`` did.
        self.restored: list[Restored] = []

    def take(self) -> list[tuple[str, Snapshot]]:
        """Snapshot each volume and record it (state ``taken``); nothing may write the volumes meanwhile.

        Raises the storage driver's error on the first failure (snapshots taken
        before it stay, recorded, for retention to prune).
        """
        from_revision = self.book.last_revision() if self.book is not None else None
        for volume, driver, _ in self.volumes:
            storage = _storage(self.drivers, driver)
            started = time.monotonic()
            snapshot = storage.snapshot(volume, progress=_progress(self.drivers, self.container, "snapshot", volume))
            self.taken.append((volume, driver, snapshot))
            if self.book is not None:
                self.book.snapshot_taken(volume, driver, snapshot, container=self.container, revision=self.revision,
                                         from_revision=from_revision)
            _say(self.drivers, self.container, f"snapshot {snapshot.id} of {volume}: {_mib(snapshot.content)} in "
                                               f"{time.monotonic() - started:.2f}s")
        return [(volume, snapshot) for volume, _, snapshot in self.taken]

    def snapshot_first(self, take: Callable[[], object]) -> None:
        """Run ``take`` (``take`` or ``take_paused``) before anything of the release happens; a failure fails the
        change, saying nothing was replaced."""
        try:
            take()
        except ReconcilerError as exc:
            raise PermanentError(f"the snapshot before the release failed, nothing was replaced: {exc}") from exc

    def take_paused(self, runtime: RuntimeDriver, container_id: str) -> list[tuple[str, Snapshot]]:
        """``take`` with the running container ``container_id`` paused, and unpaused whatever happens;
        the pause's length is kept in ``paused`` and shown as a progress line."""
        runtime.pause(container_id)
        started = time.monotonic()
        try:
            return self.take()
        finally:
            try:
                runtime.unpause(container_id)
            finally:
                self.paused = time.monotonic() - started
                _say(self.drivers, self.container, f"paused {self.paused:.2f}s for the snapshot")

    def restores(self, allowed: bool) -> bool:
        """Whether a failed rollout restores the data: allowed (not ``--no-restore``) and ``restore: on-failure``."""
        return allowed and self.policy == "on-failure" and bool(self.taken)

    def restore(self) -> list[Restored]:
        """Put each volume back as its snapshot holds it; no running container may use the volumes."""
        rows = [_row_of(volume, driver, snapshot, self.container) for volume, driver, snapshot in self.taken]
        self.restored = restore_volumes(self.book, self.drivers, rows, container=self.container)
        return self.restored

    def outcome(self, *, restored: bool | None) -> str:
        """What the release did with the data, for the report: ``restored`` true after a restore, false when a
        failed rollout kept the data, None after a successful release."""
        if restored:
            lines = [data_restored(r) for r in self.restored]
        elif restored is False:
            lines = [data_kept(volume, snapshot) for volume, _, snapshot in self.taken]
        else:
            lines = [f"snapshot {volume}: {snapshot.id} ({_mib(snapshot.content)})"
                     for volume, _, snapshot in self.taken]
        if self.paused is not None:
            lines.append(f"paused {self.paused:.2f}s for the snapshot")
        return "; ".join(lines)

    def prune(self) -> None:
        """Delete each volume's snapshots beyond its retention, oldest first, never the one just taken
        (driver first, then record); a failure is logged: the release itself succeeded."""
        if self.book is None:
            return
        kept = {snapshot.id for _, _, snapshot in self.taken}
        for volume, driver, retention in self.volumes:
            for row in expired(self.book.snapshots(volume), retention, keep_ids=kept):
                try:
                    _storage(self.drivers, row.driver or driver).delete_snapshot(row.snapshot)
                    self.book.forget_snapshot(volume, row.snapshot.id)
                except ReconcilerError as exc:
                    log.warning("snapshot %s of %s was not pruned: %s", row.snapshot.id, volume, exc)


def expired(rows: Sequence[SnapshotRow], retention: SnapshotRetention, *, keep_ids: Iterable[str] = (),
            now: float | None = None) -> list[SnapshotRow]:
    """The rows (oldest first) beyond ``retention.keep`` or older than ``retention.max_age``, never one of
    ``keep_ids``, never one whose restore is under way."""
    now = time.time() if now is None else now
    keep_ids = set(keep_ids)
    candidates = [r for r in rows if r.state != RESTORING]
    beyond = len(candidates) - max(retention.keep, 1)
    out = []
    for index, row in enumerate(candidates):
        too_many = index < beyond
        too_old = retention.max_age is not None and now - row.snapshot.created > retention.max_age
        if (too_many or too_old) and row.snapshot.id not in keep_ids:
            out.append(row)
    return out


def restore_volumes(book: Any | None, drivers: Drivers, rows: Sequence[SnapshotRow], *,
                    stop: Callable[[], None] | None = None, start: Callable[[], None] | None = None,
                    container: str = "") -> list[Restored]:
    """Restore each row's volume from its snapshot, write-ahead in ``book`` (``restoring`` → ``restored``).

    ``stop`` is called once before the first restore (stop the containers
    using the volumes: none may run during a restore), ``start`` once after
    the last succeeded. A failure raises, leaving that row ``restoring``: the
    next pass of the stack finishes it (``finish_restores``). Used by a failed
    release, ``reconcile snapshots restore`` and ``rollback --with-data``.
    """
    if stop is not None and rows:
        stop()
    done = []
    for row in rows:
        if book is not None:
            book.snapshot_state(row.volume, row.snapshot.id, RESTORING)
        restored = _storage(drivers, row.driver).restore(
            row.volume, row.snapshot, progress=_progress(drivers, container or row.volume, "restore", row.volume))
        if book is not None:
            book.snapshot_state(row.volume, row.snapshot.id, RESTORED)
        _say(drivers, container or row.volume, data_restored(restored))
        done.append(restored)
    if start is not None and rows:
        start()
    return done


def finish_restores(book: Any, drivers: Drivers, live: LiveState) -> tuple[str, ...]:
    """Finish the restores a killed pass left ``restoring`` (one indexed read of ``book`` finds none on any
    ordinary pass): the stack's containers using those volumes are stopped, the volumes restored, and the
    containers started again; return what was restored, for the report. Raise, saying so, when that fails."""
    rows = book.restoring()
    if not rows:
        return ()
    volumes = {row.volume for row in rows}
    users = [c for c in live.containers.values()
             if c.state in _RUNNING and volumes & set(c.details.get("volumes", ()))]

    def runtime(container: LiveObject) -> RuntimeDriver:
        driver = drivers.get(Kind.CONTAINER, live_driver(Kind.CONTAINER, container))
        assert isinstance(driver, RuntimeDriver)
        return driver

    def stop() -> None:
        for container in users:
            if container.state == "paused":
                runtime(container).unpause(container.id)
            runtime(container).stop(container.id)

    def start() -> None:
        for container in users:
            runtime(container).start(container.name)

    try:
        restored = restore_volumes(book, drivers, rows, stop=stop, start=start)
    except ReconcilerError as exc:
        names = ", ".join(f"{row.volume} (snapshot {row.snapshot.id})" for row in rows)
        raise PermanentError(f"an interrupted restore of {names} could not be finished: {exc}") from exc
    return tuple(f"finished an interrupted restore: {data_restored(r)}" for r in restored)


def data_restored(restored: Restored) -> str:
    """``data restored: <volume> from snapshot <id> (taken <time>, <N MiB> written since discarded)``."""
    snapshot = restored.snapshot
    discarded = "what was written since" if restored.discarded is None else f"{_mib(restored.discarded)} written since"
    return (f"data restored: {snapshot.volume} from snapshot {snapshot.id} "
            f"(taken {_when(snapshot.created)}, {discarded} discarded)")


def data_kept(volume: str, snapshot: Snapshot) -> str:
    """``data kept: <volume> (snapshot <id> not restored)``."""
    return f"data kept: {volume} (snapshot {snapshot.id} not restored)"


def _row_of(volume: str, driver: str, snapshot: Snapshot, container: str) -> SnapshotRow:
    return SnapshotRow(volume, driver, snapshot, container, None, None, TAKEN, "")


def _storage(drivers: Drivers, name: str) -> StorageDriver:
    driver = drivers.get(Kind.VOLUME, name)
    assert isinstance(driver, StorageDriver)
    return driver


def _progress(drivers: Drivers, name: str, verb: str, volume: str) -> Callable[[int, int | None], None] | None:
    """A storage driver's ``progress(done, total)`` as a progress line about ``name``, at most one a second."""
    if drivers.context.progress is None:
        return None
    last = [time.monotonic()]

    def report(done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_EVERY:
            last[0] = now
            _say(drivers, name, f"{verb} of {volume}: {_mib(done)}" + (f" of {_mib(total)}" if total else ""))
    return report


def _say(drivers: Drivers, name: str, line: str) -> None:
    if drivers.context.progress is not None:
        drivers.context.progress(name, line)


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))
