"""``reconcile snapshots`` and ``rollback --with-data`` without an engine: rendering, argument handling, which
snapshot a rollback restores, and a restore on the in-memory engine (only the stack's containers that mount the
volume are stopped and started again)."""
from __future__ import annotations

import argparse
import json

import pytest

from reconciler.cli.parser import build_parser
from reconciler.errors import ReconcilerError
from reconciler.model import Kind, LiveObject, Restored, Snapshot
from reconciler.reconcile import ApplyRequest
from reconciler.render_snapshots import (
    deleted_text, restored_text, snapshots_data, snapshots_text, volume_summaries,
)
from reconciler.spec import load_desired
from reconciler.stackbook import SnapshotRow
from reconciler.stacksnapshots import UNRECORDED, StackSnapshots, for_rollback, open_snapshots, users
from reconciler.testing import make_reconciler
from reconciler.units import size_text

V1, V2, V3 = "1" * 40, "2" * 40, "3" * 40
NOW = 1_796_000_000.0


def _row(volume: str, at: float, *, sid: str = "", from_revision: str | None = V1, revision: str | None = V2,
         state: str = "taken", container: str = "shop-db-1") -> SnapshotRow:
    snapshot = Snapshot(sid or f"2026{int(at)}-abcdef", volume, at, 2048, 10 * 1024 * 1024, {"sha256": "ab"})
    return SnapshotRow(volume, "local", snapshot, container, revision, from_revision, state, "2026-12-07T18:45:00Z")


# -- which snapshot a rollback restores -------------------------------------------------------------------------

def test_rollback_restores_per_volume_the_newest_snapshot_taken_when_the_stack_left_the_revision():
    rows = [_row("db", 100, sid="a"), _row("db", 300, sid="c"), _row("db", 200, sid="b"),
            _row("db", 400, sid="d", from_revision=V2, revision=V3),  # taken when it left v2: not v1's data
            _row("files", 150, sid="f"), _row("files", 900, sid="g", state=UNRECORDED, from_revision=None),
            _row("cache", 50, sid="x", from_revision=V3)]
    chosen = for_rollback(rows, V1)
    assert [(r.volume, r.snapshot.id) for r in chosen] == [("db", "c"), ("files", "f")]
    assert [(r.volume, r.snapshot.id) for r in for_rollback(rows, V2)] == [("db", "d")]
    assert for_rollback(rows, "4" * 40) == []


def test_a_restored_snapshot_still_counts_for_a_rollback_and_an_unrecorded_one_never():
    rows = [_row("db", 100, sid="a", state="restored"), _row("db", 200, sid="b", state=UNRECORDED)]
    assert [r.snapshot.id for r in for_rollback(rows, V1)] == ["a"]


def test_only_the_stacks_own_running_containers_that_mount_the_volume_are_its_users():
    def container(name, cid, *, stack="shop", state="running", volumes=("shop_db",)):
        labels = {"io.reconciler.stack": stack, "io.reconciler.kind": "container"}
        return LiveObject(Kind.CONTAINER, name, cid, labels, state=state, details={"volumes": list(volumes)})

    found = [container("shop-db-1", "1"), container("shop-web-1", "2", volumes=()),
             container("other-db-1", "3", stack="other"), container("shop-old-1", "4", state="exited"),
             container("shop-copy-1", "5")]  # claims the stack by label, but the record never made it
    assert [c.name for c in users("shop_db", found, "shop", {"1", "2", "3", "4"})] == ["shop-db-1"]


# -- rendering --------------------------------------------------------------------------------------------------

def test_the_list_shows_when_size_content_what_for_and_state():
    data = snapshots_data([_row("shop_db", NOW - 180, sid="20261207T184500Z-3f2a1c"),
                           _row("shop_db", NOW - 60, sid="20261207T184700Z-000001", state=UNRECORDED,
                                container="", revision=None, from_revision=None)])
    text = snapshots_text(data, stack="shop", now=NOW).splitlines()
    assert text[0].split() == ["VOLUME", "SNAPSHOT", "TAKEN", "SIZE", "CONTENT", "FOR", "STATE"]
    assert "20261207T184500Z-3f2a1c" in text[1] and "(3 min ago)" in text[1] and "2.0 KiB" in text[1]
    assert "10.0 MiB" in text[1] and f"shop-db-1 @ {V2[:12]}" in text[1] and text[1].endswith("taken")
    assert text[2].endswith("unrecorded") and " - " in text[2]
    assert snapshots_text([], stack="shop") == "Stack shop has no volume snapshots."


def test_the_json_is_one_object_per_snapshot_with_its_ids_and_revisions():
    (item,) = snapshots_data([_row("shop_db", NOW, sid="s1")])
    assert item["volume"] == "shop_db" and item["id"] == "s1" and item["driver"] == "local"
    assert item["revision"] == V2 and item["from_revision"] == V1 and item["state"] == "taken"
    assert item["size"] == 2048 and item["content"] == 10 * 1024 * 1024 and item["details"] == {"sha256": "ab"}
    assert item["created"].endswith("Z") and item["created_epoch"] == NOW
    json.dumps(item)


