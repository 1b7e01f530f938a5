"""The ``local`` driver's volume snapshots, taken and restored through the engine alone.

Why through the engine: the engine may be remote (``ssh://``, ``tcp://``), so the
volume's directory on its host is out of reach. A helper container (created, never
started) mounts the volume, and the archive API streams its content out
(``get_archive``) or back in (``put_archive``). Emptying a volume before a restore
needs a process, so the restore's helper is started once to run ``find ... rm -rf``:
its image is ``RECONCILER_HELPER_IMAGE`` (default ``busybox:1.36``), pulled through
the engine when missing. Everything is streamed: a volume never sits in memory.

On disk, under ``<state_dir>/snapshots/<engine>/<volume>/`` (folders 0700): ``<id>.tar.zst``,
the volume's tar compressed with zstd, and ``<id>.json``, the ``Snapshot``, written last
(a snapshot is listed only once whole). What a killed call leaves (a ``.part`` file, an
archive without its metadata, a helper container) is removed by the next call.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tarfile
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

import requests.exceptions
import urllib3.exceptions
import zstandard
from docker.types import Mount

from reconciler.sdk import (
    PermanentError, Restored, Snapshot, TemporaryError, default_state_dir, private_dir, snapshot_id, write_private,
)
from reconciler.sdk.docker import engine_errors
from reconciler.sdk.labels import PREFIX

__all__ = ["DEFAULT_HELPER_IMAGE", "HELPER_IMAGE_ENV", "VolumeSnapshots", "discarded_bytes", "tar_index",
           "verified_index"]

HELPER_IMAGE_ENV = "RECONCILER_HELPER_IMAGE"
DEFAULT_HELPER_IMAGE = "busybox:1.36"
#: The labels of a helper container: what it is for, and the volume it mounts.
HELPER, HELPER_VOLUME = PREFIX + "helper", PREFIX + "helper-volume"
MOUNT = "/volume"  # where a helper mounts the volume; its tar's top folder is ``volume``
#: Empties the volume, dot files too; busybox builds without ``find -delete`` have ``-exec ... +``.
EMPTY = ("find", MOUNT, "-mindepth", "1", "-maxdepth", "1", "-exec", "rm", "-rf", "{}", "+")
CHUNK = 1 << 20
_EMPTYING_TIMEOUT = 24 * 3600.0  # seconds the engine may take to empty a volume
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW

Progress = Callable[[int, int | None], None]
#: What a stream from the engine raises when it breaks midway (docker-py reads the raw response).
_BROKEN = (tarfile.TarError, EOFError, requests.exceptions.RequestException, urllib3.exceptions.HTTPError)
#: Each regular file of a volume: path inside it → (size, mtime), as its tar headers say.
Index = dict[str, tuple[int, int]]


class VolumeSnapshots:
    """``StorageDriver``'s snapshots, for an ``EngineDriver`` (it has ``api``, ``context`` and ``engine_id``)."""

    takes_snapshots = True

    def snapshot(self, volume: str, *, progress: Progress | None = None) -> Snapshot:
        """Stream the volume's content into ``<id>.tar.zst``; ``progress``: bytes read, of the engine's size."""
        folder = self._folder(volume)
        self._sweep(folder, volume)
        total = self._volume_size(volume)
        created = time.time()
        taken_id = snapshot_id(created)
        archive, part = folder / f"{taken_id}.tar.zst", folder / f"{taken_id}.tar.zst.part"
        try:
            with self._helper(volume, read_only=True) as helper:
                with engine_errors(f"read volume {volume}"), _stream(f"read volume {volume}"):
                    stream, _ = self.api.get_archive(helper, MOUNT, chunk_size=CHUNK)
                    with _Compressed(part, progress, total) as out:
                        index = tar_index(stream, seen=out.feed)
            os.replace(part, archive)
        finally:
            part.unlink(missing_ok=True)
        _sync(folder)
        details = {"path": str(archive), "sha256": out.sha256, "compression": "zstd", "format": "tar",
                   "archive": str(out.read), "engine": self._engine()}
        taken = Snapshot(taken_id, volume, created, out.size, sum(size for size, _ in index.values()), details)
        write_private(folder / f"{taken_id}.json", _encode(taken), sync=True)
        _sync(folder)
        return taken

    def restore(self, volume: str, snapshot: Snapshot, *, progress: Progress | None = None) -> Restored:
        """Check the archive's sha256, empty the volume, stream the archive back; run again, it completes."""
        started = time.monotonic()
        folder = self._folder(volume)
        self._sweep(folder, volume)
        kept, archive = _load(folder / f"{snapshot.id}.json"), folder / f"{snapshot.id}.tar.zst"
        if kept is None or not archive.is_file():
            raise PermanentError(f"volume {volume} has no snapshot {snapshot.id} (looked in {folder})")
        index = verified_index(archive, kept.details.get("sha256", ""))
        self._volume_size(volume)  # it exists: a helper's mount would make it
        total = int(kept.details.get("archive") or 0) or None
        with self._helper(volume, read_only=False, command=EMPTY) as helper:
            discarded = self._discarded(helper, index)
            self._empty(helper, volume)
            with engine_errors(f"restore volume {volume} from {archive}"), _stream(f"restore volume {volume}"):
                self.api.put_archive(helper, "/", _decompressed(archive, progress, total))
        return Restored(snapshot, discarded, time.monotonic() - started)

    def list_snapshots(self, volume: str) -> list[Snapshot]:
        """The volume's snapshots whose metadata is whole, oldest first."""
        folder = self._folder(volume)
        self._sweep(folder, volume)
        found = [_load(path) for path in folder.glob("*.json")]
        return sorted((taken for taken in found if taken is not None), key=lambda s: (s.created, s.id))

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        """Remove the snapshot's metadata, then its archive; one already gone is fine."""
        folder = self._folder(snapshot.volume)
        (folder / f"{snapshot.id}.json").unlink(missing_ok=True)
        (folder / f"{snapshot.id}.tar.zst").unlink(missing_ok=True)
        _sync(folder)
        self._sweep(folder, snapshot.volume)

    # -- the engine side ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _helper(self, volume: str, *, read_only: bool, command: tuple[str, ...] = ("true",)) -> Iterator[str]:
        """A created (not started) helper container mounting ``volume`` at ``MOUNT``; always removed."""
        image = self._helper_image()
        mount = Mount(MOUNT, volume, type="volume", read_only=read_only, no_copy=True)
        with engine_errors(f"create a helper container for volume {volume}"):
            created = self.api.create_container(
                image, list(command[1:]), entrypoint=[command[0]], labels={HELPER: "volume-snapshot",
                                                                           HELPER_VOLUME: volume},
                host_config=self.api.create_host_config(mounts=[mount], network_mode="none"))
        try:
            yield created["Id"]
        finally:
            with contextlib.suppress(Exception):  # what is left is the next call's sweep's
                self.api.remove_container(created["Id"], force=True)

    def _helper_image(self) -> str:
        """``RECONCILER_HELPER_IMAGE`` (default ``busybox:1.36``), pulled when the engine lacks it."""
        image = os.environ.get(HELPER_IMAGE_ENV) or DEFAULT_HELPER_IMAGE
        with engine_errors(f"look up the helper image {image}", missing_ok=True):
            self.api.inspect_image(image)
            return image
        with engine_errors(f"pull the helper image {image} ({HELPER_IMAGE_ENV})"):
            for event in self.api.pull(image, stream=True, decode=True):
                if isinstance(event, dict) and event.get("error"):
                    raise PermanentError(f"pull the helper image {image} ({HELPER_IMAGE_ENV}): {event['error']}")
        return image

    def _empty(self, helper: str, volume: str) -> None:
        with engine_errors(f"empty volume {volume}"):
            self.api.start(helper)
            code = self.api.wait(helper, timeout=_EMPTYING_TIMEOUT).get("StatusCode")
            if code != 0:
                said = self.api.logs(helper, tail=5).decode(errors="replace").strip()
                raise PermanentError(f"empty volume {volume}: the helper exited {code}: {said}")

    def _discarded(self, helper: str, snapshot: Index) -> int | None:
        """What ``Restored.discarded`` says, from the tar headers of the volume's content now (None: unread)."""
        try:
            with engine_errors("read the volume's content"):
                stream, _ = self.api.get_archive(helper, MOUNT, chunk_size=CHUNK)
                return discarded_bytes(tar_index(stream), snapshot)
        except Exception:
            return None

    def _volume_size(self, volume: str) -> int | None:
        """The volume's size when the engine says it (it rarely does), else None; a missing volume is refused."""
        with engine_errors(f"inspect volume {volume}"):
            size = (self.api.inspect_volume(volume).get("UsageData") or {}).get("Size")
        return size if isinstance(size, int) and size >= 0 else None

    def _sweep(self, folder: Path, volume: str) -> None:
        """Remove what a killed call left: partial files, an archive without metadata, helper containers."""
        for path in folder.iterdir():
            name = path.name
            orphan = name.endswith(".tar.zst") and not (folder / (name[:-len(".tar.zst")] + ".json")).exists()
            if orphan or name.endswith((".part", ".tmp")):
                path.unlink(missing_ok=True)
        with engine_errors(f"list helper containers of volume {volume}"):
            left = self.api.containers(all=True, filters={"label": [f"{HELPER}=volume-snapshot",
                                                                    f"{HELPER_VOLUME}={volume}"]})
        for container in left:
            with contextlib.suppress(Exception):
                self.api.remove_container(container["Id"], force=True)

    def _engine(self) -> str:
        """The engine's identity, as a folder name: two engines' volumes of one name never mix."""
        key = self.engine_id() or self.context.engine_url or os.environ.get("DOCKER_HOST") or "local"
        return re.sub(r"[^A-Za-z0-9._:-]", "_", key)

    def _folder(self, volume: str) -> Path:
        root = Path(self.context.state_dir or default_state_dir()) / "snapshots"
        folder = root / self._engine() / volume
        for level in (root, folder.parent, folder):
            private_dir(level)
        return folder


