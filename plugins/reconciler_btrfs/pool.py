"""A btrfs pool's volumes and snapshots on the host: subvolumes made, snapshotted, swapped and deleted.

Why a module apart from the driver: the driver speaks to the engine (the
volume it binds, the labels), this module only to the filesystem, through
``progs`` and a few renames. Every call takes the pool's lock (a ``flock``
that dies with its process; one per pool, not per volume, so no lock file is
left behind by a volume that is gone: each call holds it for milliseconds,
the longest being a restore's count of what it discards) and first settles what a killed call left: a
restore's swap half done (see ``layout``), a snapshot subvolume whose
metadata was never written, metadata whose subvolume is gone. So a snapshot
killed midway is never listed, and a restore killed midway leaves the volume
whole, its old content or its new, and completes when run again.

Sizes come from one walk of the snapshot (``lstat`` of every entry, no file
read): ``content`` is the bytes of its regular files, ``size`` what they
occupy (``st_blocks``), as ``du`` counts. Not ``btrfs filesystem du``: it
reads every file's extent map (slower) and counts small files stored inline
as nothing; not qgroups: they cost every write on the whole filesystem.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Callable, Iterator

from reconciler.sdk import DriverError, PermanentError, Restored, Snapshot, TemporaryError, snapshot_id

from . import progs
from .layout import Pool, StepKind, is_snapshot_id, settle_steps

__all__ = ["SubvolumePool", "file_bytes"]

Progress = Callable[[int, "int | None"], None]  # what reconciler.drivers calls Progress


@contextmanager
def _os_errors(action: str) -> Iterator[None]:
    """An ``OSError`` as the project's error: busy is worth another try, the rest is not."""
    try:
        yield
    except OSError as exc:
        error = TemporaryError if exc.errno in (errno.EBUSY, errno.EAGAIN, errno.EINTR) else PermanentError
        raise error(f"{action}: {exc.strerror or exc}") from None


def file_bytes(path: str) -> tuple[int, int, dict[str, tuple[int, int]]]:
    """One walk of ``path``: bytes of regular-file content, bytes they occupy, and (size, mtime_ns) by relative path."""
    content = occupied = 0
    files: dict[str, tuple[int, int]] = {}
    for folder, _dirs, names in os.walk(path):
        for name in names:
            full = os.path.join(folder, name)
            try:
                info = os.lstat(full)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                content += info.st_size
                occupied += info.st_blocks * 512
                files[os.path.relpath(full, path)] = (info.st_size, info.st_mtime_ns)
    return content, occupied, files


