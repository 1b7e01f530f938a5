"""A release's data (``reconciler.releasedata`` in ``reconciler.rollout``) against the in-memory engine."""
from __future__ import annotations

import time

import pytest

from reconciler.apply import Recorder, apply_plan
from reconciler.errors import PermanentError
from reconciler.labels import STACK
from reconciler.model import (
    ContainerSpec, DesiredState, Kind, LiveObject, LiveState, Mount, RolloutPolicy, Snapshot, SnapshotRetention,
    VolumeSpec,
)
from reconciler.planner import plan_changes
from reconciler.releasedata import ReleaseData, expired
from reconciler.report import ApplyOptions
from reconciler.retry import RetryPolicy
from reconciler.snapshotrecord import SnapshotRow
from reconciler.testing import MemoryEngine

OPTIONS = ApplyOptions(workers=2, retry=RetryPolicy(attempts=2, base=0.001, cap=0.002))
NAME, VOLUME = "s-db-1", "s_db"
SCHEMA_1 = {"schema": b"1", "rows": b"a\nb\n"}


class _Book(Recorder):
    """The executor's recorder, with the stack's record in a memory store."""

    def __init__(self, engine: MemoryEngine) -> None:
        self.book = engine.state.stack("e", "s")


def _setup(order="stop-first", state="running", restore="on-failure", retention=None, **fields):
    engine = MemoryEngine()
    engine.add(LiveObject(Kind.VOLUME, VOLUME, VOLUME, {STACK: "s"}, owned=True))
    old = LiveObject(Kind.CONTAINER, NAME, "old-id", {STACK: "s"}, owned=True, state=state,
                     details={"volumes": [VOLUME]})
    engine.add(old)
    engine.volume_content[VOLUME] = dict(SCHEMA_1)
    spec = ContainerSpec(key="db", name=NAME, replica=1, image_key=None, image_ref="img:2", config_hash="new",
                         mounts=(Mount(type="volume", source=VOLUME, target="/data"),),
                         update=RolloutPolicy(order=order, snapshot=("db",), restore=restore), **fields)
    desired = DesiredState(stack="s", containers={NAME: spec}, revision="b" * 40,
                           volumes={"db": VolumeSpec(key="db", name=VOLUME, retention=retention)})
    plan = plan_changes(desired, LiveState(containers={NAME: old}, volumes={VOLUME: engine.volumes[VOLUME]}))
    return engine, desired, plan


def _migrating(engine, drivers, *, fail: bool):
    """Make the new container rewrite the volume to schema 2 as it starts, then (``fail``) fail its health gate."""
    runtime = drivers.get(Kind.CONTAINER, "docker")
    start = runtime.start

    def migrate_then_start(name):
        start(name)
        if engine.containers[name].id != "old-id":
            engine.volume_content[VOLUME] = {"schema": b"2", "rows": b"a\nb\n", "new": b"x" * 4096}
    runtime.start = migrate_then_start
    if fail:
        engine.fail(("wait", NAME), PermanentError("container s-db-1 is running and unhealthy, not healthy"),
                    times=None)


def _apply(engine, desired, plan, options=OPTIONS, *, fail=True):
    drivers = engine.drivers("s")
    _migrating(engine, drivers, fail=fail)
    recorder = _Book(engine)
    return apply_plan(plan, desired, drivers, options=options, recorder=recorder), recorder.book


def test_stop_first_snapshots_after_the_stop_and_a_failed_rollout_restores_before_the_old_one_starts():
    engine, desired, plan = _setup()
    report, book = _apply(engine, desired, plan)
    outcome = report.outcomes[-1]
    assert not report.ok and "old one was put back" in outcome.error
    assert engine.volume_content[VOLUME] == SCHEMA_1
    assert engine.containers[NAME].id == "old-id" and engine.containers[NAME].state == "running"
    [row] = book.snapshots(VOLUME)
    assert row.state == "restored" and row.revision == "b" * 40 and row.container == NAME
    assert (f"data restored: {VOLUME} from snapshot {row.snapshot.id} (taken " in outcome.error
            and "0.0 MiB written since discarded)" in outcome.error)
    verbs = [c[0] for c in engine.calls if c[0] in ("stop", "snapshot", "start", "delete", "restore", "rename")]
    assert verbs == ["rename", "stop", "snapshot", "start", "delete", "restore", "rename", "start"]


def test_no_restore_keeps_the_data_and_says_so():
    engine, desired, plan = _setup()
    report, book = _apply(engine, desired, plan, ApplyOptions(workers=2, retry=OPTIONS.retry, restore=False))
    [row] = book.snapshots(VOLUME)
    assert engine.volume_content[VOLUME]["schema"] == b"2" and row.state == "taken"
    assert f"data kept: {VOLUME} (snapshot {row.snapshot.id} not restored)" in report.outcomes[-1].error
    assert not any(c[0] == "restore" for c in engine.calls)