# -- streams -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _stream(action: str) -> Iterator[None]:
    """A stream that broke midway (the engine went away) is worth retrying: a ``TemporaryError``."""
    try:
        yield
    except _BROKEN as exc:
        raise TemporaryError(f"{action}: the engine's stream broke: {exc}") from exc


class _Chunks(io.RawIOBase):
    """A readable file over an iterator of byte chunks, handing each chunk to ``seen`` as it is first read."""

    def __init__(self, chunks: Iterable[bytes], seen: Callable[[bytes], None] | None = None) -> None:
        self._chunks, self._seen, self._left = iter(chunks), seen, memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not len(self._left):
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            if self._seen is not None:
                self._seen(chunk)
            self._left = memoryview(chunk)
        size = min(len(buffer), len(self._left))
        buffer[:size], self._left = self._left[:size], self._left[size:]
        return size


class _Compressed:
    """A new ``.part`` file fed a tar stream: zstd-compressed, hashed and counted on the way, fsynced at the end."""

    def __init__(self, path: Path, progress: Progress | None, total: int | None) -> None:
        self._file = open(os.open(path, _NEW_FILE, 0o600), "wb")
        self._compressor = zstandard.ZstdCompressor().compressobj()
        self._hash, self._progress, self._total = hashlib.sha256(), progress, total
        self.read = self.size = 0
        self.sha256 = ""

    def feed(self, chunk: bytes) -> None:
        self.read += len(chunk)
        self._write(self._compressor.compress(chunk))
        if self._progress is not None:
            self._progress(self.read, self._total)

    def _write(self, data: bytes) -> None:
        if data:
            self._hash.update(data)
            self._file.write(data)
            self.size += len(data)

    def __enter__(self) -> _Compressed:
        return self

    def __exit__(self, failed, *exc: object) -> None:
        try:
            if failed is None:
                self._write(self._compressor.flush())
                self._file.flush()
                os.fsync(self._file.fileno())
                self.sha256 = self._hash.hexdigest()
        finally:
            self._file.close()


