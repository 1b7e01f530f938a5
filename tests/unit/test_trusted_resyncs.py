"""Resyncs that trust the engine's events: after a pass that found nothing to do, a resync of a stack that heard no
event on streams open all the while does not look, at most TRUSTED_IN_A_ROW times in a row; anything that could
have changed what a plan reads makes it look (in-memory engine)."""
from __future__ import annotations

import pytest

from reconciler.loop import StackLoop, Trigger
from reconciler.model import EngineEvent, Kind
from reconciler.spec import load_desired
from reconciler.testing import make_reconciler
from reconciler.trust import TRUSTED_IN_A_ROW

SPEC = """
name: calm
containers:
  web: {image: "busybox:1"}
"""


@pytest.fixture
def loop(tmp_path, memory_engine):
    (tmp_path / "stack.yaml").write_text(SPEC)
    reconciler = make_reconciler(memory_engine)
    desired = load_desired([tmp_path / "stack.yaml"], drivers=reconciler.driver_catalog())
    loop = StackLoop(reconciler, lambda: desired)
    loop.unbroken_since = lambda: 0.0  # the streams opened before any pass, and never broke
    assert loop.step().ok and "calm-web-1" in memory_engine.containers  # the create
    return loop


def _resync(loop, memory_engine):
    """One resync; whether it looked (observed the engine)."""
    memory_engine.calls.clear()
    loop.trigger(Trigger.RESYNC)
    result = loop.step()
    assert result.ok and result.trigger is Trigger.RESYNC
    looked = any(call[0] == "observe" for call in memory_engine.calls)
    assert looked is not result.trusted
    return looked


def test_quiet_resyncs_trust_the_events_a_few_times_in_a_row_then_look(loop, memory_engine):
    assert _resync(loop, memory_engine)  # the first after a create looks: the create's pass changed things
    assert [_resync(loop, memory_engine) for _ in range(TRUSTED_IN_A_ROW)] == [False] * TRUSTED_IN_A_ROW
    assert _resync(loop, memory_engine)  # and the next looks
    assert not _resync(loop, memory_engine)


def test_a_change_no_event_told_is_found_within_a_few_resyncs(loop, memory_engine):
    _resync(loop, memory_engine)
    memory_engine.remove("calm-web-1")  # gone, and the loop is told nothing
    looks = [_resync(loop, memory_engine) for _ in range(TRUSTED_IN_A_ROW + 1)]
    assert looks[-1] and "calm-web-1" in memory_engine.containers


@pytest.mark.parametrize("what", ["event", "look"])
def test_an_event_or_a_look_wakes_a_pass_that_looks(loop, memory_engine, what):
    _resync(loop, memory_engine)
    assert not _resync(loop, memory_engine)
    loop.engine_event(EngineEvent(Kind.CONTAINER, "calm-web-1", "die", stack="calm") if what == "event" else None)
    memory_engine.calls.clear()
    loop.trigger(Trigger.RESYNC)  # due at the same moment: one pass (a look says less than a resync)
    result = loop.step()
    assert result.trigger is (Trigger.ENGINE if what == "event" else Trigger.RESYNC) and not result.trusted
    assert any(call[0] == "observe" for call in memory_engine.calls)


@pytest.mark.parametrize("what", ["reopened", "broken", "record", "never"])
def test_what_makes_the_next_resync_look(loop, memory_engine, what):
    _resync(loop, memory_engine)
    assert not _resync(loop, memory_engine)
    if what == "reopened":
        loop.unbroken_since = lambda: float("inf")  # opened again after the quiet pass began
    elif what == "broken":
        loop.unbroken_since = lambda: None
    elif what == "record":
        loop.reconciler.state.suspend("calm")
        loop.reconciler.state.resume("calm")
    else:
        loop.unbroken_since = None  # a loop nobody tells about streams (reconcile watch)
    assert _resync(loop, memory_engine)


def test_a_new_spec_object_and_an_upstream_tag_look(tmp_path, loop, memory_engine):
    _resync(loop, memory_engine)
    again = load_desired([tmp_path / "stack.yaml"], drivers=loop.reconciler.driver_catalog())  # equal, not the same
    loop.load = lambda: again
    assert _resync(loop, memory_engine)
    assert not _resync(loop, memory_engine)
    (tmp_path / "stack.yaml").write_text(SPEC + 'images:\n  up: {ref: "busybox:1", track: tag}\n')
    tracked = load_desired([tmp_path / "stack.yaml"], drivers=loop.reconciler.driver_catalog())
    loop.load = lambda: tracked
    assert all(_resync(loop, memory_engine) for _ in range(3))  # the registry tells no events: always looks


def test_the_drivers_whose_changes_may_come_without_an_event_are_named(tmp_path, memory_engine):
    from reconciler.drivers import ObjectDriver

    reconciler = make_reconciler(memory_engine)
    (tmp_path / "stack.yaml").write_text(SPEC + "networks:\n  back: {}\nvolumes:\n  data: {}\n")
    desired = load_desired([tmp_path / "stack.yaml"], drivers=reconciler.driver_catalog())
    drivers = reconciler.drivers("calm")
    assert drivers.unreported(desired) == []  # one stream reports every kind of the memory engine
    storage = type(drivers.get(Kind.VOLUME, "local"))
    try:
        storage.changes_reported = None  # then: whether it follows events itself (it does not)
        assert drivers.unreported(desired) == ["storage local"]
        storage.changes_reported = False
        assert reconciler.drivers("calm").unreported(desired) == ["storage local"]
    finally:
        del storage.changes_reported  # inherited again
    assert ObjectDriver.changes_reported is None
