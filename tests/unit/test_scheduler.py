"""The scheduler: a fixed pool serving many stacks, one pass per stack at a time, fair, coalescing, backing off."""
from __future__ import annotations

import threading
import time

import pytest

from reconciler.loop import LoopOptions, Pass, StackLoop, Trigger
from reconciler.scheduler import Scheduler, default_workers
from reconciler.testing import make_reconciler

from ..waiting import wait_until


class FakeLoop:
    """What the scheduler asks of a loop: ``due``, ``resync_only``, ``step`` and ``on_trigger``; records its passes.

    ``resync``: its due pass is a resync (nothing pending) until it is triggered; ``tally`` counts the resyncs
    running at once across loops (``now``, ``most``)."""

    def __init__(self, name: str, log: list, *, seconds: float = 0.0, due_in: float = 0.0,
                 gate: threading.Event | None = None, resync: bool = False, tally: dict | None = None) -> None:
        self.name, self.log, self.seconds, self.gate = name, log, seconds, gate
        self.resync, self.tally = resync, tally if tally is not None else {"now": 0, "most": 0}
        self.on_trigger = None
        self.lock = threading.Lock()
        self.pending = 1
        self._due = time.monotonic() + due_in
        self.running = 0
        self.overlapped = False
        self.fail_until = 0.0

    def due(self) -> float:
        with self.lock:
            return self._due if self.pending else float("inf")

    def resync_only(self) -> bool:
        with self.lock:
            return self.resync

    def trigger(self, *, after: float = 0.0) -> None:
        with self.lock:
            self.resync = False
            self.pending += 1
            self._due = max(self._due, time.monotonic() + after) if self.pending > 1 else time.monotonic() + after
        if self.on_trigger:
            self.on_trigger()

    def step(self):
        with self.lock:
            if not self.pending or time.monotonic() < self._due:
                return None
            self.pending = 0
            self.running += 1
            self.overlapped |= self.running > 1
            resync, self.resync = self.resync, False
        with _TALLY:
            self.tally["now"] += resync
            self.tally["most"] = max(self.tally["most"], self.tally["now"])
        self.log.append((self.name, time.monotonic()))
        time.sleep(self.seconds)
        if self.gate is not None:
            self.gate.wait(5)
        with _TALLY:
            self.tally["now"] -= resync
        with self.lock:
            self.running -= 1
        return Pass(Trigger.RESYNC if resync else Trigger.START)


_TALLY = threading.Lock()


def _run(scheduler: Scheduler):
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


def _end(stop, thread) -> None:
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_thousand_stacks_are_served_by_a_fixed_pool_each_once():
    log: list = []
    scheduler = Scheduler(4)
    loops = [FakeLoop(f"s{n}", log) for n in range(1000)]
    before = threading.active_count()
    for n, loop in enumerate(loops):
        scheduler.add(f"s{n}", loop)
    stop, thread = _run(scheduler)
    try:
        wait_until(lambda: len(log) == 1000, 10, lambda: f"{len(log)} passes")
        assert threading.active_count() - before <= 4 + 1  # the workers and the thread running the scheduler
        time.sleep(0.1)
        assert len(log) == 1000 and scheduler.passes == 1000  # nothing was due twice
    finally:
        _end(stop, thread)


def test_a_stack_never_runs_two_passes_at_once_and_triggers_during_a_pass_coalesce_into_one():
    log: list = []
    scheduler = Scheduler(4)
    gate = threading.Event()
    loop = FakeLoop("a", log, gate=gate)
    scheduler.add("a", loop)
    stop, thread = _run(scheduler)
    try:
        wait_until(lambda: loop.running, 5, "the first pass", step=0.005)
        for _ in range(10):
            loop.trigger()
        time.sleep(0.1)
        gate.set()
        wait_until(lambda: len(log) == 2 and not loop.running, 5, lambda: f"{log}")
        time.sleep(0.3)
        assert len(log) == 2 and not loop.overlapped  # ten triggers during a pass: one pass after it
    finally:
        _end(stop, thread)