def test_the_status_page_summary_counts_each_volumes_snapshots_and_names_the_newest():
    data = snapshots_data([_row("db", 200, sid="b"), _row("db", 100, sid="a"), _row("files", 50, sid="f")])
    summary = volume_summaries(data)
    assert summary["db"]["count"] == 2 and summary["db"]["newest"] == "b"
    assert summary["files"] == {"count": 1, "newest": "f", "newest_at": "1970-01-01T00:00:50Z"}


def test_a_restore_says_what_came_back_and_which_containers_it_stopped():
    snapshot = _row("shop_db", NOW - 3600, sid="s1").snapshot
    restored = Restored(snapshot, 3 * 1024 * 1024, 1.25)
    assert restored_text("shop", restored, stopped=["shop-db-1"], started=["shop-db-1"]) == \
        "stack shop: volume shop_db restored from snapshot s1 in 1.2 s; shop-db-1 stopped for it and started again"
    assert restored_text("shop", restored, stopped=["shop-db-1"]).endswith("stopped for it and left stopped")
    assert restored_text("shop", restored) == "stack shop: volume shop_db restored from snapshot s1 in 1.2 s"
    assert deleted_text("shop", "shop_db", ["a", "b"]) == "stack shop: volume shop_db: deleted snapshots a, b"
    assert size_text(None) == "?" and size_text(512) == "512 B"


# -- the command line -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, stack, volume, ids", [
    (["snapshots", "list"], None, None, []),
    (["snapshots", "list", "shop", "db"], "shop", "db", []),
    (["snapshots", "restore", "shop", "db", "s1"], "shop", "db", ["s1"]),
    (["snapshots", "delete", "shop", "db", "s1", "s2"], "shop", "db", ["s1", "s2"]),
])
def test_the_words_after_the_command_are_stack_volume_and_snapshot_ids(argv, stack, volume, ids):
    args = build_parser(argv).parse_args(argv)
    assert (args.stack_name, args.volume, args.snapshot_ids) == (stack, volume, ids)


def test_restore_takes_yes_and_rollback_takes_with_data():
    args = build_parser(["snapshots"]).parse_args(["snapshots", "restore", "shop", "db", "--yes"])
    assert args.yes and args.lock_timeout == 10.0
    args = build_parser(["rollback"]).parse_args(["rollback", "shop", "--to", "1a2b3c4", "--with-data"])
    assert args.with_data
    assert not build_parser(["rollback"]).parse_args(["rollback", "shop", "--to", "1a2b3c4"]).with_data


def _args(argv: list[str], state_dir) -> argparse.Namespace:
    args = build_parser(argv).parse_args(argv + ["--state-dir", str(state_dir)])
    args.strict_plugins = None
    return args


def test_a_restore_without_a_terminal_needs_yes(tmp_path, monkeypatch, capsys):
    from reconciler.cli import snapshots

    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    row = _row("shop_db", NOW, sid="s1")
    with pytest.raises(ReconcilerError, match="give --yes to confirm"):
        snapshots._confirmed(_args(["snapshots", "restore", "shop", "shop_db"], tmp_path), "shop", "shop_db", row)


def test_a_command_without_a_stack_or_a_spec_says_how_to_name_it(tmp_path, capsys):
    from reconciler.cli import main

    assert main(["snapshots", "restore", "--state-dir", str(tmp_path / "state")]) == 1
    assert "name the stack" in capsys.readouterr().err


def test_list_with_a_server_needs_the_stack_and_restore_runs_here(tmp_path, capsys, monkeypatch):
    from reconciler.cli import main

    monkeypatch.setenv("RECONCILER_TOKEN", "t" * 24)
    assert main(["snapshots", "list", "--server", "http://127.0.0.1:9"]) == 1
    assert "name the stack" in capsys.readouterr().err


def test_list_with_a_server_prints_what_the_daemon_answers(monkeypatch, capsys):
    from reconciler.cli import main
    from reconciler.client import DaemonClient

    data = snapshots_data([_row("shop_db", NOW, sid="s1"), _row("shop_files", NOW, sid="s2")])
    asked = []
    monkeypatch.setattr(DaemonClient, "snapshots", lambda self, name: asked.append((self.url, name)) or data)
    monkeypatch.setenv("RECONCILER_TOKEN", "t" * 24)
    assert main(["snapshots", "list", "shop", "shop_files", "--server", "http://d:1", "--output", "json"]) == 0
    assert asked == [("http://d:1", "shop")] and [s["id"] for s in json.loads(capsys.readouterr().out)] == ["s2"]
    assert main(["snapshots", "list", "shop", "--server", "http://d:1", "--server", "http://e:2"]) == 0
    text = capsys.readouterr().out
    assert text.count("SNAPSHOT") == 2 and "http://e:2:" in text and "s1" in text and "s2" in text


