"""The executor against in-memory drivers: ordering, failure isolation, retries.

These fakes stand in for the engine only to test the scheduling logic; the
real engine is exercised in tests/integration.
"""
from __future__ import annotations

import threading

from reconciler.apply import apply_plan
from reconciler.report import ApplyOptions
from reconciler.retry import RetryPolicy
from reconciler.drivers import (
    DriverContext,
    DriverRegistry,
    NetworkDriver,
    RegistryDriver,
    RuntimeDriver,
)
from reconciler.errors import PermanentError, TemporaryError
from reconciler.model import ContainerSpec, DesiredState, NetworkSpec
from reconciler.plan import plan_changes
from reconciler.model import LiveState

FAST = ApplyOptions(workers=4, retry=RetryPolicy(attempts=4, base=0.001, cap=0.002))


class Journal:
    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()
        self.fail = {}

    def record(self, call):
        with self.lock:
            self.calls.append(call)
            plan = self.fail.get(call)
            if plan:
                error = plan.pop(0)
                if error:
                    raise error


class FakeImages(RegistryDriver):
    def __init__(self, journal):
        self.journal = journal

    def observe(self, stack, wanted):
        return []

    def pull(self, spec):
        self.journal.record(("pull", spec.ref))

    def build(self, spec, labels):
        self.journal.record(("build", spec.ref))


class FakeNetworks(NetworkDriver):
    def __init__(self, journal):
        self.journal = journal

    def observe(self, stack, wanted):
        return []

    def create(self, spec, labels):
        self.journal.record(("create-network", spec.name))

    def delete(self, live):
        self.journal.record(("delete-network", live.name))


class FakeRuntime(RuntimeDriver):
    def __init__(self, journal):
        self.journal = journal

    def observe(self, stack, wanted):
        return []

    def create(self, spec, labels):
        self.journal.record(("create", spec.name))

    def start(self, name):
        self.journal.record(("start", name))

    def wait(self, name, condition, *, timeout):
        self.journal.record(("wait", name, condition))

    def delete(self, live):
        self.journal.record(("delete", live.name))


def drivers(journal):
    registry = DriverRegistry()
    plugin = registry.view("fakes")
    plugin.add_registry_driver("docker", lambda ctx: FakeImages(journal))
    plugin.add_network_driver("bridge", lambda ctx: FakeNetworks(journal))
    plugin.add_runtime_driver("docker", lambda ctx: FakeRuntime(journal))
    return registry.instantiate(DriverContext(stack="s"))


def spec(key, **kw):
    return ContainerSpec(key=key, name=f"s-{key}-1", replica=1, image_key=None, image_ref="img:1", **kw)


def desired(*containers, networks=()):
    return DesiredState(stack="s", containers={c.name: c for c in containers},
                        networks={n.key: n for n in networks})


def run(state, journal, live=LiveState()):
    plan = plan_changes(state, live)
    return apply_plan(plan, state, drivers(journal), options=FAST)


def test_order_follows_dependencies_and_waits():
    journal = Journal()
    net = NetworkSpec(key="n", name="s_n")
    state = desired(spec("db", networks=(("s_n", ()),)), spec("web", depends_on=(("db", "healthy"),)), networks=[net])
    report = run(state, journal)
    assert report.ok
    calls = journal.calls
    assert calls.index(("pull", "img:1")) < calls.index(("create", "s-db-1"))
    assert calls.index(("create-network", "s_n")) < calls.index(("create", "s-db-1"))
    assert calls.index(("start", "s-db-1")) < calls.index(("wait", "s-db-1", "healthy")) < calls.index(("create", "s-web-1"))


def test_permanent_failure_skips_dependents_and_the_rest_converges():
    journal = Journal()
    journal.fail[("start", "s-db-1")] = [PermanentError("boom")]
    state = desired(spec("db"), spec("web", depends_on=(("db", "started"),)), spec("other"))
    report = run(state, journal)
    status = {o.change.name: (o.status, o.error) for o in report.outcomes}
    assert status["s-db-1"] == ("failed", "boom")
    assert status["s-web-1"][0] == "skipped"
    assert "s-db-1 failed" in status["s-web-1"][1]
    assert status["s-other-1"] == ("ok", "")
    assert not report.ok
    assert ("create", "s-web-1") not in journal.calls


def test_temporary_errors_are_retried_then_succeed():
    journal = Journal()
    journal.fail[("create", "s-web-1")] = [TemporaryError("503"), TemporaryError("503"), None]
    report = run(desired(spec("web")), journal)
    assert report.ok
    assert journal.calls.count(("create", "s-web-1")) == 3


def test_temporary_errors_are_bounded():
    journal = Journal()
    journal.fail[("create", "s-web-1")] = [TemporaryError("503")] * 10
    report = run(desired(spec("web")), journal)
    assert not report.ok
    assert journal.calls.count(("create", "s-web-1")) == FAST.retry.attempts
    assert report.outcomes[-1].error == f"503 [attempt {FAST.retry.attempts}]"


def test_conflicting_change_fails_without_touching_the_engine():
    from reconciler.model import Kind, LiveObject

    journal = Journal()
    web = spec("web")
    live = LiveState(containers={web.name: LiveObject(Kind.CONTAINER, web.name, "x", owned=False, state="running")})
    report = run(desired(web), journal, live)
    assert not report.ok
    assert "not managed by this stack" in report.outcomes[-1].error
    assert not [c for c in journal.calls if c[0] in ("create", "start", "delete")]
