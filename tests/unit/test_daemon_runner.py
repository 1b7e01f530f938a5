"""The daemon without the CLI, on the in-memory engine: it counts its own passes, a load only reads holds."""
from __future__ import annotations

import json
import queue
import threading

import pytest

from reconciler.daemon import Daemon, load_config
from reconciler.daemon.metrics import Metrics
from reconciler.errors import SourceError, SpecError
from reconciler.loop import Trigger
from reconciler.testing import make_reconciler

SPEC = """
name: demo
containers:
  web: {image: "busybox:1"}
"""


@pytest.fixture
def daemon(tmp_path, memory_engine):
    """A ``Daemon`` over one directory source holding SPEC, built as a library user would, and its metrics."""
    (tmp_path / "stacks" / "app").mkdir(parents=True)
    (tmp_path / "stacks" / "app" / "stack.yaml").write_text(SPEC)
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "resync": 300,
                                  "sources": [{"name": "here", "dir": str(tmp_path / "stacks"), "paths": ["app"]}]}))
    metrics = Metrics()
    return Daemon(load_config(str(config)), reconciler=make_reconciler(memory_engine), metrics=metrics), metrics


def _sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_a_daemon_built_without_the_cli_records_every_pass(daemon, memory_engine):
    daemon, metrics = daemon
    passes: queue.Queue = queue.Queue()
    daemon.on_pass = lambda worker, result: passes.put(result)
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    runner.start()
    try:
        first = passes.get(timeout=10)
    finally:
        stop.set()
        runner.join(timeout=10)
    assert first.ok, first.error
    assert "demo-web-1" in memory_engine.containers
    assert _sample(metrics, "reconciler_syncs_total", stack="demo", result="converged") == 1
    # the image, the container and the default network:
    assert _sample(metrics, "reconciler_managed_objects", stack="demo") == 3
    assert _sample(metrics, "reconciler_sync_duration_seconds_count", stack="demo") == 1
    assert _sample(metrics, "reconciler_last_successful_sync_timestamp_seconds", stack="demo") > 0


def test_a_pass_that_fails_to_load_is_counted_under_the_workers_id(daemon, tmp_path):
    daemon, metrics = daemon
    (tmp_path / "stacks" / "app" / "stack.yaml").write_text("containers: {web: {image: 1}}\n")
    (worker,) = daemon.workers
    daemon._passed(worker, worker.loop.run_pass(Trigger.START))
    assert _sample(metrics, "reconciler_syncs_total", stack="here:app", result="invalid") == 1
    assert _sample(metrics, "reconciler_sync_failures_total", stack="here:app") == 1


def test_a_source_that_cannot_be_fetched_is_a_source_error_not_an_invalid_spec_and_is_retried(daemon):
    daemon, metrics = daemon
    (worker,) = daemon.workers

    def unfetched():
        raise SourceError("source here: fetching file:///nosuch.git main failed:\n  fatal: no such repository")

    worker.loop.load = unfetched
    result = worker.loop.run_pass(Trigger.START)
    daemon._passed(worker, result)
    assert result.source_failed and not result.invalid and result.delay > 0  # tried again, with backoff
    assert result.error.startswith("the source could not be fetched") and "fatal: no such repository" in result.error
    assert (Trigger.RETRY, False) in worker.loop._pending
    assert _sample(metrics, "reconciler_syncs_total", stack="here:app", result="source_error") == 1
    assert _sample(metrics, "reconciler_sync_failures_total", stack="here:app") == 1


def test_a_revision_that_does_not_export_is_still_invalid_not_a_source_error(daemon):
    from reconciler.daemon.sources import InvalidRevision

    daemon, metrics = daemon
    (worker,) = daemon.workers

    def rejected():
        raise InvalidRevision("here@0123456789ab:app/app.env", "is a link to '/etc/shadow'", "0123456789ab" * 3)

    worker.loop.load = rejected
    daemon._passed(worker, worker.loop.run_pass(Trigger.START))
    assert worker.last.invalid and not worker.last.source_failed
    assert _sample(metrics, "reconciler_syncs_total", stack="here:app", result="invalid") == 1


