"""``reconcile logs`` and ``events`` without an engine: --since, merging in time, prefixes and colour, the command."""
from __future__ import annotations

import io
import json
import threading
import time

import pytest

from reconciler.cli import main
from reconciler.cli.streams import PALETTE, LogPrefixes, event_text, use_colour
from reconciler.errors import SpecError
from reconciler.logs import LogLine, StackEvent, engine_event, merged_events, parse_since, read_logs
from reconciler.model import Kind, LiveObject
from reconciler.labels import KIND, STACK


def test_since_takes_a_duration_ago_or_an_rfc3339_time() -> None:
    assert parse_since("10m", now=1000.0) == 400.0
    assert parse_since("2h", now=10000.0) == 2800.0
    assert parse_since("90s", now=100.0) == 10.0
    assert parse_since("2026-12-07T10:00:00Z") == parse_since("2026-12-07T10:00:00+00:00") == 1796637600.0
    with pytest.raises(SpecError, match="--since yesterday"):
        parse_since("yesterday")


def _engine_with_output(memory_engine):
    for name in ("shop-web-1", "shop-db-1"):
        memory_engine.add(LiveObject(Kind.CONTAINER, name, name, labels={STACK: "shop", KIND: "container"},
                                     state="running"))
    memory_engine.write("shop-web-1", "GET / 200", at=10.0)
    memory_engine.write("shop-db-1", "ready", at=5.0)
    memory_engine.write("shop-web-1", "GET /x 404", stream="stderr", at=20.0)
    return memory_engine.drivers("shop").get(Kind.CONTAINER, "docker")


def test_lines_of_several_containers_are_merged_in_time_and_tail_counts_per_container(memory_engine) -> None:
    runtime = _engine_with_output(memory_engine)
    lines = list(read_logs(runtime, ["shop-db-1", "shop-web-1"]))
    assert [(l.container, l.line) for l in lines] == [("shop-db-1", "ready"), ("shop-web-1", "GET / 200"),
                                                      ("shop-web-1", "GET /x 404")]
    assert lines[2].stream == "stderr"
    assert [l.line for l in read_logs(runtime, ["shop-db-1", "shop-web-1"], tail=1)] == ["ready", "GET /x 404"]
    assert [l.line for l in read_logs(runtime, ["shop-web-1"], since=15.0)] == ["GET /x 404"]


def test_a_follow_shows_a_line_written_after_it_started_and_ends_when_stopped(memory_engine) -> None:
    runtime = _engine_with_output(memory_engine)
    stop = threading.Event()
    seen: list[str] = []

    def follow() -> None:
        for line in read_logs(runtime, ["shop-web-1"], follow=True, stop=stop):
            seen.append(line.line)

    thread = threading.Thread(target=follow)
    thread.start()
    time.sleep(0.2)
    memory_engine.write("shop-web-1", "late")
    deadline = time.monotonic() + 5
    while "late" not in seen and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(5)
    assert seen == ["GET / 200", "GET /x 404", "late"] and not thread.is_alive()


def test_prefixes_are_padded_and_coloured_per_container_unless_colour_is_off() -> None:
    plain = LogPrefixes(["shop-web-1", "db"], colour=False)
    assert plain.line("db", 0.0, "ready") == "db          | ready"
    assert plain.line("shop-web-1", 0.0, "GET / 200") == "shop-web-1  | GET / 200"
    coloured = LogPrefixes(["shop-web-1", "db"], colour=True)
    assert coloured.line("db", 0.0, "ready") == f"\x1b[{PALETTE[1]}mdb          |\x1b[0m ready"
    stamped = LogPrefixes(["db"], colour=False, timestamps=True)
    assert stamped.line("db", 1796637600.5, "x") == "db  | 2026-12-07T10:00:00.500000Z x"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_no_color_or_the_flag() -> None:
    assert use_colour(False, _Terminal(), {}) is True
    assert use_colour(False, _Terminal(), {"NO_COLOR": ""}) is False
    assert use_colour(True, _Terminal(), {}) is False
    assert use_colour(False, io.StringIO(), {}) is False


def test_engine_events_and_passes_merge_in_time_order() -> None:
    engine = [engine_event({"time": 10.0, "type": "container", "action": "die", "name": "shop-web-1",
                            "attributes": {"exitCode": "137"}}),
              engine_event({"time": 30.0, "type": "container", "action": "start", "name": "shop-web-1"})]
    passes = [StackEvent(20.0, "reconcile", "apply", "shop", "converged", "replace 1 (rev 3f2a1c9)")]
    merged = list(merged_events(lambda stop: engine, lambda after: passes))
    assert [e.time for e in merged] == [10.0, 20.0, 30.0]
    assert event_text(merged[0]).endswith("  engine   container shop-web-1 die (exit 137)")
    assert event_text(merged[1]).endswith("  reconcile apply converged: replace 1 (rev 3f2a1c9)")
    assert merged[0].data() == {"time": 10.0, "source": "engine", "kind": "container", "name": "shop-web-1",
                                "action": "die", "detail": "exit 137"}
    assert [e.time for e in merged_events(lambda stop: engine, lambda after: passes, since=15.0)] == [20.0, 30.0]


def test_reconcile_logs_names_the_stack_without_a_spec(memory_engine, monkeypatch, capsys) -> None:
    _engine_with_output(memory_engine)
    monkeypatch.setattr("reconciler.cli.local.reconciler_of", lambda args: _reconciler(memory_engine))
    assert main(["logs", "shop", "--tail", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == ["shop-db-1   | ready", "shop-web-1  | GET /x 404"]
    assert main(["logs", "shop", "shop-db-1"]) == 0
    assert capsys.readouterr().out.splitlines() == ["shop-db-1  | ready"]
    assert main(["logs", "shop", "nope"]) == 1
    assert "stack shop has no container named nope" in capsys.readouterr().err


def test_reconcile_events_shows_the_passes_of_a_runtime_without_events(memory_engine, monkeypatch, capsys,
                                                                         tmp_path) -> None:
    from reconciler.state import StateStore, Sync, SyncResult

    _engine_with_output(memory_engine)
    monkeypatch.setattr("reconciler.cli.local.reconciler_of", lambda args: _reconciler(memory_engine))
    with StateStore.open(tmp_path) as store:
        store.add_sync(Sync("engine", "shop", "3f2a1c9" + "0" * 33, "replace 1", SyncResult.CONVERGED, 1.0))
    assert main(["events", "shop", "--state-dir", str(tmp_path), "--output", "json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    event = json.loads(line)
    assert (event["source"], event["kind"], event["action"], event["detail"]) == (
        "reconcile", "apply", "converged", "replace 1 (rev 3f2a1c9)")


def _reconciler(memory_engine):
    from reconciler.testing import make_reconciler

    return make_reconciler(memory_engine)