def test_a_stack_in_backoff_does_not_hold_a_worker():
    log: list = []
    scheduler = Scheduler(1)
    waiting = FakeLoop("backoff", log, due_in=0.5)  # due in half a second (its backoff)
    scheduler.add("backoff", waiting)
    others = [FakeLoop(f"o{n}", log) for n in range(20)]
    for n, loop in enumerate(others):
        scheduler.add(f"o{n}", loop)
    stop, thread = _run(scheduler)
    try:
        wait_until(lambda: len(log) == 21, 5, lambda: f"{log}")
        assert [name for name, _ in log][-1] == "backoff"  # one worker served the twenty while it waited
        assert log[-1][1] >= waiting._due
    finally:
        _end(stop, thread)


def test_resyncs_run_one_at_a_time_in_their_lane_while_other_passes_use_the_pool():
    log: list = []
    tally = {"now": 0, "most": 0}
    scheduler = Scheduler(4)
    for n in range(20):
        scheduler.add(f"r{n}", FakeLoop(f"r{n}", log, seconds=0.02, resync=True, tally=tally))
    scheduler.add("commit", FakeLoop("commit", log, due_in=0.1))  # due while the sweep runs
    stop, thread = _run(scheduler)
    try:
        wait_until(lambda: len(log) == 21, 5, lambda: f"{log}")
        assert tally["most"] == 1  # four workers, one resync at a time
        order = [name for name, _ in log]
        assert order.index("commit") < 15  # it did not wait for the sweep's end (20 × 20 ms on one lane)
    finally:
        _end(stop, thread)


def test_a_stack_waiting_in_the_resync_lane_that_is_triggered_takes_its_groups_turn():
    log: list = []
    gate = threading.Event()
    scheduler = Scheduler(2)
    scheduler.add("first", FakeLoop("first", log, gate=gate, resync=True))  # holds the lane until the gate opens
    loops = [FakeLoop(f"r{n}", log, resync=True) for n in range(10)]
    stop, thread = _run(scheduler)
    try:
        wait_until(lambda: log, 5, "the first resync", step=0.005)
        for n, loop in enumerate(loops):
            scheduler.add(f"r{n}", loop)
        time.sleep(0.1)
        assert [name for name, _ in log] == ["first"]  # the others wait for the lane, a worker idle beside it
        loops[7].trigger()  # an event for r7
        wait_until(lambda: len(log) == 2, 5, lambda: f"{log}")
        assert log[1][0] == "r7"  # served by the idle worker, not behind the lane
        gate.set()
        wait_until(lambda: len(log) == 11, 5, lambda: f"{log}")
        assert sorted(name for name, _ in log[2:]) == sorted(f"r{n}" for n in range(10) if n != 7)
    finally:
        gate.set()
        _end(stop, thread)


def test_sources_take_turns_so_a_big_one_does_not_starve_a_small_one():
    log: list = []
    scheduler = Scheduler(1)
    for n in range(50):
        scheduler.add(f"big:{n}", FakeLoop(f"big{n}", log, seconds=0.002), group="big")
    scheduler.add("small:0", FakeLoop("small", log, seconds=0.002), group="small")
    stop, thread = _run(scheduler)
    try:
        wait_until(lambda: len(log) == 51, 5, lambda: f"{len(log)}")
        order = [name for name, _ in log]
        assert order.index("small") <= 1  # its turn came second at the latest, not after fifty others
    finally:
        _end(stop, thread)


def test_workers_are_named_after_the_stack_they_serve_while_they_do():
    seen: list = []

    class Named(FakeLoop):
        def step(self):
            seen.append(threading.current_thread().name)
            return super().step()

    scheduler = Scheduler(2)
    scheduler.add("repo:app", Named("a", []))
    stop, thread = _run(scheduler)
    try:
        wait_until(lambda: seen, 5, "a pass")
        assert seen[0] == "stack-repo:app"
        wait_until(lambda: {t.name for t in threading.enumerate()} >= {"pass-0", "pass-1"}, 5, "idle names back")
    finally:
        _end(stop, thread)


