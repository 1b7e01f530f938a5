"""The executor against the in-memory engine: ordering, failure isolation, retries, lanes.

The engine stands in only to test the scheduling logic; the real engine is
exercised in tests/integration. Its ``delays`` make chosen calls take time and
its ``peak`` says how many overlapped, which is how the lanes are checked.
"""
from __future__ import annotations

from reconciler.apply import apply_plan
from reconciler.errors import PermanentError, TemporaryError
from reconciler.model import ContainerSpec, DesiredState, HealthCheck, Kind, LiveObject, LiveState, NetworkSpec
from reconciler.planner import plan_changes
from reconciler.report import ApplyOptions
from reconciler.retry import RetryPolicy
from reconciler.testing import MemoryEngine

FAST = ApplyOptions(workers=4, retry=RetryPolicy(attempts=4, base=0.001, cap=0.002))
HEALTHCHECK = HealthCheck(("CMD", "true"))  # what a container others wait to be healthy needs


def spec(key, **kw):
    return ContainerSpec(key=key, name=f"s-{key}-1", replica=1, image_key=None, image_ref="img:1", **kw)


def desired(*containers, networks=()):
    return DesiredState(stack="s", containers={c.name: c for c in containers},
                        networks={n.key: n for n in networks})


def run(state, engine, live=LiveState(), options=FAST):
    plan = plan_changes(state, live)
    return apply_plan(plan, state, engine.drivers("s"), options=options)


def running_containers(engine, *names):
    """Containers this stack owns, running in ``engine``, with a config hash no spec in these tests has."""
    containers = {n: LiveObject(Kind.CONTAINER, n, f"id-{n}", owned=True, state="running") for n in names}
    engine.add(*containers.values())
    return LiveState(containers=containers)


def test_order_follows_dependencies_and_waits():
    engine = MemoryEngine()
    net = NetworkSpec(key="n", name="s_n")
    db = spec("db", networks=(("s_n", ()),), healthcheck=HEALTHCHECK)
    state = desired(db, spec("web", depends_on=(("db", "healthy"),)), networks=[net])
    report = run(state, engine)
    assert report.ok
    calls = engine.calls
    assert calls.index(("pull", "img:1")) < calls.index(("create", "s-db-1"))
    assert calls.index(("create-network", "s_n")) < calls.index(("create", "s-db-1"))
    assert calls.index(("start", "s-db-1")) < calls.index(("wait", "s-db-1", "healthy")) < calls.index(("create", "s-web-1"))


def test_permanent_failure_skips_dependents_and_the_rest_converges():
    engine = MemoryEngine()
    engine.fail(("start", "s-db-1"), PermanentError("boom"))
    state = desired(spec("db"), spec("web", depends_on=(("db", "started"),)), spec("other"))
    report = run(state, engine)
    status = {o.change.name: (o.status, o.error) for o in report.outcomes}
    assert status["s-db-1"] == ("failed", "boom")
    assert status["s-web-1"][0] == "skipped"
    assert "s-db-1 failed" in status["s-web-1"][1]
    assert status["s-other-1"] == ("ok", "")
    assert not report.ok
    assert ("create", "s-web-1") not in engine.calls


def test_temporary_errors_are_retried_then_succeed():
    engine = MemoryEngine()
    engine.fail(("create", "s-web-1"), TemporaryError("503"), times=2)
    report = run(desired(spec("web")), engine)
    assert report.ok
    assert engine.calls.count(("create", "s-web-1")) == 3


def test_temporary_errors_are_bounded():
    engine = MemoryEngine()
    engine.fail(("create", "s-web-1"), TemporaryError("503"), times=None)
    report = run(desired(spec("web")), engine)
    assert not report.ok
    assert engine.calls.count(("create", "s-web-1")) == FAST.retry.attempts
    assert report.outcomes[-1].error == f"503 [attempt {FAST.retry.attempts}]"


def test_conflicting_change_fails_without_touching_the_engine():
    engine = MemoryEngine()
    web = spec("web")
    by_hand = LiveObject(Kind.CONTAINER, web.name, "x", owned=False, state="running")
    engine.add(by_hand)
    report = run(desired(web), engine, LiveState(containers={web.name: by_hand}))
    assert not report.ok
    assert "not managed by this stack" in report.outcomes[-1].error
    assert not [c for c in engine.calls if c[0] in ("create", "start", "delete")]


# -- lanes: waiting holds no worker --------------------------------------------------------
STOP = 0.3  # one container's stop grace period, in these tests


