"""Releases that include their data, against the real engine and the ``local`` storage driver (issue 26).

A "database" container (the busybox image, a shell script as command) writes
``schema=1`` and some rows into its volume; its version 2 migrates the volume
to schema 2 as it starts and then fails its healthcheck. The failed release
puts the old container back on the data it had (or, with ``--no-restore``, on
what version 2 left). A start-first release pauses the old container for its
snapshot: a client's requests wait, none fails. A SIGKILL in the middle of a
restore is finished by the next apply.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from reconciler.state import StateStore, engine_key
from reconciler_docker.volumesnap import HELPER_VOLUME

from ..waiting import wait_until
from .conftest import BASE_IMAGE

HELPER = {"RECONCILER_HELPER_IMAGE": BASE_IMAGE}

# Version 1 makes its schema and rows once; version 2 migrates them as it starts, then is never healthy.
DATABASE = """
name: STACK
volumes:
  data: {}
containers:
  db:
    image: BASE
    command: ["sh", "-c", "@SCRIPT@"]
    init: true
    stop_grace_period: 1s
    env: {VERSION: "@V@"}
    volumes: ["data:/data"]
    healthcheck: {test: ["CMD-SHELL", "@HEALTH@"], interval: 500ms, retries: 1}
    update: {order: stop-first, snapshot: [data], timeout: 10s}
"""
V1 = ("[ -f /data/schema ] || { @EXTRA@ printf 'row1\\nrow2\\n' > /data/rows; echo schema=1 > /data/schema; }; "
      "exec sleep 3600")  # the schema last: healthy once everything is written
V2 = "echo schema=2 > /data/schema; echo migrated >> /data/rows; rm -f /data/blob; exec sleep 3600"
HEALTHY, NEVER = "grep -q schema=1 /data/schema", "false"


def _database(stack, version: str, *, extra: str = ":;") -> None:
    script, health = (V1.replace("@EXTRA@", extra), HEALTHY) if version == "1" else (V2, NEVER)
    stack.write(DATABASE.replace("@SCRIPT@", script).replace("@HEALTH@", health).replace("@V@", version))


def _db(stack) -> str:
    return f"{stack.name}-db-1"


def _healthy(stack) -> None:
    """Wait for the database to have written its data (its healthcheck says so): a create waits for nothing."""
    wait_until(lambda: stack.engine.inspect_container(_db(stack))["State"].get("Health", {}).get("Status")
               == "healthy", timeout=60)


def _read(stack, path: str) -> str:
    return stack.exec(_db(stack), "cat", path)


def _book(stack):
    store = StateStore.open()
    return store, store.stack(engine_key(stack.engine.info()["ID"]), stack.name)


def test_a_failed_release_restores_its_data_and_no_restore_keeps_it(stack):
    _database(stack, "1")
    first = stack.apply(env=HELPER)
    assert first.code == 0, first.out + first.err
    _healthy(stack)
    old_id = stack.containers()[_db(stack)]["Id"]
    stack.exec(_db(stack), "sh", "-c", "echo row3 >> /data/rows")  # written before the release
    _database(stack, "2")
    failed = stack.apply(env=HELPER)
    assert failed.code != 0, failed.out
    volume = f"{stack.name}_data"
    found = re.search(rf"data restored: {volume} from snapshot (\S+) \(taken [^,]+, [\d.]+ MiB written since "
                      r"discarded\)", failed.out + failed.err)
    assert found, failed.out + failed.err
    assert stack.containers()[_db(stack)]["Id"] == old_id and stack.containers()[_db(stack)]["State"] == "running"
    assert _read(stack, "/data/schema").strip() == "schema=1"
    assert _read(stack, "/data/rows").split() == ["row1", "row2", "row3"]
    store, book = _book(stack)
    with store:
        assert [(r.snapshot.id, r.state) for r in book.snapshots(volume)] == [(found.group(1), "restored")]

    kept = stack.apply("--no-restore", env=HELPER)
    assert kept.code != 0, kept.out
    assert re.search(rf"data kept: {volume} \(snapshot \S+ not restored\)", kept.out + kept.err), kept.out
    assert stack.containers()[_db(stack)]["Id"] == old_id
    assert _read(stack, "/data/schema").strip() == "schema=2"  # what version 2 left, for debugging


WEB = """
name: STACK
volumes:
  site: {}