def test_restore_never_keeps_the_data_too():
    engine, desired, plan = _setup(restore="never")
    report, _ = _apply(engine, desired, plan)
    assert engine.volume_content[VOLUME]["schema"] == b"2" and "data kept" in report.outcomes[-1].error


def test_start_first_pauses_for_the_snapshot_and_reports_the_pause():
    engine, desired, plan = _setup(order="start-first")
    report, book = _apply(engine, desired, plan, fail=False)
    assert report.ok, report.outcomes[-1].error
    verbs = [c[0] for c in engine.calls if c[0] in ("pause", "snapshot", "unpause", "rename", "start")]
    assert verbs == ["pause", "snapshot", "unpause", "rename", "start"]
    assert "paused 0.0" in report.outcomes[-1].note and f"snapshot {VOLUME}: " in report.outcomes[-1].note
    assert [r.state for r in book.snapshots()] == ["taken"]


def test_start_first_rollback_stops_the_old_one_before_the_restore():
    engine, desired, plan = _setup(order="start-first")
    report, _ = _apply(engine, desired, plan)
    assert "data restored" in report.outcomes[-1].error and engine.volume_content[VOLUME] == SCHEMA_1
    verbs = [c[:2] for c in engine.calls if c[0] in ("stop", "restore", "delete")]
    assert verbs == [("delete", NAME), ("stop", "old-id"), ("restore", VOLUME)]
    assert engine.containers[NAME].state == "running" and engine.containers[NAME].id == "old-id"


def test_a_failed_snapshot_fails_the_change_before_anything_else_and_unpauses():
    engine, desired, plan = _setup(order="start-first")
    engine.fail(("snapshot", VOLUME), PermanentError("no space left on device"), times=None)
    report, book = _apply(engine, desired, plan, fail=False)
    error = report.outcomes[-1].error
    assert "snapshot before the release failed, nothing was replaced" in error and "no space left" in error
    assert [c[0] for c in engine.calls if c[0] in ("pause", "unpause", "rename", "create")] == ["pause", "unpause"]
    assert engine.containers[NAME].state == "running" and book.snapshots() == []


def test_a_failed_stop_first_snapshot_puts_the_old_one_back_running():
    engine, desired, plan = _setup()
    engine.fail(("snapshot", VOLUME), PermanentError("no space left on device"), times=None)
    report, _ = _apply(engine, desired, plan, fail=False)
    assert "nothing was replaced" in report.outcomes[-1].error
    assert list(engine.containers) == [NAME] and engine.containers[NAME].id == "old-id"
    assert engine.containers[NAME].state == "running" and engine.volume_content[VOLUME] == SCHEMA_1


def test_a_container_not_running_is_snapshotted_before_anything_else():
    engine, desired, plan = _setup(state="exited")
    report, _ = _apply(engine, desired, plan, fail=False)
    assert report.ok
    verbs = [c[0] for c in engine.calls if c[0] in ("pause", "snapshot", "rename", "stop", "delete", "create", "start")]
    assert verbs == ["snapshot", "delete", "create", "start"]  # replaced directly: no traffic to protect
    assert f"snapshot {VOLUME}: " in report.outcomes[-1].note


def test_retention_prunes_oldest_first_after_a_good_release_never_the_new_one():
    engine, desired, plan = _setup(retention=SnapshotRetention(keep=2))
    book = engine.state.stack("e", "s")
    storage = engine.drivers("s").get(Kind.VOLUME, "local")
    for _ in range(3):
        taken = storage.snapshot(VOLUME)
        book.snapshot_taken(VOLUME, "local", taken, container=NAME, revision=None, from_revision=None)
    old_ids = [r.snapshot.id for r in book.snapshots()]
    report, _ = _apply(engine, desired, plan, fail=False)
    assert report.ok
    kept = [r.snapshot.id for r in book.snapshots()]
    assert kept[0] == old_ids[-1] and len(kept) == 2 and kept[1] not in old_ids
    assert [s.id for s in storage.list_snapshots(VOLUME)] == kept
    assert [c[2] for c in engine.calls if c[0] == "delete-snapshot"] == old_ids[:2]


def _row(sid: str, created: float, state: str = "taken") -> SnapshotRow:
    return SnapshotRow(VOLUME, "local", Snapshot(sid, VOLUME, created, 1, 1), NAME, None, None, state, "")


