"""The btrfs pool's bookkeeping on plain folders: btrfs-progs replaced by copies and removals, no btrfs needed.

What a real btrfs adds (copy-on-write, read-only subvolumes, find-new) is tests/integration/test_btrfs_driver.py's;
here: metadata written last and read back oldest first, leftovers of killed calls settled by the next call.
"""
from __future__ import annotations

import json
import os
import shutil

import pytest

from reconciler.errors import PermanentError
from reconciler_btrfs import progs
from reconciler_btrfs.layout import Pool
from reconciler_btrfs.pool import SubvolumePool, file_bytes

ID = "20261207T184500Z-3f2a1c"


@pytest.fixture
def pool(tmp_path, monkeypatch):
    """A pool whose subvolumes are folders: a snapshot is a copy, a delete a removal."""
    monkeypatch.setattr(progs, "create_subvolume", os.mkdir)
    monkeypatch.setattr(progs, "delete_subvolume", lambda path: shutil.rmtree(path, ignore_errors=True))
    monkeypatch.setattr(progs, "snapshot_subvolume", lambda source, dest, readonly: shutil.copytree(source, dest))
    monkeypatch.setattr(progs, "show_subvolume", lambda path: {"Gen at creation": "7", "Parent UUID": "-"})
    monkeypatch.setattr(progs, "is_subvolume", os.path.isdir)
    return SubvolumePool(Pool(str(tmp_path)))


def _write(path, files):
    for name, data in files.items():
        os.makedirs(os.path.dirname(os.path.join(path, name)), exist_ok=True)
        with open(os.path.join(path, name), "wb") as out:
            out.write(data)


def test_a_snapshot_is_listed_with_its_sizes_and_restored(pool):
    path = pool.create("db")
    _write(path, {"a": b"12345", "d/b": b"x" * 10})
    seen = []
    taken = pool.take("db", progress=lambda done, total: seen.append((done, total)))
    assert (taken.volume, taken.content, taken.details["generation"]) == ("db", 15, "7")
    assert seen == [(15, 15)]
    assert pool.list("db") == [taken]
    with open(pool.pool.metadata("db", taken.id)) as file:
        assert json.load(file)["content"] == 15
    _write(path, {"a": b"changed!", "new": b"n" * 100})
    restored = pool.restore("db", taken)
    assert file_bytes(path)[2].keys() == {"a", "d/b"} and open(os.path.join(path, "a"), "rb").read() == b"12345"
    assert restored.discarded == 108  # a walk (the volume is not the snapshot's source): a changed, new added
    assert sorted(os.listdir(pool.pool.volumes)) == ["db"]


def test_snapshots_list_oldest_first_whatever_their_ids(pool):
    pool.create("db")
    taken = [pool.take("db") for _ in range(3)]
    assert [s.id for s in pool.list("db")] == [s.id for s in sorted(taken, key=lambda s: s.created)]


def test_a_snapshot_without_metadata_is_removed_by_the_next_call(pool):
    pool.create("db")
    os.makedirs(pool.pool.snapshot("db", ID))
    with open(pool.pool.metadata("db", ID) + ".part", "w") as part:
        part.write("{")
    assert pool.list("db") == []
    assert os.listdir(pool.pool.snapshot_dir("db")) == []


def test_metadata_whose_subvolume_is_gone_is_dropped(pool):
    pool.create("db")
    taken = pool.take("db")
    shutil.rmtree(pool.pool.snapshot("db", taken.id))
    assert pool.list("db") == []
    assert not os.path.exists(pool.pool.metadata("db", taken.id))


def test_deleting_a_snapshot_twice_is_fine_and_its_empty_folder_goes(pool):
    pool.create("db")
    taken = pool.take("db")
    pool.delete_snapshot(taken)
    pool.delete_snapshot(taken)
    assert not os.path.exists(pool.pool.snapshot_dir("db"))


def test_a_swap_left_after_the_rename_aside_is_finished_by_any_call(pool):
    path = pool.create("db")
    _write(path, {"state": b"old"})
    os.makedirs(pool.pool.restoring("db"))
    _write(pool.pool.restoring("db"), {"state": b"new"})
    os.rename(path, pool.pool.old("db", ID))
    pool.list("db")
    assert sorted(os.listdir(pool.pool.volumes)) == ["db"]
    assert open(os.path.join(path, "state"), "rb").read() == b"new"


def test_a_restore_of_a_snapshot_that_is_gone_is_refused(pool):
    pool.create("db")
    taken = pool.take("db")
    shutil.rmtree(pool.pool.snapshot("db", taken.id))
    with pytest.raises(PermanentError, match="is gone"):
        pool.restore("db", taken)


def test_a_folder_that_is_not_a_subvolume_is_not_taken_over(pool, monkeypatch):
    os.makedirs(pool.pool.volume("db"))
    monkeypatch.setattr(progs, "is_subvolume", lambda path: False)
    with pytest.raises(PermanentError, match="not a btrfs subvolume"):
        pool.create("db")
