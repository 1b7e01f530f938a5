"""The in-memory engine of reconciler.testing: it converges like an engine, journals, and fails on demand.

Its storage and network drivers also pass the contract kit (test_testing_kit.py),
and its events drive ``reconciler.loop.StackLoop`` as an engine's do.
"""
from __future__ import annotations

import queue
import threading
import time

import pytest

from reconciler.errors import ConflictError, EngineUnreachable, PermanentError, SpecError, TemporaryError
from reconciler.hookspecs import hookimpl
from reconciler.labels import KIND, STACK
from reconciler.loop import LoopOptions, StackLoop, Trigger
from reconciler.model import ContainerSpec, HealthCheck, ImageSpec, Kind, LiveObject, NetworkSpec
from reconciler.plan import Action
from reconciler.reconcile import ApplyRequest
from reconciler.report import ApplyOptions
from reconciler.retry import RetryPolicy
from reconciler.spec import load_desired
from reconciler.testing import MemoryEngine, make_reconciler

from ..waiting import wait_until

FAST = ApplyRequest(options=ApplyOptions(retry=RetryPolicy(attempts=3, base=0.001, cap=0.002)))
SPEC = """
name: demo
networks:
  back: {}
volumes:
  data: {}
containers:
  db:
    image: busybox:1
    networks: [back]
    volumes: ["data:/data"]
    healthcheck: {test: [CMD, "true"]}
  web:
    image: busybox:1
    networks: [back]
    depends_on: {db: {condition: healthy}}
"""


@pytest.fixture
def stack(tmp_path, memory_engine):
    """(reconciler on the memory engine, desired state of SPEC)."""
    reconciler = make_reconciler(memory_engine)
    (tmp_path / "stack.yaml").write_text(SPEC)
    return reconciler, load_desired([tmp_path / "stack.yaml"], drivers=reconciler.driver_names(), environ={})


def test_a_stack_converges_and_a_second_apply_writes_nothing(stack, memory_engine):
    reconciler, desired = stack
    first = reconciler.apply(desired, FAST)
    assert first.ok, [o.error for o in first.outcomes]
    assert set(memory_engine.containers) == {"demo-db-1", "demo-web-1"}
    assert {c.state for c in memory_engine.containers.values()} == {"running"}
    assert ("wait", "demo-db-1", "healthy") in memory_engine.calls
    memory_engine.calls.clear()
    plan, _ = reconciler.plan(desired)
    assert plan.empty, [c.id for c in plan.changes]
    second = reconciler.apply(desired, FAST)
    assert second.outcomes == () and second.stats.get("write", 0) == 0
    assert second.stats["read"] == 4  # one list call per kind
    assert {call[0] for call in memory_engine.calls} == {"observe"}


def test_an_object_made_by_hand_under_a_wanted_name_is_not_taken_over(stack, memory_engine):
    reconciler, desired = stack
    memory_engine.add(LiveObject(Kind.NETWORK, "demo_back", "by-hand", labels={STACK: "someone-else"}))
    report = reconciler.apply(desired, FAST)
    errors = {o.change.id: o.error for o in report.outcomes if o.error}
    assert "not managed by this stack" in errors["network:demo_back"]
    assert memory_engine.networks["demo_back"].id == "by-hand"
    assert ("create-network", "demo_back") not in memory_engine.calls


def test_destroy_removes_containers_before_their_network_and_keeps_volumes(stack, memory_engine):
    reconciler, desired = stack
    assert reconciler.apply(desired, FAST).ok
    report = reconciler.destroy("demo", FAST)
    assert report.ok, [o.error for o in report.outcomes]
    assert memory_engine.containers == {} and memory_engine.networks == {}
    assert set(memory_engine.volumes) == {"demo_data"}  # volumes are kept unless asked
    assert memory_engine.images  # images are never deleted


def test_fail_raises_for_matching_calls_then_lets_them_through(memory_engine):
    drivers = memory_engine.drivers("s")
    images = drivers.get(Kind.IMAGE, "docker")
    memory_engine.fail("pull", TemporaryError("503"), times=2)
    for _ in range(2):
        with pytest.raises(TemporaryError, match="503"):
            images.pull(ImageSpec(key="a", ref="a:1"))
    images.pull(ImageSpec(key="a", ref="a:1"))
    assert memory_engine.calls == [("pull", "a:1")] * 3
    assert set(memory_engine.images) == {"a:1"}