def test_loading_a_stack_only_reads_its_hold_and_a_fetch_releases_a_hold_it_moved_past(daemon):
    daemon, _ = daemon
    (worker,) = daemon.workers
    assert worker.loop.run_pass(Trigger.START).ok
    state = daemon.reconciler.state
    worker.checkout.revision = "b" * 40  # as if the source had been fetched at a newer commit
    state.hold("demo", "a" * 40, source_revision="c" * 40)
    held = daemon._load(worker)
    assert (held.stack, worker.held) == ("demo", False)  # the source moved past the hold: it is over...
    assert "demo" in state.holds()  # ...and the load wrote nothing
    daemon.refresh(worker.source)
    assert state.holds() == {}


def test_a_second_rollback_keeps_the_first_holds_source_revision(daemon):
    from reconciler.state import Sync, SyncResult

    daemon, _ = daemon
    state = daemon.reconciler.state
    with pytest.raises(SpecError, match="has no synced git revision"):
        state.hold_at("demo", "a" * 40)
    state.add_sync(Sync("engine", "demo", "c" * 40, "no changes", SyncResult.CONVERGED, 0.1))
    with pytest.raises(SpecError, match=r"--to: 'abc' is not a commit id \(7 to 40 hex digits\)"):
        state.hold_at("demo", "abc")
    assert state.hold_at("demo", "a" * 40) == "c" * 40
    state.add_sync(Sync("engine", "demo", "a" * 40, "no changes", SyncResult.CONVERGED, 0.1))  # the held pass
    assert state.hold_at("demo", "d" * 40) == "c" * 40
    assert state.holds() == {"demo": ("d" * 40, "c" * 40)}


def test_rollback_takes_the_digits_history_shows(daemon):
    from reconciler.state import Sync, SyncResult

    daemon, _ = daemon
    state = daemon.reconciler.state
    older, newer, twin = "1a2b3c4d5e6f" + "0" * 28, "9f8e7d6c5b4a" + "1" * 28, "1a2b3c4d5e6f" + "2" * 28
    for revision in (older, newer):
        state.add_sync(Sync("engine", "demo", revision, "no changes", SyncResult.CONVERGED, 0.1))
    assert state.hold_at("demo", older[:12]) == newer  # history's 12 digits name the commit
    assert state.holds()["demo"][0] == older
    with pytest.raises(SpecError, match="no revision of stack 'demo' synced in this state directory starts with"):
        state.hold_at("demo", "abcdef0")
    state.add_sync(Sync("engine", "demo", twin, "no changes", SyncResult.CONVERGED, 0.1))
    with pytest.raises(SpecError, match="starts 2 synced revisions"):
        state.hold_at("demo", older[:12])


def test_a_command_line_error_is_not_placed_in_a_spec_file():
    assert str(SpecError("--to: 'abc' is not a commit id")) == "--to: 'abc' is not a commit id"


def test_settled_resyncs_are_counted_apart():
    from reconciler.loop import Pass
    from reconciler.report import ApplyReport

    metrics = Metrics()
    metrics.observe_pass("s", Pass(Trigger.RESYNC, report=ApplyReport("s", (), 0.001)), managed=1)
    assert _sample(metrics, "reconciler_settled_passes_total", how="observed") is None  # a resync that planned
    metrics.observe_pass("s", Pass(Trigger.RESYNC, report=ApplyReport("s", (), 0.001, settled=True)), managed=1)
    metrics.observe_pass("s", Pass(Trigger.RESYNC, report=ApplyReport("s", (), 0.0, settled=True), trusted=True),
                         managed=1)
    assert _sample(metrics, "reconciler_settled_passes_total", how="observed") == 1
    assert _sample(metrics, "reconciler_settled_passes_total", how="events") == 1
    assert _sample(metrics, "reconciler_syncs_total", stack="s", result="converged") == 3
    assert _sample(metrics, "reconciler_managed_objects", stack="s") == 1
