"""The record of volume snapshots (statedb migration 8, ``StackBook``'s snapshot methods)."""
from __future__ import annotations

import pytest

from reconciler import statedb
from reconciler.model import Snapshot
from reconciler.state import StateStore
from reconciler.stackbook import SnapshotRow


@pytest.fixture
def store():
    with StateStore.in_memory() as made:
        yield made


def _snap(sid: str, created: float, volume: str = "shop_db", **details: str) -> Snapshot:
    return Snapshot(id=sid, volume=volume, created=created, size=1234, content=4096, details=details)


def test_migration_8_makes_the_table_and_its_partial_index(store):
    assert store.schema_version == len(statedb.MIGRATIONS) >= 8
    rows = store._read("SELECT name FROM sqlite_master WHERE tbl_name = 'snapshots'")
    assert {name for (name,) in rows} >= {"snapshots", "snapshots_restoring"}


def test_a_snapshot_round_trips_with_its_details(store):
    book = store.stack("e1", "shop")
    snap = _snap("20261207T184500Z-3f2a1c", 1765133100.5, path="/s/x.tar.zst", sha256="ab" * 32)
    book.snapshot_taken("shop_db", "local", snap, container="shop-db-1", revision="b" * 40, from_revision="a" * 40)
    [row] = book.snapshots()
    assert isinstance(row, SnapshotRow)
    assert row.snapshot == snap and row.volume == "shop_db" and row.driver == "local"
    assert (row.container, row.revision, row.from_revision, row.state) == ("shop-db-1", "b" * 40, "a" * 40, "taken")
    assert row.taken_at.endswith("Z") and row.taken_at[4] == "-"
    assert book.known()


def test_revisions_may_be_unknown(store):
    book = store.stack("e1", "shop")
    book.snapshot_taken("shop_db", "local", _snap("s1", 1.0), container="c", revision=None, from_revision=None)
    [row] = book.snapshots()
    assert (row.revision, row.from_revision) == (None, None)


def test_state_changes_and_the_restoring_read(store):
    book = store.stack("e1", "shop")
    book.snapshot_taken("shop_db", "local", _snap("s1", 1.0), container="c", revision="r2", from_revision="r1")
    assert book.restoring() == []
    book.snapshot_state("shop_db", "s1", "restoring")
    assert [r.snapshot.id for r in book.restoring()] == ["s1"]
    assert store.stack("e1", "other").restoring() == [] and store.stack("e2", "shop").restoring() == []
    book.snapshot_state("shop_db", "s1", "restored")
    assert book.restoring() == [] and book.snapshots()[0].state == "restored"
    with pytest.raises(ValueError):
        book.snapshot_state("shop_db", "s1", "lost")


def test_oldest_first_per_volume_and_per_stack(store):
    book = store.stack("e1", "shop")
    for sid, created, volume in (("c", 30.0, "shop_db"), ("a", 10.0, "shop_db"), ("b", 20.0, "shop_files")):
        book.snapshot_taken(volume, "local", _snap(sid, created, volume), container="x", revision=None,
                            from_revision=None)
    store.stack("e1", "blog").snapshot_taken("shop_db", "local", _snap("z", 5.0), container="x", revision=None,
                                             from_revision=None)
    assert [r.snapshot.id for r in book.snapshots()] == ["a", "b", "c"]
    assert [r.snapshot.id for r in book.snapshots("shop_db")] == ["a", "c"]
    assert [r.snapshot.id for r in book.snapshots("shop_files")] == ["b"]


def test_forget_takes_one_snapshot_out(store):
    book = store.stack("e1", "shop")
    for sid in ("a", "b"):
        book.snapshot_taken("shop_db", "local", _snap(sid, 1.0), container="x", revision=None, from_revision=None)
    book.forget_snapshot("shop_db", "a")
    book.forget_snapshot("shop_db", "a")  # idempotent
    assert [r.snapshot.id for r in book.snapshots()] == ["b"]


def test_a_pass_book_writes_snapshots_at_once_with_what_it_held(store):
    book = store.stack("e1", "shop").for_pass()
    from reconciler.model import Kind, LiveObject
    book.adopted([LiveObject(Kind.VOLUME, "shop_db", "shop_db")])  # held back until the next write
    book.snapshot_taken("shop_db", "local", _snap("s1", 1.0), container="x", revision=None, from_revision=None)
    other = store.stack("e1", "shop")
    assert [r.snapshot.id for r in other.snapshots()] == ["s1"]
    assert [o.name for o in other.objects()] == ["shop_db"]


def test_the_record_survives_a_reopen(tmp_path):
    with StateStore.open(tmp_path / "state") as first:
        first.stack("e1", "shop").snapshot_taken("v", "local", _snap("s1", 1.0, "v"), container="x",
                                                 revision="r", from_revision=None)
        first.stack("e1", "shop").snapshot_state("v", "s1", "restoring")
    with StateStore.open(tmp_path / "state") as again:
        assert [r.state for r in again.stack("e1", "shop").restoring()] == ["restoring"]