def test_expired_by_count_and_age_never_the_kept_or_restoring():
    rows = [_row("a", 0.0), _row("b", 100.0, "restoring"), _row("c", 200.0), _row("d", 300.0)]
    assert [r.snapshot.id for r in expired(rows, SnapshotRetention(keep=2))] == ["a"]
    assert [r.snapshot.id for r in expired(rows, SnapshotRetention(keep=5, max_age=150.0), now=360.0)] == ["a", "c"]
    assert expired(rows, SnapshotRetention(keep=1), keep_ids={"a", "c"}) == []


def test_the_from_revision_is_the_last_recorded_sync():
    from reconciler.state import Sync, SyncResult

    engine, desired, plan = _setup()
    engine.state.add_sync(Sync("e", "s", "a" * 40, "", SyncResult.CONVERGED, 1.0))
    _, book = _apply(engine, desired, plan, fail=False)
    [row] = book.snapshots()
    assert (row.from_revision, row.revision) == ("a" * 40, "b" * 40)


def test_release_data_names_the_engine_volumes():
    engine, desired, _ = _setup()
    data = ReleaseData(NAME, desired, engine.drivers("s"))
    assert [(name, driver) for name, driver, _ in data.volumes] == [(VOLUME, "local")]
    assert data.restores(True) is False  # nothing taken yet
    assert data.take() and data.restores(True) and not data.restores(False)


PASS_SPEC = """
name: demo
volumes:
  data: {snapshots: {keep: 3}}
containers:
  db:
    image: busybox:1
    volumes: ["data:/data"]
    env: {VERSION: "%s"}
    update: {order: stop-first, snapshot: [data]}
"""


def _pass(tmp_path, engine, version="1"):
    from reconciler.spec import load_desired
    from reconciler.testing import make_reconciler

    reconciler = make_reconciler(engine)
    (tmp_path / "stack.yaml").write_text(PASS_SPEC % version)
    desired = load_desired([tmp_path / "stack.yaml"], drivers=reconciler.driver_catalog(), environ={})
    return reconciler, desired


def _book(reconciler):
    return reconciler.book("demo", reconciler.engine_identity(reconciler.drivers("demo")))


def test_a_pass_finishes_a_restore_a_killed_pass_left_before_anything_else(tmp_path):
    from reconciler.reconcile import ApplyRequest

    engine = MemoryEngine()
    reconciler, desired = _pass(tmp_path, engine)
    assert reconciler.apply(desired, ApplyRequest(options=OPTIONS)).ok
    volume = desired.volumes["data"].name
    engine.volume_content[volume] = dict(SCHEMA_1)
    storage = engine.drivers("demo").get(Kind.VOLUME, "local")
    taken = storage.snapshot(volume)
    book = _book(reconciler)
    book.snapshot_taken(volume, "local", taken, container="demo-db-1", revision=None, from_revision=None)
    book.snapshot_state(volume, taken.id, "restoring")  # killed midway: half of it restored
    engine.volume_content[volume] = {"schema": b"2"}
    engine.calls.clear()
    report = reconciler.apply(desired, ApplyRequest(options=OPTIONS))
    assert report.ok and engine.volume_content[volume] == SCHEMA_1
    assert [r.state for r in book.snapshots()] == ["restored"]
    assert report.notes == (f"finished an interrupted restore: data restored: {volume} from snapshot {taken.id} "
                            f"(taken {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime(taken.created))}, "
                            "0.0 MiB written since discarded)",)
    verbs = [c[0] for c in engine.calls if c[0] != "observe"]
    assert verbs == ["stop", "restore", "start"]  # the container using the volume stopped first, then started
    assert engine.containers["demo-db-1"].state == "running"
    from reconciler.render import report_text

    assert "finished an interrupted restore" in report_text(report)


def test_a_restore_that_cannot_be_finished_fails_the_pass_saying_so(tmp_path):
    from reconciler.errors import ReconcilerError
    from reconciler.reconcile import ApplyRequest

    engine = MemoryEngine()
    reconciler, desired = _pass(tmp_path, engine)
    assert reconciler.apply(desired, ApplyRequest(options=OPTIONS)).ok
    volume = desired.volumes["data"].name
    book = _book(reconciler)
    gone = Snapshot("20261207T184500Z-000000", volume, 1.0, 1, 1)
    book.snapshot_taken(volume, "local", gone, container="demo-db-1", revision=None, from_revision=None)
    book.snapshot_state(volume, gone.id, "restoring")
    with pytest.raises(ReconcilerError, match=f"an interrupted restore of {volume} \\(snapshot {gone.id}\\) could "
                                              "not be finished: volume .* has no snapshot"):
        reconciler.apply(desired, ApplyRequest(options=OPTIONS))
    assert [r.state for r in book.snapshots()] == ["restoring"]