# -- on the in-memory engine ------------------------------------------------------------------------------------

SPEC = """
name: shop
volumes: {db: {}}
containers:
  db: {image: "busybox:1", volumes: ["db:/data"]}
  web: {image: "busybox:1"}
"""


@pytest.fixture
def shop(tmp_path, memory_engine):
    """The stack ``shop`` applied on the memory engine: ``db`` mounts volume ``shop_db``, ``web`` mounts nothing;
    one snapshot of the volume recorded (as a release from V1 to V2 would), and one the record does not know."""
    (tmp_path / "stack.yaml").write_text(SPEC)
    reconciler = make_reconciler(memory_engine)
    desired = load_desired([tmp_path / "stack.yaml"], drivers=reconciler.driver_catalog())
    assert reconciler.apply(desired, ApplyRequest()).ok
    volume = desired.volumes["db"].name
    snaps = open_snapshots(reconciler, "shop", keys={"db": volume})
    driver = snaps.drivers.get(Kind.VOLUME, "local")
    memory_engine.volume_content[volume] = {"schema": b"1"}
    taken = driver.snapshot(volume)
    snaps.book.snapshot_taken(volume, "local", taken, container="shop-db-1", revision=V2, from_revision=V1)
    memory_engine.volume_content[volume] = {"schema": b"2", "rows": b"12345"}
    loose = driver.snapshot(volume)
    memory_engine.volume_content[volume] = {"schema": b"3"}
    return reconciler, snaps, volume, taken, loose


def test_the_list_holds_the_record_and_what_only_the_driver_knows(shop):
    _, snaps, volume, taken, loose = shop
    rows = snaps.snapshots()
    assert [(r.snapshot.id, r.state) for r in rows] == [(taken.id, "taken"), (loose.id, UNRECORDED)]
    assert rows[0].container == "shop-db-1" and rows[0].from_revision == V1
    assert snaps.snapshots("other") == []


def test_restore_stops_and_starts_only_the_containers_that_mount_the_volume(shop, memory_engine):
    _, snaps, volume, taken, _ = shop
    (row,) = snaps.chosen(volume, [taken.id])
    memory_engine.calls.clear()
    done = snaps.restore([row])
    assert memory_engine.volume_content[volume] == {"schema": b"1"}
    assert done.stopped == ["shop-db-1"] and done.started == ["shop-db-1"]
    assert done.restored[0].snapshot.id == taken.id and done.restored[0].discarded == 1
    ids = {name: obj.id for name, obj in memory_engine.containers.items()}
    assert [c for c in memory_engine.calls if c[0] in ("stop", "start")] == [("stop", ids["shop-db-1"]),
                                                                             ("start", "shop-db-1")]
    assert memory_engine.containers["shop-web-1"].state == "running"
    assert {r.snapshot.id: r.state for r in snaps.book.snapshots(volume)}[taken.id] == "restored"


def test_the_newest_is_restored_by_default_and_an_unrecorded_one_is_recorded_first(shop, memory_engine):
    _, snaps, volume, taken, loose = shop
    (row,) = snaps.chosen(volume)
    assert row.snapshot.id == loose.id and row.state == UNRECORDED
    snaps.restore([row])
    assert memory_engine.volume_content[volume] == {"schema": b"2", "rows": b"12345"}
    assert {r.snapshot.id: r.state for r in snaps.book.snapshots(volume)} == {taken.id: "taken", loose.id: "restored"}


def test_a_volume_the_stack_does_not_own_and_an_unknown_snapshot_are_refused(shop):
    _, snaps, volume, taken, loose = shop
    assert snaps.volume("db") == volume  # the spec's key names it too
    with pytest.raises(ReconcilerError, match="not a volume stack shop owns"):
        snaps.volume("someone_elses")
    with pytest.raises(ReconcilerError, match=f"no snapshot nope.*{taken.id}, {loose.id}"):
        snaps.chosen(volume, ["nope"])


def test_without_a_spec_a_volume_is_named_by_the_key_its_labels_carry(shop):
    reconciler, _, volume, _, _ = shop
    snaps = open_snapshots(reconciler, "shop")  # the stack's name only
    assert snaps.name_of("db") == volume and snaps.name_of(volume) == volume and snaps.name_of("x") == "x"
    assert snaps.volume("db") == volume


def test_delete_removes_the_drivers_copy_then_the_record_row(shop, memory_engine):
    _, snaps, volume, taken, loose = shop
    assert snaps.delete(volume, [taken.id, loose.id]) == [taken.id, loose.id]
    assert snaps.snapshots() == [] and memory_engine.snapshots[volume] == []


def test_a_stack_without_snapshots_lists_none(memory_engine):
    reconciler = make_reconciler(memory_engine)
    snaps = open_snapshots(reconciler, "empty")
    assert isinstance(snaps, StackSnapshots) and snaps.snapshots() == [] and snaps.owned() == {}
