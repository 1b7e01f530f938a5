"""No exception ends a worker thread (issue 21, §4): a stack's loop, an event follower and a source's poller each
report what nobody expected, count it and carry on after a backoff; only ``stop`` ends them."""
from __future__ import annotations

import json
import queue
import threading

import pytest

from reconciler.daemon import Daemon, load_config
from reconciler.daemon.metrics import Metrics
from reconciler.loop import LoopOptions, StackLoop, Trigger
from reconciler.plan import Action
from reconciler.spec import load_desired
from reconciler.testing import make_reconciler

from ..waiting import wait_until

SPEC = "name: demo\ncontainers:\n  web: {image: 'busybox:1'}\n"


@pytest.fixture
def run_loop(tmp_path, memory_engine):
    """Start a ``StackLoop`` of SPEC on the memory engine in a thread (fast debounce and backoff):
    (the loop, its passes, the thread names its ``on_error`` was told, the thread)."""
    (tmp_path / "stack.yaml").write_text(SPEC)
    reconciler = make_reconciler(memory_engine)
    desired = load_desired([tmp_path / "stack.yaml"], drivers=reconciler.driver_catalog())
    stop = threading.Event()
    started = []

    def start(on_pass=lambda result: None):
        passes: queue.Queue = queue.Queue()
        errors: list[str] = []

        def passed(result):
            passes.put(result)
            on_pass(result)

        loop = StackLoop(reconciler, lambda: desired, on_pass=passed, on_error=errors.append,
                         options=LoopOptions(debounce=0.01, backoff_base=0.05, backoff_cap=0.2))
        thread = threading.Thread(target=loop.run, args=(stop,), name="stack-demo", daemon=True)
        thread.start()
        started.append(thread)
        return loop, passes, errors, thread

    yield start
    stop.set()
    for thread in started:
        thread.join(timeout=5)


def test_a_pass_that_raises_an_unexpected_exception_fails_and_the_loop_keeps_running(run_loop, memory_engine):
    memory_engine.fail("observe", RuntimeError("boom\nsecond line"))
    _, passes, errors, thread = run_loop()
    failed = passes.get(timeout=5)
    assert failed.error == "unexpected error, retried: RuntimeError: boom" and failed.delay > 0
    assert errors == ["stack-demo"]
    retried = passes.get(timeout=5)  # after the backoff, without any other trigger
    assert retried.trigger is Trigger.RETRY and retried.ok, retried.error
    assert thread.is_alive()


def test_a_callback_that_raises_does_not_end_the_loop(run_loop):
    calls = []

    def on_pass(result):
        calls.append(result)
        if len(calls) == 1:
            raise ValueError("a front end's bug")

    _, passes, errors, thread = run_loop(on_pass)
    assert passes.get(timeout=5).ok
    assert passes.get(timeout=5).trigger is Trigger.RETRY  # retried after a backoff
    assert errors == ["stack-demo"] and thread.is_alive()


def test_an_event_stream_that_raises_is_opened_again_and_drift_is_still_repaired(run_loop, memory_engine):
    memory_engine.fail("events", RuntimeError("the stream broke"), times=2)
    _, passes, errors, _ = run_loop()
    assert passes.get(timeout=5).ok
    wait_until(lambda: memory_engine.followers == 1, 5, "the stream opened again", step=0.02)
    assert errors == ["events-demo-MemoryRuntimeDriver"] * 2
    memory_engine.remove("demo-web-1")
    repair = passes.get(timeout=5)
    while not repair.report.outcomes:  # the passes the broken streams asked for, to see what they missed
        repair = passes.get(timeout=5)
    assert repair.trigger is Trigger.ENGINE and repair.ok, repair.error
    assert [(o.change.name, o.change.action) for o in repair.report.outcomes] == [("demo-web-1", Action.CREATE)]


def _daemon(tmp_path, memory_engine, source: dict) -> tuple[Daemon, Metrics]:
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "resync": 300, "sources": [source]}))
    metrics = Metrics()
    return Daemon(load_config(str(config)), reconciler=make_reconciler(memory_engine), metrics=metrics), metrics


def _errors(metrics: Metrics, thread: str) -> float | None:
    return metrics.registry.get_sample_value("reconciler_worker_errors_total", {"thread": thread})


def test_the_daemon_counts_a_stacks_unexpected_error_and_converges_after(tmp_path, memory_engine):
    (tmp_path / "stacks" / "app").mkdir(parents=True)
    (tmp_path / "stacks" / "app" / "stack.yaml").write_text(SPEC)
    daemon, metrics = _daemon(tmp_path, memory_engine, {"name": "here", "dir": str(tmp_path / "stacks"),
                                                          "paths": ["app"]})
    memory_engine.fail("observe", RuntimeError("boom"))
    (worker,) = daemon.workers
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    runner.start()
    try:
        wait_until(lambda: worker.last is not None, 10, "a first pass")  # ready, though it failed
        wait_until(lambda: worker.last.ok, 10, lambda: f"a converged pass after a backoff: {worker.last}")
    finally:
        stop.set()
        runner.join(timeout=10)
    assert _errors(metrics, "stack-here:app") == 1
    assert metrics.registry.get_sample_value("reconciler_syncs_total", {"stack": "demo", "result": "error"}) == 1


def test_a_poller_whose_round_raises_goes_on_after_a_backoff(tmp_path, memory_engine):
    daemon, metrics = _daemon(tmp_path, memory_engine, {"name": "repo", "paths": ["app"], "git": {
        "url": f"file://{tmp_path}/nowhere.git", "interval": 0.01}})
    daemon.options = LoopOptions(resync=300, backoff_base=0.05)
    rounds = []

    def poll_once(source, holds, since=None, seen=None):
        rounds.append(holds)
        if len(rounds) <= 2:
            raise KeyError("a bug in a round")
        return holds

    daemon._poll_once = poll_once
    stop = threading.Event()
    poller = threading.Thread(target=daemon._poll, args=([daemon.config.sources[0]], stop), name="poll")
    poller.start()
    try:
        wait_until(lambda: len(rounds) >= 4, 5, "rounds after the failed ones", step=0.02)
        assert poller.is_alive()
    finally:
        stop.set()
        daemon.fetch(["repo"])
        poller.join(timeout=5)
    assert not poller.is_alive() and _errors(metrics, "poll-repo") == 2
