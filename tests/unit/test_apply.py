"""The executor against in-memory drivers: ordering, failure isolation, retries, lanes.

These fakes stand in for the engine only to test the scheduling logic; the
real engine is exercised in tests/integration.
"""
from __future__ import annotations

import threading
import time
from collections import Counter

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
from reconciler.model import ContainerSpec, DesiredState, Kind, LiveObject, NetworkSpec
from reconciler.plan import plan_changes
from reconciler.model import LiveState

FAST = ApplyOptions(workers=4, retry=RetryPolicy(attempts=4, base=0.001, cap=0.002))


# Calls that make the engine work: at most ApplyOptions.workers of them at once.
WORK_CALLS = frozenset({"pull", "build", "create-network", "create", "start"})


class Journal:
    """Records every driver call; ``delay`` makes a kind of call take time, ``peak`` says how many overlapped."""

    def __init__(self, delay=None):
        self.calls = []
        self.lock = threading.Lock()
        self.fail = {}
        self.delay = dict(delay or {})
        self.running = Counter()
        self.peak = Counter()

    def record(self, call):
        what = call[0]
        kinds = (what, "work") if what in WORK_CALLS else (what,)
        with self.lock:
            self.calls.append(call)
            self.running.update(kinds)
            for kind in kinds:
                self.peak[kind] = max(self.peak[kind], self.running[kind])
            plan = self.fail.get(call)
            error = plan.pop(0) if plan else None
        try:
            time.sleep(self.delay.get(what, 0.0))
            if error:
                raise error
        finally:
            with self.lock:
                self.running.subtract(kinds)


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


def run(state, journal, live=LiveState(), options=FAST):
    plan = plan_changes(state, live)
    return apply_plan(plan, state, drivers(journal), options=options)


def running_containers(*names):
    """Live containers this stack owns, running, with a config hash no spec in these tests has."""
    return LiveState(containers={n: LiveObject(Kind.CONTAINER, n, f"id-{n}", owned=True, state="running")
                                 for n in names})


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


# -- lanes: waiting holds no worker --------------------------------------------------------
STOP = 0.3  # one container's stop grace period, in these tests


def test_slow_stops_take_one_stop_time_not_one_per_worker_round():
    journal = Journal(delay={"delete": STOP})
    names = [f"s-c{i}-1" for i in range(12)]
    report = run(desired(), journal, running_containers(*names))
    assert report.ok and len(report.outcomes) == 12
    assert journal.peak["delete"] == 12
    assert report.seconds < 2 * STOP  # 4 at a time would take 3 × STOP


def test_replace_stops_the_old_containers_together_and_creates_stay_within_workers():
    journal = Journal(delay={"delete": STOP, "create": 0.02, "start": 0.01})
    specs = [spec(f"c{i}", config_hash="new") for i in range(12)]
    report = run(desired(*specs), journal, running_containers(*(s.name for s in specs)))
    assert report.ok
    assert {o.change.action.value for o in report.outcomes if o.change.kind is Kind.CONTAINER} == {"replace"}
    assert journal.peak["delete"] == 12
    assert journal.peak["work"] <= FAST.workers  # creates, starts and the pull share the worker bound
    assert report.seconds < 2 * STOP
    for s in specs:  # each new container still comes after its old one is gone
        assert journal.calls.index(("delete", s.name)) < journal.calls.index(("create", s.name))


def test_creates_use_all_workers_and_no_more():
    journal = Journal(delay={"create": 0.05})
    report = run(desired(*(spec(f"c{i}") for i in range(12))), journal)
    assert report.ok
    assert journal.peak["create"] == journal.peak["work"] == FAST.workers


def test_dependency_waits_hold_no_worker():
    journal = Journal(delay={"wait": STOP, "create": 0.01})
    webs = [spec(f"web{i}", depends_on=(("db", "healthy"),)) for i in range(8)]
    options = ApplyOptions(workers=2, retry=FAST.retry)
    report = run(desired(spec("db"), *webs), journal, options=options)
    assert report.ok
    assert journal.peak["wait"] == 8
    assert journal.peak["work"] <= 2
    assert report.seconds < 2 * STOP  # 2 at a time would take 4 × STOP


def test_waiters_have_their_own_bound():
    journal = Journal(delay={"delete": 0.05})
    options = ApplyOptions(workers=4, waiters=3, retry=FAST.retry)
    report = run(desired(), journal, running_containers(*(f"s-c{i}-1" for i in range(9))), options=options)
    assert report.ok
    assert journal.peak["delete"] == 3


def test_failed_wait_fails_its_change_and_skips_the_create():
    journal = Journal()
    journal.fail[("wait", "s-db-1", "healthy")] = [PermanentError("container s-db-1 is unhealthy")]
    state = desired(spec("db"), spec("web", depends_on=(("db", "healthy"),)), spec("other"))
    report = run(state, journal)
    status = {o.change.name: (o.status, o.error) for o in report.outcomes}
    assert status["s-web-1"] == ("failed", "container s-db-1 is unhealthy")
    assert status["s-db-1"][0] == status["s-other-1"][0] == "ok"
    assert ("create", "s-web-1") not in journal.calls
