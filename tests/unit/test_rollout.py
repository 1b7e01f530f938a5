"""Rolling replacements against the in-memory engine: the old container is kept until its successor runs."""
from __future__ import annotations

import pytest

from reconciler.apply import apply_plan
from reconciler.errors import PermanentError
from reconciler.labels import STACK
from reconciler.model import ContainerSpec, DesiredState, Kind, LiveObject, LiveState, Port, RolloutPolicy
from reconciler.planner import plan_changes
from reconciler.report import ApplyOptions
from reconciler.retry import RetryPolicy
from reconciler.testing import MemoryEngine

OPTIONS = ApplyOptions(workers=2, retry=RetryPolicy(attempts=2, base=0.001, cap=0.002))
NAME = "s-web-1"


def _setup(state="running", **spec_fields):
    engine = MemoryEngine()
    old = LiveObject(Kind.CONTAINER, NAME, "old-id", {STACK: "s"}, owned=True, state=state)
    engine.add(old)
    spec = ContainerSpec(key="web", name=NAME, replica=1, image_key=None, image_ref="img:1", config_hash="new",
                         **spec_fields)
    desired = DesiredState(stack="s", containers={NAME: spec})
    plan = plan_changes(desired, LiveState(containers={NAME: old}))
    return engine, desired, plan


def _apply(engine, desired, plan, options=OPTIONS):
    return apply_plan(plan, desired, engine.drivers("s"), options=options)


def test_the_plan_says_how_each_replacement_rolls():
    _, _, plan = _setup()
    assert plan.changes[-1].rollout.order == "start-first"
    _, _, plan = _setup(ports=(Port(80, 8080),))
    assert plan.changes[-1].rollout.order == "stop-first"
    assert "8080" in plan.changes[-1].rollout.why
    _, _, plan = _setup(ports=(Port(80, 8080),), update=RolloutPolicy(order="start-first"))
    assert plan.changes[-1].rollout.order == "start-first"
    _, _, plan = _setup(addresses=(("s_lan", "172.30.0.10", ""),))
    assert plan.changes[-1].rollout.order == "stop-first"
    assert plan.changes[-1].rollout.why == "static address 172.30.0.10"


def test_a_create_the_engine_refuses_gives_the_old_container_its_name_back():
    engine, desired, plan = _setup()
    engine.fail(("create", NAME), PermanentError("Minimum memory limit allowed is 6MB"), times=None)
    report = _apply(engine, desired, plan)
    assert not report.ok and "Minimum memory limit" in report.outcomes[-1].error
    assert engine.containers[NAME].id == "old-id" and engine.containers[NAME].state == "running"
    assert not any(c[0] in ("stop", "delete") for c in engine.calls)  # never stopped, never removed


def test_a_successor_that_fails_to_start_is_removed_and_the_old_one_put_back():
    engine, desired, plan = _setup(update=RolloutPolicy(order="stop-first"))
    engine.fail(("start", NAME), PermanentError("port is already allocated"))  # the new one's start
    report = _apply(engine, desired, plan)
    outcome = report.outcomes[-1]
    assert not report.ok and "old one was put back" in outcome.error and "port is already allocated" in outcome.error
    assert list(engine.containers) == [NAME]
    assert engine.containers[NAME].id == "old-id" and engine.containers[NAME].state == "running"
    assert ("stop", "old-id") in engine.calls  # stop-first stopped it, and the rollback started it again


def test_no_rollback_keeps_the_failed_state_and_says_where_the_old_one_is():
    engine, desired, plan = _setup()
    engine.fail(("start", NAME), PermanentError("exec format error"), times=None)
    report = _apply(engine, desired, plan, ApplyOptions(workers=2, retry=OPTIONS.retry, rollback=False))
    assert "not rolled back" in report.outcomes[-1].error and f"{NAME}-old-old-id" in report.outcomes[-1].error
    assert engine.containers[f"{NAME}-old-old-id"].state == "running"


def test_a_good_rollout_leaves_only_the_successor():
    engine, desired, plan = _setup()
    report = _apply(engine, desired, plan)
    assert report.ok
    assert list(engine.containers) == [NAME] and engine.containers[NAME].id != "old-id"
    assert engine.containers[NAME].state == "running"


def test_replicas_roll_one_after_another_by_default():
    engine = MemoryEngine()
    olds = [LiveObject(Kind.CONTAINER, f"s-web-{n}", f"old{n}", owned=True, state="running") for n in (1, 2, 3)]
    engine.add(*olds)
    specs = {f"s-web-{n}": ContainerSpec(key="web", name=f"s-web-{n}", replica=n, image_key=None, image_ref="img:1",
                                         config_hash="new") for n in (1, 2, 3)}
    desired = DesiredState(stack="s", containers=specs)
    plan = plan_changes(desired, LiveState(containers={o.name: o for o in olds}))
    report = _apply(engine, desired, plan)
    assert report.ok
    starts = [c[1] for c in engine.calls if c[0] == "start"]
    removals = [c[1] for c in engine.calls if c[0] == "delete"]
    assert starts == ["s-web-1", "s-web-2", "s-web-3"]
    # replica n+1 starts only after replica n's old container is gone
    order = [c for c in engine.calls if c[0] in ("start", "delete")]
    assert order.index(("delete", removals[0])) < order.index(("start", "s-web-2"))


@pytest.mark.parametrize("state", ["restarting", "exited", "dead", "created"])
@pytest.mark.parametrize("order", ["start-first", "stop-first"])
def test_a_container_that_serves_nobody_is_replaced_directly(state, order):
    """Issue 21 §2: a crash-looping (or stopped) container has no traffic to protect; the engine cannot rename it."""
    engine, desired, plan = _setup(state, update=RolloutPolicy(order=order))
    change = plan.changes[-1]
    assert change.rollout is None and change.live_state == state
    assert any(reason.startswith(f"{state}: no traffic to protect") for reason in change.reasons)
    assert _apply(engine, desired, plan).ok
    assert [c for c in engine.calls if c[1] in (NAME, "old-id")] == [  # never renamed
        ("delete", NAME), ("create", NAME), ("start", NAME)]
    assert list(engine.containers) == [NAME] and engine.containers[NAME].state == "running"


def test_a_paused_container_still_rolls():
    _, _, plan = _setup("paused")
    assert plan.changes[-1].rollout.order == "start-first"