def test_fail_matches_a_call_by_its_first_items_and_can_fail_every_time(memory_engine):
    runtime = memory_engine.drivers("s").get(Kind.CONTAINER, "docker")
    memory_engine.fail(("observe", "container"), EngineUnreachable("engine down"), times=None)
    for _ in range(3):
        with pytest.raises(EngineUnreachable):
            runtime.observe("s", {})
    memory_engine.drivers("s").get(Kind.NETWORK, "bridge").observe("s", {})  # another kind still answers


def test_an_injected_failure_fails_its_change_and_skips_its_dependents(stack, memory_engine):
    reconciler, desired = stack
    memory_engine.fail(("start", "demo-db-1"), PermanentError("no space left"))
    report = reconciler.apply(desired, FAST)
    status = {o.change.name: (o.status, o.error) for o in report.outcomes}
    assert status["demo-db-1"] == ("failed", "no space left")
    assert status["demo-web-1"][0] == "skipped"
    assert "demo-web-1" not in memory_engine.containers


def test_hooks_see_the_engine_through_the_reconciler(stack, memory_engine):
    seen = []

    class Audit:
        @hookimpl
        def reconciler_after_change(self, change, outcome):
            seen.append((change.id, outcome.status))

    reconciler = make_reconciler(memory_engine, plugins={"audit": Audit()})
    _, desired = stack
    assert reconciler.apply(desired, FAST).ok
    assert ("container:demo-web-1", "ok") in seen and len(seen) == 5  # image, network, volume, two containers


def test_the_engine_refuses_what_an_engine_refuses(memory_engine):
    drivers = memory_engine.drivers("s")
    runtime, networks = drivers.get(Kind.CONTAINER, "docker"), drivers.get(Kind.NETWORK, "bridge")
    web = ContainerSpec(key="web", name="s-web-1", replica=1, image_key=None, image_ref="img:1",
                        networks=(("s_net", ()),))
    with pytest.raises(PermanentError, match="no such image: img:1"):
        runtime.create(web, {})
    drivers.get(Kind.IMAGE, "docker").pull(ImageSpec(key="img:1", ref="img:1"))
    with pytest.raises(PermanentError, match="no such network: s_net"):
        runtime.create(web, {})
    networks.create(NetworkSpec(key="net", name="s_net"), {})
    with pytest.raises(ConflictError, match="network s_net already exists"):
        networks.create(NetworkSpec(key="net", name="s_net"), {})
    runtime.create(web, {})
    with pytest.raises(PermanentError, match="has active endpoints: s-web-1"):
        networks.delete(networks.observe("s", {"s_net": ""})[0])
    runtime.start("s-web-1")
    runtime.wait("s-web-1", "started", timeout=1)
    with pytest.raises(PermanentError, match="is running, not healthy"):
        runtime.wait("s-web-1", "healthy", timeout=1)
    with pytest.raises(PermanentError, match="is running, not completed"):
        runtime.wait("s-web-1", "completed", timeout=1)


def test_a_healthcheck_makes_a_started_container_healthy(memory_engine):
    drivers = memory_engine.drivers("s")
    drivers.get(Kind.IMAGE, "docker").pull(ImageSpec(key="img:1", ref="img:1"))
    runtime = drivers.get(Kind.CONTAINER, "docker")
    runtime.create(ContainerSpec(key="db", name="s-db-1", replica=1, image_key=None, image_ref="img:1",
                                 healthcheck=HealthCheck(("CMD", "true"))), {})
    assert memory_engine.containers["s-db-1"].health == "starting"
    runtime.start("s-db-1")
    runtime.wait("s-db-1", "healthy", timeout=1)
    assert memory_engine.containers["s-db-1"].health == "healthy"


def test_delays_make_calls_take_time_and_peak_counts_those_that_overlapped():
    engine = MemoryEngine(delays={"delete": 0.2})
    runtime = engine.drivers("s").get(Kind.CONTAINER, "docker")
    engine.add(*(LiveObject(Kind.CONTAINER, f"s-c{i}-1", f"id-{i}") for i in range(3)))
    removals = [threading.Thread(target=runtime.delete, args=(engine.containers[name],))
                for name in sorted(engine.containers)]
    started = time.monotonic()
    for thread in removals:
        thread.start()
    while engine.peak["delete"] < 3:  # all three are taking their time
        time.sleep(0.001)
    runtime.observe("s", {})  # and the engine still answers
    assert time.monotonic() - started < 0.2
    for thread in removals:
        thread.join()
    assert 0.2 <= time.monotonic() - started < 0.5  # together, not one after another
    assert engine.containers == {}
    assert engine.peak["delete"] == 3 and engine.peak["observe"] == 1
    assert engine.peak["work"] == 0  # a container's removal waits on the engine rather than loading it