class _Hashing(io.RawIOBase):
    """A file read through, hashing what is read."""

    def __init__(self, file, digest) -> None:
        self._file, self._digest = file, digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = self._file.readinto(buffer)
        self._digest.update(memoryview(buffer)[:size])
        return size


def tar_index(chunks: Iterable[bytes], *, seen: Callable[[bytes], None] | None = None) -> Index:
    """Each regular file of a volume's tar stream (its top folder left out) → (size, mtime); reads it all."""
    reader = _Chunks(chunks, seen)
    index: Index = {}
    with tarfile.open(fileobj=reader, mode="r|") as tar:
        while (member := tar.next()) is not None:
            if member.isreg():
                index[member.name.partition("/")[2]] = (member.size, int(member.mtime))
            tar.members.clear()  # a stream's headers need not be kept: a million files stay small
    while reader.read(CHUNK):  # the tar's end blocks, so ``seen`` has the whole stream
        pass
    return index


def discarded_bytes(now: Index, snapshot: Index) -> int:
    """Bytes of the files in ``now`` that ``snapshot`` does not hold identically: absent, resized or newer."""
    return sum(size for path, (size, mtime) in now.items()
               if path not in snapshot or snapshot[path][0] != size or mtime > snapshot[path][1])


def verified_index(archive: Path, sha256: str) -> Index:
    """The archive's files, once its sha256 is the one recorded; a ``PermanentError`` naming it if not."""
    digest = hashlib.sha256()
    try:
        with open(archive, "rb", buffering=0) as file:
            hashed = _Hashing(file, digest)
            index = tar_index(zstandard.ZstdDecompressor().read_to_iter(hashed, read_size=CHUNK, write_size=CHUNK))
            while hashed.read(CHUNK):
                pass
    except (OSError, zstandard.ZstdError, tarfile.TarError, EOFError) as exc:
        raise PermanentError(f"snapshot {archive} is unreadable ({exc}); the volume is left as it is") from exc
    if not sha256 or digest.hexdigest() != sha256:
        raise PermanentError(f"snapshot {archive} is corrupt: its sha256 is not the one recorded; "
                             "the volume is left as it is")
    return index


def _decompressed(archive: Path, progress: Progress | None, total: int | None) -> Iterator[bytes]:
    done = 0
    with open(archive, "rb") as file:
        for chunk in zstandard.ZstdDecompressor().read_to_iter(file, read_size=CHUNK, write_size=CHUNK):
            done += len(chunk)
            if progress is not None:
                progress(done, total)
            yield chunk


def _encode(taken: Snapshot) -> bytes:
    return json.dumps({"id": taken.id, "volume": taken.volume, "created": taken.created, "size": taken.size,
                       "content": taken.content, "details": dict(taken.details)}, indent=1).encode()


def _load(path: Path) -> Snapshot | None:
    """The snapshot a metadata file holds; None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_bytes())
        return Snapshot(str(data["id"]), str(data["volume"]), float(data["created"]), int(data["size"]),
                        int(data["content"]), {str(k): str(v) for k, v in dict(data.get("details") or {}).items()})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _sync(folder: Path) -> None:
    """Make the folder's renames durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