def test_a_removed_stack_is_not_served():
    log: list = []
    scheduler = Scheduler(2)
    loop = FakeLoop("gone", log, due_in=0.3)
    scheduler.add("gone", loop)
    scheduler.remove("gone")
    stop, thread = _run(scheduler)
    try:
        time.sleep(0.5)
        assert log == [] and loop.on_trigger is None
    finally:
        _end(stop, thread)


def test_removing_a_stack_waits_for_its_pass_in_flight_when_asked():
    log: list = []
    gate = threading.Event()
    scheduler = Scheduler(2)
    loop = FakeLoop("busy", log, gate=gate)
    scheduler.add("busy", loop)
    stop, thread = _run(scheduler)
    try:
        wait_until(lambda: log, 5, "its pass")
        assert scheduler.remove("busy", wait=0.2) is False  # still running after 0.2 s
        threading.Timer(0.3, gate.set).start()
        started = time.monotonic()
        assert scheduler.remove("busy", wait=5) is True  # waited for the pass to end, and no longer
        assert 0.1 < time.monotonic() - started < 3 and loop.running == 0
        loop.trigger()
        time.sleep(0.3)
        assert len(log) == 1  # not served any more
    finally:
        _end(stop, thread)


def test_stack_loops_run_by_the_pool_back_off_after_a_failure_and_retry(memory_engine):
    from reconciler.errors import SpecError

    loads = []

    def load():
        loads.append(time.monotonic())
        raise SpecError("stack.yaml:1:1: broken")  # an invalid spec: reported, not retried until files change

    passes: list[Pass] = []
    loop = StackLoop(make_reconciler(memory_engine), load, options=LoopOptions(debounce=0.01, backoff_base=0.2), on_pass=passes.append)
    scheduler = Scheduler(2)
    scheduler.add("x", loop)
    stop, thread = _run(scheduler)
    try:
        wait_until(lambda: passes, 5, "the first pass")
        assert passes[0].invalid
        time.sleep(0.3)
        assert len(loads) == 1  # no retry: only a change of its files helps
        loop.trigger(Trigger.FILES)
        wait_until(lambda: len(passes) == 2, 5, "the pass the trigger asked for")
        assert loads[1] - loads[0] >= 0.2  # not before its backoff ended
    finally:
        _end(stop, thread)


def test_default_workers_are_sized_to_the_machine(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert default_workers() == 8
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    assert default_workers() == 32
    monkeypatch.setattr("os.cpu_count", lambda: None)
    assert default_workers() == 4


@pytest.mark.parametrize("workers", [1, 3])
def test_busy_never_exceeds_the_workers(workers):
    log: list = []
    scheduler = Scheduler(workers)
    peak = []
    for n in range(30):
        scheduler.add(f"s{n}", FakeLoop(f"s{n}", log, seconds=0.01))
    stop, thread = _run(scheduler)
    try:
        while len(log) < 30:
            peak.append(scheduler.busy())
            time.sleep(0.002)
        assert max(peak) <= workers
    finally:
        _end(stop, thread)


def test_a_resync_pass_late_to_its_sweep_still_shares_its_lists_until_half_a_resync(memory_engine):
    """A sweep of a thousand stacks takes longer than a few seconds: a pass that lists its own objects costs ten
    times the CPU of one picking them out of the sweep's lists, so lateness alone does not make it list its own."""
    loop = StackLoop(make_reconciler(memory_engine), lambda: None, options=LoopOptions(resync=60))
    now = time.monotonic()
    loop._pass_ended = now - 100
    loop._sweep = now - 20  # the workers were busy for 20 s
    assert loop._shared_from() == loop._sweep
    loop._sweep = now - 31  # past half a resync: it lists its own
    assert loop._shared_from() is None
    loop._sweep = now - 1
    loop._pass_ended = now - 0.5  # its own last pass ended after the tick: never a list older than that
    assert loop._shared_from() == loop._pass_ended
    loop._sweep = None  # not a resync
    assert loop._shared_from() is None
