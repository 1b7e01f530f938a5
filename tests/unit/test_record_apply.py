"""The record through whole applies, on the in-memory engine: what is written, what is refused, recovery."""
from __future__ import annotations

import dataclasses

import pytest

from reconciler.errors import PermanentError, PluginError, RecreateRequired
from reconciler.labels import CONFIG_HASH, KIND, NAME, STACK, VOLUME_ID
from reconciler.model import Kind, LiveObject
from reconciler.reconcile import ApplyRequest
from reconciler.report import ApplyOptions
from reconciler.retry import RetryPolicy
from reconciler.spec import load_desired
from reconciler.state import SyncResult
from reconciler.testing import make_reconciler

FAST = ApplyOptions(retry=RetryPolicy(attempts=3, base=0.001, cap=0.002))
SPEC = """
name: demo
networks:
  back: {}
volumes:
  data: {}
containers:
  web:
    image: busybox:1
    replicas: 2
    networks: [back]
    volumes: ["data:/data"]
"""


@pytest.fixture
def stack(tmp_path, memory_engine):
    reconciler = make_reconciler(memory_engine)
    (tmp_path / "stack.yaml").write_text(SPEC)
    desired = load_desired([tmp_path / "stack.yaml"], drivers=reconciler.driver_names(), environ={})
    return reconciler, desired


def _book(reconciler, stack="demo"):
    return reconciler.book(stack, reconciler.engine_identity(reconciler.drivers(stack)))


def _apply(reconciler, desired, **flags):
    return reconciler.apply(desired, ApplyRequest(options=FAST, **flags))


def _forge(engine, name: str, like: str) -> LiveObject:
    """A container someone made by hand, its labels copied from ``like``."""
    original = engine.containers[like]
    forged = dataclasses.replace(original, name=name, id="forged-" + name)
    engine.add(forged)
    return forged


def test_every_object_created_is_recorded_with_its_id_and_each_pass_is_in_the_history(stack, memory_engine):
    reconciler, desired = stack
    assert _apply(reconciler, desired).ok
    rows = {(r.kind, r.name): r for r in _book(reconciler).objects()}
    assert {name: rows[(Kind.CONTAINER, name)].object_id for name in memory_engine.containers} == {
        name: c.id for name, c in memory_engine.containers.items()}
    assert rows[(Kind.NETWORK, "demo_back")].object_id == memory_engine.networks["demo_back"].id
    volume = memory_engine.volumes["demo_data"]
    assert rows[(Kind.VOLUME, "demo_data")].object_id == volume.labels[VOLUME_ID] == volume.id
    assert {r.origin for r in rows.values()} == {"created"}
    assert _apply(reconciler, desired).outcomes == ()
    history = reconciler.state.syncs(stack="demo")
    assert [(s.result, s.summary) for s in history] == [(SyncResult.CONVERGED, "no changes"),
                                                       (SyncResult.CONVERGED, "create 5")]


def test_a_forged_replica_is_neither_scaled_down_nor_destroyed_without_adopt(stack, memory_engine):
    reconciler, desired = stack
    assert _apply(reconciler, desired).ok
    _forge(memory_engine, "demo-web-3", like="demo-web-2")
    report = _apply(reconciler, desired)
    [failed] = [o for o in report.outcomes if o.error]
    assert failed.change.name == "demo-web-3" and "--adopt" in failed.error
    assert "demo-web-3" in memory_engine.containers and ("delete", "demo-web-3") not in memory_engine.calls
    destroyed = reconciler.destroy("demo", ApplyRequest(options=FAST))
    assert set(memory_engine.containers) == {"demo-web-3"} and not destroyed.ok
    assert "demo_back" in memory_engine.networks  # its endpoint is still there: skipped, not forced
    assert reconciler.state.syncs(stack="demo")[0].result is SyncResult.FAILED
    assert reconciler.destroy("demo", ApplyRequest(options=FAST, adopt=True)).ok
    assert memory_engine.containers == {} and memory_engine.networks == {}


