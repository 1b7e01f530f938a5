"""The executor against the in-memory engine: ordering, failure isolation, retries.

The engine stands in only to test the scheduling logic; the real engine is
exercised in tests/integration.
"""
from __future__ import annotations

from reconciler.apply import apply_plan
from reconciler.errors import PermanentError, TemporaryError
from reconciler.model import ContainerSpec, DesiredState, HealthCheck, LiveState, NetworkSpec
from reconciler.plan import plan_changes
from reconciler.report import ApplyOptions
from reconciler.retry import RetryPolicy
from reconciler.testing import MemoryEngine

FAST = ApplyOptions(workers=4, retry=RetryPolicy(attempts=4, base=0.001, cap=0.002))


def spec(key, **kw):
    return ContainerSpec(key=key, name=f"s-{key}-1", replica=1, image_key=None, image_ref="img:1", **kw)


def desired(*containers, networks=()):
    return DesiredState(stack="s", containers={c.name: c for c in containers},
                        networks={n.key: n for n in networks})


def run(state, engine, live=LiveState()):
    plan = plan_changes(state, live)
    return apply_plan(plan, state, engine.drivers("s"), options=FAST)


def test_order_follows_dependencies_and_waits():
    engine = MemoryEngine()
    net = NetworkSpec(key="n", name="s_n")
    db = spec("db", networks=(("s_n", ()),), healthcheck=HealthCheck(("CMD", "true")))
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
    engine.fail(("create", "s-web-1"), TemporaryError("503"), times=10)
    report = run(desired(spec("web")), engine)
    assert not report.ok
    assert engine.calls.count(("create", "s-web-1")) == FAST.retry.attempts
    assert report.outcomes[-1].error == f"503 [attempt {FAST.retry.attempts}]"


def test_conflicting_change_fails_without_touching_the_engine():
    from reconciler.model import Kind, LiveObject

    engine = MemoryEngine()
    web = spec("web")
    stranger = LiveObject(Kind.CONTAINER, web.name, "x", owned=False, state="running")
    engine.add(stranger)
    live = LiveState(containers={web.name: stranger})
    report = run(desired(web), engine, live)
    assert not report.ok
    assert "not managed by this stack" in report.outcomes[-1].error
    assert not [c for c in engine.calls if c[0] in ("create", "start", "delete")]
