"""``reconcile logs`` and ``events`` on the real engine, and the daemon's /logs: prefixes, --tail, --since, a follow."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from .daemons import conforms

SPEC = """
name: STACK
containers:
  web:
    image: BASE
    command: ["sh", "-c", "echo web-one; sleep 0.3; echo web-two >&2; exec sleep 3600"]
    init: true
    stop_grace_period: 1s
  db:
    image: BASE
    command: ["sh", "-c", "echo db-ready; exec sleep 3600"]
    init: true
    stop_grace_period: 1s
"""


def _converged(stack) -> None:
    stack.write(SPEC)
    result = stack.apply()
    assert result.code == 0, result.err
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the containers have written their first lines
        out = stack.cli("logs", "--no-color").out
        if "db-ready" in out and "web-two" in out:
            return
        time.sleep(0.3)
    raise AssertionError(f"the containers wrote nothing: {out!r}")


def test_logs_prefixes_each_container_and_takes_tail_and_since(stack):
    _converged(stack)
    web, db = f"{stack.name}-web-1", f"{stack.name}-db-1"
    lines = stack.cli("logs").out.splitlines()  # not a terminal: no colour
    width = len(web)
    assert f"{db:<{width}}  | db-ready" in lines
    assert f"{web:<{width}}  | web-one" in lines and f"{web:<{width}}  | web-two" in lines
    assert all("\x1b[" not in line for line in lines)

    by_name = stack.cli("logs", stack.name, spec=False).out.splitlines()  # no spec: found by the stack's labels
    assert sorted(by_name) == sorted(lines)
    only_web = stack.cli("logs", web, "--tail", "1").out.splitlines()
    assert only_web == [f"{web}  | web-two"]
    assert stack.cli("logs", "--since", "2026-01-01T00:00:00Z").out.splitlines() == lines
    later = stack.cli("logs", "--since", "0s").out.strip()
    assert "web-one" not in later and "db-ready" not in later


def test_a_follow_shows_a_line_written_after_it_started_and_ends_on_ctrl_c(stack):
    _converged(stack)
    web = f"{stack.name}-web-1"
    # Started as from a terminal, Ctrl-C raising KeyboardInterrupt: a suite run in the background by a script
    # (`cmd &`) starts every child with SIGINT ignored, and Python then never installs its handler.
    terminal = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                "runpy.run_module('reconciler', run_name='__main__')")
    proc = subprocess.Popen([sys.executable, "-c", terminal, "logs", "-f", str(stack.dir / "stack.yaml"),
                             "--follow", "--no-color", web], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=stack.dir, env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    try:
        time.sleep(2)
        stack.exec(web, "sh", "-c", "echo late-line > /proc/1/fd/1")
        deadline, seen = time.monotonic() + 20, ""
        os.set_blocking(proc.stdout.fileno(), False)
        while "late-line" not in seen and time.monotonic() < deadline:
            seen += proc.stdout.read() or ""
            time.sleep(0.2)
        assert f"{web}  | late-line" in seen, seen
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # hung: faulthandler prints every thread's stack on SIGABRT
            proc.send_signal(signal.SIGABRT)
            proc.wait(timeout=10)
            raise AssertionError("reconcile logs --follow did not end within 10 s of SIGINT:\n"
                                 + proc.stderr.read()) from None
    assert code == 0, proc.stderr.read()


def test_events_show_the_engines_die_and_the_pass_in_time_order(stack):
    started = time.time()
    _converged(stack)
    stack.engine.stop(f"{stack.name}-db-1", timeout=1)
    result = stack.cli("events", "--since", str(int(time.time() - started) + 5) + "s", "--output", "json")
    assert result.code == 0, result.err
    events = [json.loads(line) for line in result.out.splitlines()]
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)
    engine = [(e.get("name"), e.get("action")) for e in events if e["source"] == "engine"]
    assert (f"{stack.name}-db-1", "die") in engine and (f"{stack.name}-db-1", "stop") in engine
    assert any(e["source"] == "reconcile" and e["action"] == "converged" for e in events), events
    die = next(e for e in events if e.get("action") == "die")
    assert die["detail"].startswith("exit ")
    text = stack.cli("events", "--since", "10m").out
    assert f"container {stack.name}-db-1 die (exit" in text and " reconcile apply converged" in text


def test_the_daemon_api_answers_logs_as_ndjson(api, stack):
    web = f"{stack.name}-web-1"
    stack.exec(web, "sh", "-c", "echo from-the-daemon > /proc/1/fd/1")
    status, headers, body = api.call("GET", f"/api/stacks/{stack.name}/logs?tail=20", token=api.read_token)
    assert status == 200 and headers["Content-Type"].startswith("application/x-ndjson"), body
    lines = [json.loads(line) for line in (body if isinstance(body, str) else json.dumps(body)).splitlines()]
    assert {"container": web, "stream": "stdout", "line": "from-the-daemon"} in [
        {k: v for k, v in line.items() if k != "time"} for line in lines]
    status, _, missing = api.call("GET", f"/api/stacks/{stack.name}/logs?container=nope", token=api.read_token)
    assert status == 404
    conforms("/api/stacks/{name}/logs", "get", 404, missing)
    status, _, body = api.call("GET", f"/api/stacks/{stack.name}/events", token=api.read_token)
    assert status == 200
    events = [json.loads(line) for line in (body if isinstance(body, str) else json.dumps(body)).splitlines()]
    assert any(e["source"] == "reconcile" for e in events) and any(e["source"] == "engine" for e in events)
