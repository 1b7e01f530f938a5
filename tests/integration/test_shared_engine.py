"""One engine connection and one list per kind a moment for a daemon's passes (``Reconciler(shared_engine=True)``).

Against the real engine: 20 stacks through one reconciler, passes from 8 threads at once.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from reconciler.errors import EngineUnreachable
from reconciler.reconcile import ApplyRequest, Reconciler, load_desired
from reconciler.sdk.docker import _client
from reconciler.state import StateStore

from .tcp_relay import TcpRelay

pytestmark = pytest.mark.engine

STACKS = 20
THREADS = 8
KINDS = 4  # image, container, network, volume: what a pass of the CLI lists, one call each
ONE = """
name: STACK
volumes:
  data: {}
containers:
  app:
    image: BASE
    command: ["sleep", "3600"]
    init: true
    network_mode: none  # no network of its own: the engine's address pools are few, and shared with other runs
    volumes: ["data:/data"]
    stop_grace_period: 1s
"""


@pytest.fixture
def opens(monkeypatch) -> list[str]:
    """Every engine connection opened (each one ``GET /info``), by URL."""
    opened: list[str] = []
    real = _client.open_engine

    def counted(url, **kwargs):
        opened.append(url)
        return real(url, **kwargs)

    monkeypatch.setattr(_client, "open_engine", counted)
    return opened


def _stacks(stack, reconciler: Reconciler, count: int) -> list:
    """``count`` one-container stacks named after the fixture's (its clean-up removes them)."""
    desired = []
    for i in range(count):
        folder = stack.dir / f"s{i:02d}"
        folder.mkdir()
        path = stack.write(ONE.replace("STACK", f"{stack.name}s{i:02d}"), f"s{i:02d}/stack.yaml")
        desired.append(load_desired([path], drivers=reconciler.driver_names()))
    return desired


def _apply_all(reconciler: Reconciler, desired: list) -> list:
    with ThreadPoolExecutor(THREADS) as pool:
        sweep = time.monotonic()  # a resync sweep's tick, as the loop gives its passes
        return list(pool.map(lambda d: reconciler.apply(d, ApplyRequest(trigger="resync", snapshot_at=sweep)),
                             desired))


def _descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_passes_of_many_stacks_share_one_connection_and_their_lists(stack, tmp_path, opens):
    reconciler = Reconciler(shared_engine=True, state=StateStore.open(tmp_path / "state"))
    desired = _stacks(stack, reconciler, STACKS)
    cold = _apply_all(reconciler, desired)
    assert all(report.ok and report.outcomes for report in cold), [
        (r.stack, [(o.change.name, o.status.value, o.error) for o in r.outcomes]) for r in cold if not r.ok]

    settled = _apply_all(reconciler, desired)  # 20 no-op passes from 8 threads at once
    for report, wanted in zip(settled, desired):
        assert report.ok and not report.outcomes and report.stats.get("write", 0) == 0, report
    reads = sum(report.stats.get("read", 0) for report in settled)
    print(f"\n{STACKS} no-op passes from {THREADS} threads: {reads} engine reads (the CLI: {STACKS * (KINDS + 1)})")
    assert reads < STACKS * KINDS

    with ThreadPoolExecutor(THREADS) as pool:  # each pass sees its own objects only
        plans = list(pool.map(reconciler.plan, desired))
    for (plan, live), wanted in zip(plans, desired):
        assert plan.empty
        assert {obj.name for obj in live.containers.values()} == {f"{wanted.stack}-app-1"}
        assert {obj.name for obj in live.volumes.values()} == {f"{wanted.stack}_data"}
        assert all(obj.owned for obj in [*live.containers.values(), *live.volumes.values()])
    assert len(opens) == 1  # one GET /info over every pass

    before = _descriptors()
    for _ in range(200 // STACKS):
        assert all(report.ok and not report.outcomes for report in _apply_all(reconciler, desired))
    after = _descriptors()
    print(f"descriptors: {before} before 200 more passes, {after} after")
    assert after <= before + THREADS, "descriptors grew with the passes"
    assert len(opens) == 1


def test_a_pass_sees_a_container_removed_after_the_last_list(stack, tmp_path, engine):
    reconciler = Reconciler(shared_engine=True, state=StateStore.open(tmp_path / "state"))
    first, second = _stacks(stack, reconciler, 2)
    _apply_all(reconciler, [first, second])
    assert not reconciler.apply(second).outcomes  # a list of every container, made a moment ago
    engine.remove_container(f"{first.stack}-app-1", force=True)
    repaired = reconciler.apply(first)
    assert [(o.change.action.value, o.change.name) for o in repaired.outcomes] == [("create", f"{first.stack}-app-1")]
    assert repaired.ok


def test_a_pass_after_one_that_could_not_reach_the_engine_opens_it_again(stack, tmp_path, opens):
    with TcpRelay() as relay:
        reconciler = Reconciler(engine_url=relay.url, shared_engine=True, state=StateStore.open(tmp_path / "state"))
        (desired,) = _stacks(stack, reconciler, 1)
        assert reconciler.apply(desired).ok
        assert not reconciler.apply(desired).outcomes and len(opens) == 1
        relay.down()
        with pytest.raises(EngineUnreachable):
            reconciler.apply(desired)
        relay.up()
        again = reconciler.apply(desired)
        assert again.ok and not again.outcomes
        assert len(opens) >= 2 and again.stats["read"] == KINDS + 1  # opened again: /info, then the lists
        opened = len(opens)
        assert not reconciler.apply(desired).outcomes and len(opens) == opened  # and kept