containers:
  web:
    image: BASE
    command: ["sh", "-c", "mkdir -p /site/www && echo ok > /site/www/index.html && exec httpd -f -p 8080 -h /site/www"]
    init: true
    stop_grace_period: 1s
    env: {VERSION: "@V@"}
    ports: ["127.0.0.1::8080"]
    volumes: ["site:/site"]
    healthcheck: {test: ["CMD-SHELL", "nc -w 1 127.0.0.1 8080 </dev/null"], interval: 500ms, retries: 20}
    update: {order: start-first, snapshot: [site]}
"""


def test_a_start_first_release_pauses_for_its_snapshot_and_requests_wait_not_fail(stack):
    stack.write(WEB.replace("@V@", "1"))
    assert stack.apply(env=HELPER).code == 0
    web = f"{stack.name}-web-1"
    port = stack.engine.port(web, 8080)[0]["HostPort"]
    old, begun_at = stack.containers()[web]["Id"], time.time()
    latencies, failures, stop = [], [], threading.Event()
    begun = time.monotonic()

    def client() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=20) as answer:
                    assert answer.read().strip() == b"ok"
                latencies.append(time.monotonic() - started)
            except Exception as exc:  # counted: the test asserts there are none
                failures.append(f"{time.monotonic() - begun:.2f}s after the apply began: {exc!r}")
            time.sleep(0.01)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    time.sleep(0.3)
    stack.write(WEB.replace("@V@", "2"))
    begun = time.monotonic()
    apply = subprocess.Popen([sys.executable, "-m", "reconciler", "apply", "-f", str(stack.dir / "stack.yaml")],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=stack.dir,
                             env={**os.environ, **HELPER})
    # The client asks the old container until it is unpaused: long before its successor is ready and it is
    # drained (taken out of its networks, which ends what a client still asks of it).
    for _ in stack.engine.events(since=int(begun_at) - 1, until=int(time.time()) + 60, decode=True,
                                 filters={"container": old, "event": "unpause"}):
        break
    stop.set()
    thread.join(30)
    out, _ = apply.communicate(timeout=60)
    assert apply.returncode == 0, out
    paused = re.search(r"paused (\d+\.\d+)s for the snapshot", out)
    assert paused, out
    assert failures == [], (failures, out)
    assert len(latencies) > 10
    pause = float(paused.group(1))
    delayed = [t for t in latencies if t >= pause / 2]
    print(f"pause {pause:.2f}s, {len(latencies)} requests, {len(delayed)} delayed (max {max(latencies):.2f}s), "
          f"0 failed")
    assert delayed, (pause, max(latencies))  # the request that met the pause waited for it


def test_a_restore_killed_midway_is_finished_by_the_next_apply(stack):
    blob = "head -c 16777216 /dev/urandom > /data/blob;"  # 16 MiB that do not compress: the restore takes a moment
    _database(stack, "1", extra=blob)
    assert stack.apply(env=HELPER).code == 0
    _healthy(stack)
    before = stack.exec(_db(stack), "sh", "-c", "cd /data && md5sum schema rows blob")
    _database(stack, "2")
    apply = subprocess.Popen([sys.executable, "-m", "reconciler", "apply", "-f", str(stack.dir / "stack.yaml")],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=stack.dir,
                             env={**os.environ, **HELPER})
    store, book = _book(stack)
    with store:
        # Killed once the restore's helper (the one that empties the volume, then takes the archive) exists:
        # the snapshot was verified, the volume is being replaced.
        restoring = {"label": [f"{HELPER_VOLUME}={stack.name}_data"]}
        deadline = time.monotonic() + 60
        while not (book.restoring() and any(c["Command"].startswith("find ")
                                            for c in stack.engine.containers(all=True, filters=restoring))):
            assert apply.poll() is None, apply.communicate()[0]
            assert time.monotonic() < deadline, "the release never started its restore"
            time.sleep(0.02)
        apply.send_signal(signal.SIGKILL)
        apply.communicate(timeout=30)
        [row] = book.restoring()
        _database(stack, "1", extra=blob)
        again = stack.apply(env=HELPER)
        assert again.code == 0, again.out + again.err
        assert (f"finished an interrupted restore: data restored: {row.volume} from snapshot {row.snapshot.id}"
                in again.out + again.err)
        assert stack.exec(_db(stack), "sh", "-c", "cd /data && md5sum schema rows blob") == before
        assert book.restoring() == []