def test_delays_name_only_calls_the_engine_journals():
    with pytest.raises(ValueError, match="remove"):
        MemoryEngine(delays={"remove": 1.0})


# --- events: what reconcile watch and the daemon follow ---------------------------------------


def _eventually(predicate, timeout=5.0):
    wait_until(predicate, timeout, step=0.005)


def test_events_name_the_stacks_changes_from_any_hand_until_stopped(memory_engine):
    drivers = memory_engine.drivers("s")
    runtime = drivers.get(Kind.CONTAINER, "docker")
    assert drivers.event_sources() == [runtime]  # one stream follows every kind
    memory_engine.add(LiveObject(Kind.CONTAINER, "s-old-1", "old", labels={STACK: "s", KIND: "container"}))  # before: not replayed
    stop, names = threading.Event(), queue.Queue()
    follower = threading.Thread(target=lambda: [names.put(n) for n in runtime.events("s", {"by-hand"}, stop)])
    follower.start()
    _eventually(lambda: memory_engine.followers == 1)
    drivers.get(Kind.NETWORK, "bridge").create(NetworkSpec(key="net", name="s_net"), {STACK: "s", KIND: "network"})
    memory_engine.add(LiveObject(Kind.CONTAINER, "t-web-1", "t", labels={STACK: "t", KIND: "container"}))  # another stack's
    memory_engine.add(LiveObject(Kind.CONTAINER, "by-hand", "h"))  # unlabelled, but one of the stack's names
    memory_engine.stop("s-old-1")
    memory_engine.remove("s-old-1")
    _eventually(lambda: names.qsize() == 4)
    stop.set()
    follower.join(timeout=1)
    assert not follower.is_alive(), "events must return once stop is set"
    assert list(names.queue) == ["s_net", "by-hand", "s-old-1", "s-old-1"]
    assert memory_engine.followers == 0 and ("events", "s") in memory_engine.calls


def test_stop_and_remove_are_drift_made_by_hand(memory_engine):
    memory_engine.add(LiveObject(Kind.CONTAINER, "s-db-1", "db", state="running", health="healthy"))
    memory_engine.stop("s-db-1")
    db = memory_engine.containers["s-db-1"]
    assert (db.state, db.exit_code, db.health) == ("exited", 137, "unhealthy")
    memory_engine.remove("s-db-1")
    assert memory_engine.containers == {} and memory_engine.calls == []  # neither is a driver call
    with pytest.raises(KeyError, match="s-db-1"):
        memory_engine.remove("s-db-1")


@pytest.fixture
def run_loop():
    """Start ``StackLoop``s in threads, quick to debounce and back off; each gives the passes it makes."""
    stop = threading.Event()
    threads = []

    def start(reconciler, load, *, on_pass=lambda result: None, **options):
        passes: queue.Queue = queue.Queue()
        loop = StackLoop(reconciler, load, request=FAST, on_pass=lambda result: (on_pass(result), passes.put(result)),
                         options=LoopOptions(**{"debounce": 0.01, "backoff_base": 0.05, **options}))
        threads.append(threading.Thread(target=loop.run, args=(stop,), daemon=True))
        threads[-1].start()
        return loop, passes

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=5)


def test_the_loop_recreates_a_container_removed_by_hand_when_the_engine_tells_it(stack, memory_engine, run_loop):
    reconciler, desired = stack
    _, passes = run_loop(reconciler, lambda: desired)  # resync every minute: only an event brings a pass sooner
    assert passes.get(timeout=5).ok
    _eventually(lambda: memory_engine.followers == 1)
    memory_engine.remove("demo-web-1")
    repair = passes.get(timeout=5)
    assert repair.trigger is Trigger.ENGINE and repair.ok, repair.error
    assert [(o.change.name, o.change.action) for o in repair.report.outcomes] == [("demo-web-1", Action.CREATE)]
    assert memory_engine.containers["demo-web-1"].state == "running"


