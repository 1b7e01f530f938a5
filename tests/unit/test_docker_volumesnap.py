"""The ``local`` driver's snapshot files without an engine: tar headers read from a stream, what a restore
discards, a corrupt archive refused, metadata listed oldest first, leftovers swept (the engine side is
tests/integration/test_volume_snapshots.py)."""
from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest
import zstandard

from reconciler.drivers import DriverContext
from reconciler.errors import PermanentError
from reconciler.model import Snapshot
from reconciler_docker.volumes import DockerVolumeDriver
from reconciler_docker.volumesnap import _encode, discarded_bytes, tar_index, verified_index


def volume_tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    """A tar as the engine streams a volume: a top folder ``volume``, then path → (content, mtime)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        top = tarfile.TarInfo("volume")
        top.type = tarfile.DIRTYPE
        tar.addfile(top)
        for path, (data, mtime) in files.items():
            info = tarfile.TarInfo("volume/" + path)
            info.size, info.mtime = len(data), mtime
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("volume/link")
        link.type, link.linkname = tarfile.SYMTYPE, "a"
        tar.addfile(link)
    return buffer.getvalue()


def chunks(data: bytes, size: int = 777):
    return (data[i:i + size] for i in range(0, len(data), size))


def test_the_index_holds_each_regular_file_and_the_whole_stream_is_seen():
    data = volume_tar({"a": (b"one", 100), "d/b": (b"x" * 5000, 200)})
    seen = []
    assert tar_index(chunks(data), seen=seen.append) == {"a": (3, 100), "d/b": (5000, 200)}
    assert b"".join(seen) == data


def test_what_a_restore_discards_is_what_the_snapshot_does_not_hold_identically():
    snapshot = {"same": (10, 100), "resized": (10, 100), "newer": (10, 100), "older": (10, 100)}
    now = {"same": (10, 100), "resized": (12, 100), "newer": (10, 101), "older": (10, 99), "new": (7, 1)}
    assert discarded_bytes(now, snapshot) == 12 + 10 + 7
    assert discarded_bytes({}, snapshot) == 0


def _archive(tmp_path: Path, data: bytes) -> tuple[Path, str]:
    path = tmp_path / "x.tar.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(data))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_archive_is_read_once_its_checksum_matches(tmp_path):
    path, digest = _archive(tmp_path, volume_tar({"a": (b"one", 100)}))
    assert verified_index(path, digest) == {"a": (3, 100)}


@pytest.mark.parametrize("damage", ["flip", "truncate", "checksum"])
def test_a_damaged_archive_is_refused_naming_it(tmp_path, damage):
    path, digest = _archive(tmp_path, volume_tar({"a": (b"one" * 1000, 100)}))
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        del data[len(data) // 2:]
    else:
        digest = "0" * 64
    path.write_bytes(bytes(data))
    with pytest.raises(PermanentError, match=f"snapshot {path} is (corrupt|unreadable).*left as it is"):
        verified_index(path, digest)


class _Engine:
    """The two calls a sweep makes: no helper container is left."""

    def containers(self, **filters):
        return []

    def remove_container(self, *args, **kwargs):
        raise AssertionError("nothing to remove")


class _Driver(DockerVolumeDriver):
    api = _Engine()

    def engine_id(self) -> str:
        return "ABCD:EFGH"


def test_snapshots_list_oldest_first_from_whole_metadata_and_leftovers_go(tmp_path):
    driver = _Driver(DriverContext(stack="s", state_dir=tmp_path))
    folder = tmp_path / "snapshots" / "ABCD:EFGH" / "data"
    driver.list_snapshots("data")
    assert folder.is_dir() and all(p.stat().st_mode & 0o777 == 0o700 for p in (folder, folder.parent,
                                                                                folder.parent.parent))
    older = Snapshot("20261207T100000Z-aaaaaa", "data", 1.0, 1, 1, {"sha256": "x"})
    newer = Snapshot("20261207T090000Z-bbbbbb", "data", 2.0, 1, 1)
    for taken in (newer, older):
        (folder / f"{taken.id}.json").write_bytes(_encode(taken))
        (folder / f"{taken.id}.tar.zst").write_bytes(b"z")
    (folder / "20261207T110000Z-cccccc.tar.zst").write_bytes(b"killed before its metadata")
    (folder / "20261207T120000Z-dddddd.tar.zst.part").write_bytes(b"killed midway")
    (folder / "broken.json").write_bytes(b"{")
    assert driver.list_snapshots("data") == [older, newer]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{older.id}.json", f"{older.id}.tar.zst", f"{newer.id}.json", f"{newer.id}.tar.zst", "broken.json"])
    driver.delete_snapshot(older)
    driver.delete_snapshot(older)
    assert driver.list_snapshots("data") == [newer]


def test_a_restore_of_a_snapshot_that_is_gone_is_refused(tmp_path):
    driver = _Driver(DriverContext(stack="s", state_dir=tmp_path))
    gone = Snapshot("20261207T100000Z-aaaaaa", "data", 1.0, 1, 1)
    with pytest.raises(PermanentError, match="volume data has no snapshot 20261207T100000Z-aaaaaa"):
        driver.restore("data", gone)