def test_slow_stops_take_one_stop_time_not_one_per_worker_round():
    engine = MemoryEngine(delays={"delete": STOP})
    names = [f"s-c{i}-1" for i in range(12)]
    report = run(desired(), engine, running_containers(engine, *names))
    assert report.ok and len(report.outcomes) == 12
    assert engine.peak["delete"] == 12
    assert report.seconds < 2 * STOP  # 4 at a time would take 3 × STOP


def test_replace_stops_the_old_containers_together_and_creates_stay_within_workers():
    """With a runtime that cannot replace in place, the simple way: old ones go first, all at once."""
    engine = MemoryEngine(delays={"delete": STOP, "create": 0.02, "start": 0.01}, rolls=False)
    specs = [spec(f"c{i}", config_hash="new") for i in range(12)]
    report = run(desired(*specs), engine, running_containers(engine, *(s.name for s in specs)))
    assert report.ok
    assert {o.change.action.value for o in report.outcomes if o.change.kind is Kind.CONTAINER} == {"replace"}
    assert engine.peak["delete"] == 12
    assert engine.peak["work"] <= FAST.workers  # creates, starts and the pull share the worker bound
    assert report.seconds < 2 * STOP
    for s in specs:  # each new container still comes after its old one is gone
        assert engine.calls.index(("delete", s.name)) < engine.calls.index(("create", s.name))


def test_a_rolling_replace_removes_each_old_container_only_after_its_successor_started():
    engine = MemoryEngine(delays={"delete": STOP, "create": 0.02, "start": 0.01})
    specs = [spec(f"c{i}", config_hash="new") for i in range(12)]
    report = run(desired(*specs), engine, running_containers(engine, *(s.name for s in specs)))
    assert report.ok
    assert engine.peak["delete"] == 12  # the old ones still stop together
    assert engine.peak["work"] <= FAST.workers
    assert report.seconds < 2 * STOP
    for s in specs:
        aside = next(c for c in engine.calls if c[0] == "delete" and c[1].startswith(f"{s.name}-old-"))
        assert engine.calls.index(("start", s.name)) < engine.calls.index(aside)
    assert sorted(engine.containers) == sorted(s.name for s in specs)


def test_creates_use_all_workers_and_no_more():
    engine = MemoryEngine(delays={"create": 0.05})
    report = run(desired(*(spec(f"c{i}") for i in range(12))), engine)
    assert report.ok
    assert engine.peak["create"] == engine.peak["work"] == FAST.workers


def test_dependency_waits_hold_no_worker():
    engine = MemoryEngine(delays={"wait": STOP, "create": 0.01})
    webs = [spec(f"web{i}", depends_on=(("db", "healthy"),)) for i in range(8)]
    options = ApplyOptions(workers=2, retry=FAST.retry)
    report = run(desired(spec("db", healthcheck=HEALTHCHECK), *webs), engine, options=options)
    assert report.ok
    assert engine.peak["wait"] == 8
    assert engine.peak["work"] <= 2
    assert report.seconds < 2 * STOP  # 2 at a time would take 4 × STOP


def test_waiters_have_their_own_bound():
    engine = MemoryEngine(delays={"delete": 0.05})
    options = ApplyOptions(workers=4, waiters=3, retry=FAST.retry)
    report = run(desired(), engine, running_containers(engine, *(f"s-c{i}-1" for i in range(9))), options=options)
    assert report.ok
    assert engine.peak["delete"] == 3


def test_failed_wait_fails_its_change_and_skips_the_create():
    engine = MemoryEngine()
    engine.fail(("wait", "s-db-1", "healthy"), PermanentError("container s-db-1 is unhealthy"))
    state = desired(spec("db", healthcheck=HEALTHCHECK), spec("web", depends_on=(("db", "healthy"),)), spec("other"))
    report = run(state, engine)
    status = {o.change.name: (o.status, o.error) for o in report.outcomes}
    assert status["s-web-1"] == ("failed", "container s-db-1 is unhealthy")
    assert status["s-db-1"][0] == status["s-other-1"][0] == "ok"
    assert ("create", "s-web-1") not in engine.calls


def test_a_stop_lets_the_steps_in_flight_finish_and_starts_no_other():
    import dataclasses
    import threading

    engine = MemoryEngine()
    stop = threading.Event()
    state = desired(spec("db"), spec("web", depends_on=(("db", "started"),)))
    plan = plan_changes(state, LiveState())
    report = apply_plan(plan, state, engine.drivers("s"), options=dataclasses.replace(FAST, stop=stop),
                        before=lambda change: change.name == "s-db-1" and stop.set())  # stopped as db starts
    status = {o.change.name: (o.status, o.error) for o in report.outcomes}
    assert status["s-db-1"] == ("ok", "")
    assert status["s-web-1"] == ("skipped", "not started: the apply was interrupted")
    assert ("create", "s-web-1") not in engine.calls and not report.ok