def _run_from_our_image(engine, name: str) -> LiveObject:
    """``docker run`` of an image the stack built, by hand: the container carries the image's labels."""
    image_labels = {STACK: "demo", KIND: "image", NAME: "web", CONFIG_HASH: "image-hash"}
    container = LiveObject(Kind.CONTAINER, name, "by-hand-" + name, labels=image_labels, state="running")
    engine.add(container)
    return container


def test_a_container_run_from_our_image_is_a_strangers_even_with_adopt(stack, memory_engine):
    reconciler, desired = stack
    assert _apply(reconciler, desired).ok
    _run_from_our_image(memory_engine, "someones-web")
    plan, _ = reconciler.plan(desired)
    assert plan.empty, [(c.name, c.error) for c in plan.changes]
    assert _apply(reconciler, desired, adopt=True).outcomes == ()
    assert memory_engine.containers["someones-web"].state == "running"
    assert reconciler.destroy("demo", ApplyRequest(options=FAST, adopt=True)).ok
    assert set(memory_engine.containers) == {"someones-web"}, "destroy --adopt removes the stack's only"


def test_a_container_run_from_our_image_under_a_wanted_name_is_not_managed(stack, memory_engine):
    reconciler, desired = stack
    _run_from_our_image(memory_engine, "demo-web-1")
    plan, _ = reconciler.plan(desired, adopt=True)
    [refused] = [c for c in plan.changes if c.error]
    assert refused.name == "demo-web-1" and "exists and is not managed by this stack" in refused.error


def test_a_volume_is_pruned_only_when_the_reconciler_created_it(stack, memory_engine):
    reconciler, desired = stack
    memory_engine.add(LiveObject(Kind.VOLUME, "demo_cache", "demo_cache",
                                 labels={STACK: "demo", KIND: "volume", NAME: "cache"}))
    assert _apply(reconciler, desired).ok
    report = reconciler.destroy("demo", ApplyRequest(options=FAST, prune_volumes=True))
    assert set(memory_engine.volumes) == {"demo_cache"}, "ours pruned, the foreign one kept"
    [kept] = [o for o in report.outcomes if o.error]
    assert kept.change.name == "demo_cache"
    assert reconciler.destroy("demo", ApplyRequest(options=FAST, prune_volumes=True, adopt=True)).ok
    assert memory_engine.volumes == {}


def test_a_missing_record_is_rebuilt_without_deleting_then_kept(stack, memory_engine, tmp_path):
    reconciler, desired = stack
    assert _apply(reconciler, desired).ok
    memory_engine.state = type(memory_engine.state).in_memory()  # a new machine: the record is gone
    again = make_reconciler(memory_engine)
    _forge(memory_engine, "demo-web-3", like="demo-web-2")
    report = _apply(again, desired)
    assert {o.change.name for o in report.outcomes} == {"demo-web-3"} and not report.ok
    assert "demo-web-3" in memory_engine.containers
    assert {r.origin for r in _book(again).objects()} == {"adopted"} and len(_book(again).objects()) == 4
    volumes = again.destroy("demo", ApplyRequest(options=FAST, prune_volumes=True, adopt=False))
    assert "demo_data" in memory_engine.volumes, "an adopted volume's data needs --adopt"
    assert any("--prune-volumes --adopt" in o.change.error for o in volumes.outcomes)


def test_a_driver_that_returns_no_id_fails_naming_it_and_what_it_made_is_matched_on_the_next_pass(
        stack, memory_engine):
    reconciler, desired = stack
    runtime = type(memory_engine.drivers("demo").get(Kind.CONTAINER, "docker"))
    original = runtime.create
    runtime.create = lambda self, spec, labels: (original(self, spec, labels), None)[1]
    try:
        report = _apply(reconciler, desired)
    finally:
        runtime.create = original
    failed = [o for o in report.outcomes if o.change.kind is Kind.CONTAINER]
    assert failed and all(isinstance(o.exception, PluginError) for o in failed)
    assert "the runtime driver 'docker' returned None for demo-web-1, not the new object's id" in failed[0].error
    pending = [r for r in _book(reconciler).objects() if r.kind is Kind.CONTAINER]
    assert [r.object_id for r in pending] == ["", ""]
    memory_engine.calls.clear()
    assert _apply(reconciler, desired).ok  # matched by name and hash: started, not made again
    assert not [call for call in memory_engine.calls if call[0] == "create"]
    assert {r.object_id for r in _book(reconciler).objects() if r.kind is Kind.CONTAINER} == {
        c.id for c in memory_engine.containers.values()}


