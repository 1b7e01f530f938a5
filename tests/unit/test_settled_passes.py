"""Resync passes that need no plan: a stack as its last empty plan left it ends after observing; anything a plan
reads that changed (its live objects, its spec, its record), a pass that is no sweep's, and every FULL_EVERY-th
resync plan in full."""
from __future__ import annotations

import dataclasses
import time

import pytest

import reconciler.reconcile as reconcile_module
from reconciler.model import Kind, LiveObject, LiveState
from reconciler.reconcile import ApplyRequest
from reconciler.settled import FULL_EVERY, live_fingerprint
from reconciler.spec import load_desired
from reconciler.testing import make_reconciler

SPEC = """
name: calm
containers:
  web: {image: "busybox:1", ports: ["8080:80"]}
"""


@pytest.fixture
def setup(tmp_path, memory_engine, monkeypatch):
    (tmp_path / "stack.yaml").write_text(SPEC)
    reconciler = make_reconciler(memory_engine)
    desired = load_desired([tmp_path / "stack.yaml"], drivers=reconciler.driver_catalog())
    plans = []
    real = reconcile_module.plan_changes

    def counted(*args, **kwargs):
        plans.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(reconcile_module, "plan_changes", counted)
    assert reconciler.apply(desired).ok
    return reconciler, desired, plans


def _resync(reconciler, desired):
    return reconciler.apply(desired, ApplyRequest(trigger="resync", snapshot_at=time.monotonic()))


def test_a_resync_of_a_stack_as_its_last_empty_plan_left_it_plans_nothing(setup, memory_engine):
    reconciler, desired, plans = setup
    first = _resync(reconciler, desired)  # the full pass that finds nothing to do: remembered
    assert len(plans) == 2 and first.ok and not first.outcomes
    quiet = _resync(reconciler, desired)
    assert len(plans) == 2  # observed, not planned
    assert quiet.ok and not quiet.outcomes and quiet.trigger == "resync" and quiet.stats.get("write", 0) == 0


def test_drift_no_event_told_is_planned_and_repaired_at_the_next_resync(setup, memory_engine):
    reconciler, desired, plans = setup
    _resync(reconciler, desired)
    _resync(reconciler, desired)
    before = len(plans)
    memory_engine.remove("calm-web-1")
    repaired = _resync(reconciler, desired)
    assert len(plans) == before + 1 and [o.change.name for o in repaired.outcomes] == ["calm-web-1"]
    assert "calm-web-1" in memory_engine.containers


def test_a_stopped_container_is_drift_too(setup, memory_engine):
    reconciler, desired, plans = setup
    _resync(reconciler, desired)
    memory_engine.stop("calm-web-1")
    assert _resync(reconciler, desired).outcomes  # started again
    assert memory_engine.containers["calm-web-1"].state == "running"


def test_a_record_written_since_a_new_spec_and_a_pass_of_no_sweep_plan_in_full(setup, tmp_path, memory_engine):
    reconciler, desired, plans = setup
    _resync(reconciler, desired)
    count = len(plans)
    reconciler.state.suspend("someone-else")  # any write to the record
    _resync(reconciler, desired)
    assert len(plans) == count + 1
    reloaded = load_desired([tmp_path / "stack.yaml"], drivers=reconciler.driver_catalog())  # equal, not the same
    _resync(reconciler, reloaded)
    assert len(plans) == count + 2
    reconciler.apply(reloaded, ApplyRequest(trigger="engine"))  # an event's pass lists afresh and plans
    assert len(plans) == count + 3
    _resync(reconciler, reloaded)
    assert len(plans) == count + 3  # and settled again after it


def test_another_stacks_pass_writing_its_own_record_leaves_this_one_settled(setup, tmp_path, memory_engine):
    reconciler, desired, plans = setup
    _resync(reconciler, desired)
    count = len(plans)
    other = tmp_path / "other"
    other.mkdir()
    (other / "stack.yaml").write_text("name: other\ncontainers:\n  web: {image: \"busybox:1\"}\n")
    assert reconciler.apply(load_desired([other / "stack.yaml"], drivers=reconciler.driver_catalog())).ok
    assert len(plans) == count + 1  # the other stack's create: its record and its history written
    assert _resync(reconciler, desired).settled and len(plans) == count + 1
    reconciler.state.suspend("someone-else")
    assert not _resync(reconciler, desired).settled  # a write that is not one stack's own: planned in full


def test_every_full_every_th_resync_plans_all_the_same(setup):
    reconciler, desired, plans = setup
    _resync(reconciler, desired)
    count = len(plans)
    for _ in range(FULL_EVERY - 1):
        _resync(reconciler, desired)
    assert len(plans) == count  # FULL_EVERY - 1 settled resyncs...
    _resync(reconciler, desired)
    assert len(plans) == count + 1  # ...and the next one plans


def test_a_stack_watching_its_writable_layer_always_plans(tmp_path, memory_engine, monkeypatch):
    (tmp_path / "stack.yaml").write_text(SPEC.replace('ports: ["8080:80"]', 'filesystem: report'))
    reconciler = make_reconciler(memory_engine)
    desired = load_desired([tmp_path / "stack.yaml"], drivers=reconciler.driver_catalog())
    assert reconciler.apply(desired).ok
    plans = []
    real = reconcile_module.plan_changes
    monkeypatch.setattr(reconcile_module, "plan_changes", lambda *a, **k: plans.append(1) or real(*a, **k))
    for _ in range(3):
        _resync(reconciler, desired)
    assert len(plans) == 3


def test_the_fingerprint_leaves_out_the_status_text_and_keeps_what_plans_read():
    web = LiveObject(Kind.CONTAINER, "web", "c1", {"a": "1"}, owned=True, state="running",
                     details={"status": "Up 5 minutes", "networks": ["n"]})
    later = dataclasses.replace(web, details={"status": "Up 6 minutes", "networks": ["n"]})
    assert live_fingerprint(LiveState(containers={"web": web})) == live_fingerprint(LiveState(containers={"web": later}))
    for changed in (dataclasses.replace(web, state="exited"), dataclasses.replace(web, id="c2"),
                    dataclasses.replace(web, labels={"a": "2"}), dataclasses.replace(web, details={"networks": []}),
                    dataclasses.replace(web, health="unhealthy")):
        assert live_fingerprint(LiveState(containers={"web": changed})) != live_fingerprint(
            LiveState(containers={"web": web}))