def test_a_converged_pass_with_snapshots_configured_still_writes_nothing(tmp_path):
    from reconciler.reconcile import ApplyRequest

    engine = MemoryEngine()
    reconciler, desired = _pass(tmp_path, engine)
    assert reconciler.apply(desired, ApplyRequest(options=OPTIONS)).ok
    engine.calls.clear()
    again = reconciler.apply(desired, ApplyRequest(options=OPTIONS))
    assert again.outcomes == () and again.stats.get("write", 0) == 0 and again.notes == ()
    assert {call[0] for call in engine.calls} == {"observe"}


def test_a_release_through_the_reconciler_records_its_snapshot_and_revisions(tmp_path):
    from reconciler.reconcile import ApplyRequest

    engine = MemoryEngine()
    reconciler, desired = _pass(tmp_path, engine)
    assert reconciler.apply(desired, ApplyRequest(options=OPTIONS)).ok
    _, second = _pass(tmp_path, engine, version="2")
    report = reconciler.apply(second, ApplyRequest(options=OPTIONS))
    assert report.ok, [o.error for o in report.outcomes]
    [row] = _book(reconciler).snapshots()
    assert row.container == "demo-db-1" and row.state == "taken" and row.driver == "local"
    assert report.outcomes[-1].note.startswith(f"snapshot {row.volume}: {row.snapshot.id}")


@pytest.mark.parametrize("command", [["apply", "-f", "x.yaml"], ["watch", "-f", "x.yaml"]])
def test_no_restore_reaches_the_apply_options(command):
    from reconciler.cli.local import request_of
    from reconciler.cli.parser import build_parser

    default = build_parser(command).parse_args(command)
    assert request_of(default).options.restore is True
    argv = [*command, "--no-restore"]
    assert request_of(build_parser(argv).parse_args(argv)).options.restore is False


def test_the_daemon_takes_no_restore():
    from reconciler.cli.parser import build_parser

    argv = ["daemon", "--config", "d.yaml", "--no-restore"]
    assert build_parser(argv).parse_args(argv).restore is False
    argv = ["daemon", "--config", "d.yaml"]
    assert build_parser(argv).parse_args(argv).restore is True


def test_destroy_with_prune_volumes_keeps_the_snapshots(tmp_path):
    from reconciler.reconcile import ApplyRequest

    engine = MemoryEngine()
    reconciler, desired = _pass(tmp_path, engine)
    assert reconciler.apply(desired, ApplyRequest(options=OPTIONS)).ok
    _, second = _pass(tmp_path, engine, version="2")
    assert reconciler.apply(second, ApplyRequest(options=OPTIONS)).ok
    [row] = _book(reconciler).snapshots()
    report = reconciler.destroy("demo", ApplyRequest(prune_volumes=True, options=OPTIONS))
    assert report.ok and row.volume not in engine.volumes
    assert _book(reconciler).snapshots() == [row]
    assert [taken.id for taken, _ in engine.snapshots[row.volume]] == [row.snapshot.id]


def test_the_daemons_passes_restore_unless_told_not_to():
    import dataclasses

    from reconciler.daemon.config import DaemonConfig

    config = DaemonConfig(sources=(), state_dir="/nonexistent")
    assert config.apply_options.restore is True
    assert dataclasses.replace(config, restore=False).apply_options.restore is False


def _direct(plan):
    """The plan with its container replaced directly while it runs (as when its network is recreated)."""
    import dataclasses

    changes = tuple(dataclasses.replace(c, rollout=None, live_state="") if c.kind is Kind.CONTAINER else c
                    for c in plan.changes)
    return dataclasses.replace(plan, changes=changes)


def test_a_running_container_replaced_directly_is_stopped_before_its_snapshot():
    engine, desired, plan = _setup()
    report, _ = _apply(engine, desired, _direct(plan), fail=False)
    assert report.ok, report.outcomes[-1].error
    verbs = [c[0] for c in engine.calls if c[0] in ("stop", "snapshot", "delete", "create", "start")]
    assert verbs == ["stop", "snapshot", "delete", "create", "start"]


def test_a_failed_snapshot_of_a_container_replaced_directly_starts_it_again():
    engine, desired, plan = _setup()
    engine.fail(("snapshot", VOLUME), PermanentError("no space left on device"), times=None)
    report, _ = _apply(engine, desired, _direct(plan), fail=False)
    assert "nothing was replaced" in report.outcomes[-1].error
    assert engine.containers[NAME].id == "old-id" and engine.containers[NAME].state == "running"