def test_a_container_the_engine_cannot_start_after_a_crash_is_recreated(stack, memory_engine):
    reconciler, desired = stack
    assert _apply(reconciler, desired).ok
    old = memory_engine.containers["demo-web-1"]
    memory_engine.add(dataclasses.replace(old, state="created"))  # the engine died while starting it
    memory_engine.fail(("start", "demo-web-1"), RecreateRequired(
        "start container demo-web-1: task " + "f" * 64 + ": already exists"))
    memory_engine.calls.clear()
    report = _apply(reconciler, desired)
    assert report.ok, [o.error for o in report.outcomes]
    assert [c for c in memory_engine.calls if c[0] != "observe"] == [
        ("start", "demo-web-1"), ("delete", "demo-web-1"), ("create", "demo-web-1"), ("start", "demo-web-1")]
    new = memory_engine.containers["demo-web-1"]
    assert new.id != old.id and new.state == "running"
    ids = {r.object_id for r in _book(reconciler).objects() if r.name == "demo-web-1"}
    assert ids == {new.id}
    assert _apply(reconciler, desired).outcomes == ()


def test_a_container_that_fails_to_start_for_another_reason_is_not_recreated(stack, memory_engine):
    reconciler, desired = stack
    assert _apply(reconciler, desired).ok
    memory_engine.add(dataclasses.replace(memory_engine.containers["demo-web-1"], state="exited", exit_code=1))
    memory_engine.fail(("start", "demo-web-1"), PermanentError("OCI runtime create failed"))
    report = _apply(reconciler, desired)
    assert not report.ok and ("delete", "demo-web-1") not in memory_engine.calls


def test_a_fresh_container_is_not_recreated_in_a_loop(stack, memory_engine):
    reconciler, desired = stack
    memory_engine.fail(("start", "demo-web-1"), RecreateRequired("id already in use"), times=None)
    report = _apply(reconciler, desired)
    [failed] = [o for o in report.outcomes if o.error]
    assert failed.change.name == "demo-web-1" and memory_engine.calls.count(("create", "demo-web-1")) == 1


def test_a_loops_quiet_resyncs_at_one_revision_add_one_row_and_every_other_pass_adds_its_own(stack, memory_engine):
    reconciler, desired = stack
    at = dataclasses.replace(desired, revision="a" * 40)
    resync, engine = (ApplyRequest(options=FAST, trigger=why) for why in ("resync", "engine"))
    assert reconciler.apply(at, ApplyRequest(options=FAST, trigger="start")).ok  # creates: a row
    for request in (resync, resync, engine, resync):  # the first quiet pass writes its row, the others none
        assert reconciler.apply(at, request).outcomes == ()
    rows = [(s.trigger, s.summary) for s in reconciler.state.syncs(stack="demo")]
    assert rows == [("resync", "no changes"), ("start", "create 5")]
    assert reconciler.apply(at, ApplyRequest(options=FAST)).outcomes == ()  # asked for by name (the CLI): a row
    memory_engine.remove("demo-web-1")
    assert reconciler.apply(at, engine).outcomes  # a repair is news: a row
    assert reconciler.apply(at, resync).outcomes == ()  # quiet again after a change: a row
    assert reconciler.apply(dataclasses.replace(desired, revision="b" * 40), resync).outcomes == ()  # a new revision
    rows = [(s.trigger, s.summary, s.revision[:1]) for s in reconciler.state.syncs(stack="demo")][:5]
    assert rows == [("resync", "no changes", "b"), ("resync", "no changes", "a"), ("engine", "create 1", "a"),
                    ("manual", "no changes", "a"), ("resync", "no changes", "a")]
