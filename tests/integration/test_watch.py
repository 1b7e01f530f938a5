"""reconcile watch against the real engine: drift repaired in seconds, edits applied, bad edits refused."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from reconciler.labels import owner_selector

from ..waiting import seconds_until

SPEC = """
name: STACK
containers:
  web:
    image: BASE
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
    env: {LEVEL: "one"}
"""


@pytest.fixture
def watching(stack):
    stack.write(SPEC)
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "watch", "-f", str(stack.dir / "stack.yaml"),
                             "--resync", "300"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=os.environ.copy())
    try:
        assert seconds_until(lambda: _running(stack), 30) is not None, "watch never brought the stack up"
        yield stack, proc
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
        print(out)
        assert proc.returncode == 0, out  # SIGTERM is a clean stop


def _running(stack) -> bool:
    return any(c["State"] == "running" for c in stack.containers().values())


def test_a_container_removed_by_hand_is_back_within_two_seconds(watching):
    stack, _ = watching
    stack.engine.remove_container(f"{stack.name}-web-1", force=True)
    seconds = seconds_until(lambda: _running(stack), 10)
    assert seconds is not None and seconds <= 2.0, f"repaired after {seconds}s"


def test_a_stopped_container_is_started_again(watching):
    stack, _ = watching
    stack.engine.stop(f"{stack.name}-web-1", timeout=1)
    assert seconds_until(lambda: _running(stack), 10) is not None


def test_an_edit_is_applied_and_a_broken_edit_keeps_the_last_good_state(watching):
    stack, proc = watching
    first = stack.container_ids()
    stack.write(SPEC.replace('"one"', '"two"'))
    # Done when only the successor is left (start-first: the old one goes once the new one runs): the same
    # name with another id (the old one renamed aside, <name>-old-<id>, is alone for a moment before it).
    assert seconds_until(lambda: (ids := stack.container_ids()).keys() == first.keys() and ids != first
                 and _running(stack), 20)
    good = stack.container_ids()
    (stack.dir / "stack.yaml").write_text("containers: {web: {image: [oops\n")
    time.sleep(2)
    assert stack.container_ids() == good and _running(stack)
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    assert "the spec does not load, nothing was changed" in out and "stack.yaml:2:1" in out


def test_a_crash_looping_container_backs_off_and_is_reported_degraded(stack):
    stack.write(SPEC.replace('["sleep", "3600"]', '["sh", "-c", "sleep 0.3; exit 3"]'))
    # Counted from a live stream: the engine keeps only its last 256 events, which a
    # busy engine overwrites within seconds.
    stream = stack.engine.events(decode=True, filters={"label": [owner_selector(stack.name)],
                                                       "event": ["start"]})
    starts = []
    reader = threading.Thread(target=lambda: starts.extend(stream), daemon=True)
    reader.start()
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "watch", "-f", str(stack.dir / "stack.yaml"),
                             "--resync", "300"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(15)
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    time.sleep(0.5)
    stream.close()
    # Without backoff it would start about every 0.5 s (30 times); with it: 3 quick starts, then 1, 2, 4, 8 s apart.
    assert 3 <= len(starts) <= 9, (len(starts), out)
    assert "is crash-looping" in out, out
    assert len(stack.containers()) == 1  # restarted, never recreated