def test_a_change_made_before_the_event_stream_opens_is_seen_when_it_opens(stack, memory_engine, run_loop):
    reconciler, desired = stack

    def exit_at_once(result):  # web exits after the first pass, before the loop follows the engine's events
        if result.trigger is Trigger.START:
            memory_engine.stop("demo-web-1", exit_code=1)

    _, passes = run_loop(reconciler, lambda: desired, on_pass=exit_at_once)  # resync: a minute away
    assert passes.get(timeout=5).ok
    look = passes.get(timeout=5)
    assert look.trigger is Trigger.ENGINE and look.ok, look.error
    assert [(o.change.name, o.change.action) for o in look.report.outcomes] == [("demo-web-1", Action.START)]
    assert memory_engine.containers["demo-web-1"].state == "running"


def test_the_look_when_a_stream_opens_is_not_reported_when_it_finds_nothing(stack, memory_engine, run_loop):
    reconciler, desired = stack
    _, passes = run_loop(reconciler, lambda: desired)
    assert passes.get(timeout=5).ok
    _eventually(lambda: memory_engine.followers == 1)
    _eventually(lambda: sum(call[0] == "observe" for call in memory_engine.calls) == 2 * 4)  # it looked again
    with pytest.raises(queue.Empty):
        passes.get(timeout=0.3)


def test_a_container_that_keeps_exiting_is_crash_looping_and_slows_the_loop(stack, memory_engine, run_loop):
    reconciler, desired = stack

    def crash(result):  # web exits as soon as the loop has started it again
        if result.trigger is not Trigger.START:
            memory_engine.stop("demo-web-1", exit_code=1)

    _, passes = run_loop(reconciler, lambda: desired, on_pass=crash, crash_after=3)
    assert passes.get(timeout=5).ok
    _eventually(lambda: memory_engine.followers == 1)
    memory_engine.stop("demo-web-1", exit_code=1)
    results = [passes.get(timeout=5) for _ in range(5)]
    assert all(r.ok and r.trigger is Trigger.ENGINE for r in results), [r.error for r in results]
    assert all([(o.change.name, o.change.action) for o in r.report.outcomes] == [("demo-web-1", Action.START)]
               for r in results), "every pass starts web again"
    assert [r.crash_looping for r in results] == [{}, {}, {"demo-web-1": 3}, {"demo-web-1": 4}, {"demo-web-1": 5}]
    assert [r.delay for r in results] == [0.0, 0.0, 0.05, 0.1, 0.2]


def test_a_spec_that_stops_loading_is_reported_and_the_last_good_state_stays(stack, memory_engine, run_loop):
    reconciler, desired = stack
    broken = SpecError("containers.web.image: a string is required")

    def load():
        if broken_now.is_set():
            raise broken
        return desired

    broken_now = threading.Event()
    loop, passes = run_loop(reconciler, load)
    assert passes.get(timeout=5).ok
    before = dict(memory_engine.containers)
    _eventually(lambda: memory_engine.followers == 1)
    memory_engine.calls.clear()
    broken_now.set()
    loop.trigger(Trigger.FILES)
    result = passes.get(timeout=5)
    assert result.trigger is Trigger.FILES and result.report is None and not result.ok
    assert "the spec does not load, nothing was changed" in result.error and str(broken) in result.error
    with pytest.raises(queue.Empty):  # no retry: only a change to the files can help
        passes.get(timeout=0.3)
    assert memory_engine.calls == [] and memory_engine.containers == before


def test_a_suspended_stack_is_planned_but_not_applied():
    from reconciler.loop import StackLoop, Trigger
    from reconciler.model import ContainerSpec, DesiredState

    engine = MemoryEngine()
    reconciler = make_reconciler(engine)
    spec = ContainerSpec(key="web", name="s-web-1", replica=1, image_key=None, image_ref="img:1")
    suspended = {"s"}
    loop = StackLoop(reconciler, lambda: DesiredState(stack="s", containers={spec.name: spec}),
                     is_suspended=lambda stack: stack in suspended)
    result = loop.run_pass(Trigger.START)
    assert result.ok and result.suspended is not None and not result.suspended.empty
    assert "s-web-1" not in engine.containers
    suspended.clear()
    assert loop.run_pass(Trigger.RESYNC).report.ok and "s-web-1" in engine.containers