class SubvolumePool:
    """The volumes and snapshots under one ``Pool``."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    @contextmanager
    def locked(self, volume: str) -> Iterator[None]:
        """Hold the pool's lock, after settling what a killed call left of ``volume``."""
        with _os_errors(f"lock volume {volume}"):
            for folder in (self.pool.volumes, self.pool.snapshots):
                os.makedirs(folder, mode=0o700, exist_ok=True)
            fd = os.open(self.pool.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with _os_errors(f"settle volume {volume}"):
                self._settle(volume)
            yield
        finally:
            os.close(fd)

    def _settle(self, volume: str) -> None:
        """Finish or undo a swap a crash left halfway; drop snapshots that never got (or lost) their metadata."""
        entries = os.listdir(self.pool.volumes)
        steps = settle_steps(self.pool, volume, has_volume=volume in entries,
                             has_restoring=os.path.basename(self.pool.restoring(volume)) in entries,
                             olds=self.pool.olds(volume, entries))
        for step in steps:
            if step.kind is StepKind.RENAME:
                with _os_errors(f"finish the restore of volume {volume}"):
                    os.rename(step.source, step.dest)
            else:
                progs.delete_subvolume(step.source)
        folder = self.pool.snapshot_dir(volume)
        names = set(os.listdir(folder)) if os.path.isdir(folder) else set()
        for name in names:
            if is_snapshot_id(name) and name + ".json" not in names:
                progs.delete_subvolume(os.path.join(folder, name))  # a snapshot killed before its metadata
            elif name.endswith(".json") and is_snapshot_id(name[:-5]) and name[:-5] not in names:
                os.unlink(os.path.join(folder, name))  # its subvolume was deleted by hand
            elif name.endswith(".json.part"):
                os.unlink(os.path.join(folder, name))

    # --- volumes -----------------------------------------------------------------------------

    def create(self, volume: str) -> str:
        """Make ``volume``'s subvolume unless it exists (a retried create keeps it); return its path."""
        path = self.pool.volume(volume)
        with self.locked(volume):
            if not os.path.lexists(path):
                progs.create_subvolume(path)
            elif not progs.is_subvolume(path):
                raise PermanentError(f"volume {volume}: {path} exists and is not a btrfs subvolume")
        return path

    def delete(self, volume: str) -> None:
        """Delete ``volume``'s subvolume and its data; its snapshots are kept (deleted only by retention or by hand)."""
        with self.locked(volume):
            progs.delete_subvolume(self.pool.volume(volume))
            self._drop_empty_folder(volume)

    # --- snapshots ---------------------------------------------------------------------------

    def take(self, volume: str, *, progress: Progress | None = None) -> Snapshot:
        """A read-only snapshot of ``volume`` (instant), listed once its metadata is written (last)."""
        source = self.pool.volume(volume)
        with self.locked(volume):
            if not progs.is_subvolume(source):
                raise PermanentError(f"volume {volume}: no subvolume at {source}")
            created = time.time()
            new_id = snapshot_id(created)
            path = self.pool.snapshot(volume, new_id)
            with _os_errors(f"snapshot volume {volume}"):
                os.makedirs(self.pool.snapshot_dir(volume), mode=0o700, exist_ok=True)
            progs.snapshot_subvolume(source, path, readonly=True)
            shown = progs.show_subvolume(path)
            content, occupied, _ = file_bytes(path)
            snapshot = Snapshot(id=new_id, volume=volume, created=created, size=occupied, content=content,
                                details={"path": path, "root": self.pool.root,
                                         "generation": shown.get("Gen at creation", ""),
                                         "source_uuid": shown.get("Parent UUID", "")})
            self._write_metadata(snapshot)
        if progress is not None:
            progress(content, content)
        return snapshot

    def _write_metadata(self, snapshot: Snapshot) -> None:
        target = self.pool.metadata(snapshot.volume, snapshot.id)
        record = {"id": snapshot.id, "volume": snapshot.volume, "created": snapshot.created, "size": snapshot.size,
                  "content": snapshot.content, "details": dict(snapshot.details)}
        with _os_errors(f"write the metadata of snapshot {snapshot.id}"):
            fd = os.open(target + ".part", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(record, out, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.rename(target + ".part", target)

    def list(self, volume: str) -> list[Snapshot]:
        """``volume``'s snapshots, oldest first, from their metadata files."""
        with self.locked(volume):
            folder = self.pool.snapshot_dir(volume)
            names = os.listdir(folder) if os.path.isdir(folder) else []
            found = [self._read_metadata(os.path.join(folder, name)) for name in names
                     if name.endswith(".json") and is_snapshot_id(name[:-5])]
        # Two ids of one second sort by their random part: the time taken decides.
        return sorted(found, key=lambda snapshot: (snapshot.created, snapshot.id))

    @staticmethod
    def _read_metadata(path: str) -> Snapshot:
        with _os_errors(f"read snapshot metadata {path}"), open(path, encoding="utf-8") as file:
            record = json.load(file)
        return Snapshot(id=record["id"], volume=record["volume"], created=float(record["created"]),
                        size=int(record["size"]), content=int(record["content"]),
                        details={str(k): str(v) for k, v in (record.get("details") or {}).items()})

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        """Delete a snapshot: its metadata first (it is no longer listed), then its subvolume; idempotent."""
        with self.locked(snapshot.volume):
            with _os_errors(f"delete snapshot {snapshot.id}"):
                try:
                    os.unlink(self.pool.metadata(snapshot.volume, snapshot.id))
                except FileNotFoundError:
                    pass
            progs.delete_subvolume(self.pool.snapshot(snapshot.volume, snapshot.id))
            self._drop_empty_folder(snapshot.volume)

    def _drop_empty_folder(self, volume: str) -> None:
        try:
            os.rmdir(self.pool.snapshot_dir(volume))
        except OSError:
            pass  # gone already, or still holding snapshots

    # --- restore -----------------------------------------------------------------------------

    def restore(self, volume: str, snapshot: Snapshot, *, progress: Progress | None = None) -> Restored:
        """Swap ``volume``'s subvolume for a writable snapshot of ``snapshot``: four steps, settled if killed."""
        started = time.monotonic()
        source = self.pool.snapshot(snapshot.volume, snapshot.id)
        current, copy, old = (self.pool.volume(volume), self.pool.restoring(volume),
                              self.pool.old(volume, snapshot.id))
        with self.locked(volume):
            if not progs.is_subvolume(source):
                raise PermanentError(f"snapshot {snapshot.id} of volume {snapshot.volume} is gone (no {source})")
            discarded = self.discarded(current, source, snapshot) if os.path.lexists(current) else 0
            progs.snapshot_subvolume(source, copy, readonly=False)  # 1
            with _os_errors(f"restore volume {volume}"):
                if os.path.lexists(current):
                    os.rename(current, old)  # 2
                os.rename(copy, current)  # 3
            progs.delete_subvolume(old)  # 4
        if progress is not None:
            progress(snapshot.content, snapshot.content)
        return Restored(snapshot=snapshot, discarded=discarded, seconds=time.monotonic() - started)

    @staticmethod
    def discarded(current: str, source: str, snapshot: Snapshot) -> int | None:
        """Bytes of file content in ``current`` that the snapshot at ``source`` does not hold (None: unknown).

        When the snapshot was taken of this very subvolume (its source UUID is the
        volume's), btrfs says which extents were written since (``find-new`` after the
        snapshot's generation): the bytes written since, at most each file's size. Otherwise
        (the volume was itself restored since), a walk of both: the size of every file
        absent from the snapshot or differing in size or modification time.
        """
        try:
            generation = int(snapshot.details.get("generation", ""))
            if snapshot.details.get("source_uuid") and \
                    progs.show_subvolume(current).get("UUID") == snapshot.details["source_uuid"]:
                progs.sync(current)
                written: dict[str, int] = defaultdict(int)
                for extent in progs.find_new(current, generation + 1):
                    written[extent.path] += extent.length
                total = 0
                for path, length in written.items():
                    try:
                        total += min(length, os.lstat(os.path.join(current, path)).st_size)
                    except OSError:
                        continue
                return total
            _, _, now = file_bytes(current)
            _, _, then = file_bytes(source)
            return sum(size for path, (size, mtime) in now.items() if then.get(path) != (size, mtime))
        except (DriverError, ValueError, OSError):
            return None
