"""``reconcile snapshots list|restore|delete`` on a real local volume, and a daemon's ``rollback --with-data``
through its state directory: a release v1 → v2 whose v2 migrates the data, rolled back to v1's containers on v1's
data. Snapshots go through the helper image (``RECONCILER_HELPER_IMAGE``, the busybox base here)."""
from __future__ import annotations

import json
import os

import pytest

from reconciler.model import Kind
from reconciler.reconcile import Reconciler
from reconciler.stacksnapshots import open_snapshots

from .conftest import BASE_IMAGE
from .daemons import Repo, RunningDaemon

HELPER = {"RECONCILER_HELPER_IMAGE": BASE_IMAGE}

SPEC = """
name: STACK
volumes: {data: {}}
containers:
  db:
    image: BASE
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
    volumes: ["data:/data"]
  web:
    image: BASE
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
"""


@pytest.fixture(autouse=True)
def _helper_image(monkeypatch):
    for key, value in HELPER.items():
        monkeypatch.setenv(key, value)


def _started(stack, name: str) -> tuple[str, str]:
    info = stack.engine.inspect_container(name)
    return info["Id"], info["State"]["StartedAt"]


def test_list_restore_and_delete_a_real_volumes_snapshots(stack):
    stack.write(SPEC)
    assert stack.apply().code == 0
    db, web, volume = f"{stack.name}-db-1", f"{stack.name}-web-1", f"{stack.name}_data"
    stack.exec(db, "sh", "-c", "echo 1 > /data/schema && echo row > /data/rows")
    snaps = open_snapshots(Reconciler(), stack.name)
    driver = snaps.drivers.get(Kind.VOLUME, "local")
    stack.engine.stop(db, timeout=1)  # the core's precondition: nobody writes the volume while it is copied
    taken = driver.snapshot(volume)
    stack.engine.start(db)
    snaps.book.snapshot_taken(volume, "local", taken, container=db, revision=None, from_revision=None)
    stack.exec(db, "sh", "-c", "echo 2 > /data/schema && head -c 20000 /dev/zero > /data/big")
    loose = driver.snapshot(volume)  # one the record does not know

    listed = stack.cli("snapshots", "list", "--output", "json")
    assert listed.code == 0, listed.err
    assert [(s["volume"], s["id"], s["state"]) for s in listed.json()] == \
        [(volume, taken.id, "taken"), (volume, loose.id, "unrecorded")]
    text = stack.cli("snapshots", "list", stack.name, "data", spec=False)
    assert text.code == 0 and text.out.split()[:7] == ["VOLUME", "SNAPSHOT", "TAKEN", "SIZE", "CONTENT", "FOR",
                                                       "STATE"], text.out
    assert f"{db} " in text.out and "ago)" in text.out

    refused = stack.cli("snapshots", "restore", stack.name, "data", taken.id, spec=False)  # stdin is no terminal
    assert refused.code == 1 and "--yes" in refused.err
    assert stack.exec(db, "cat", "/data/schema").strip() == "2"

    before_db, before_web = _started(stack, db), _started(stack, web)  # StartedAt: to the nanosecond
    restored = stack.cli("snapshots", "restore", stack.name, "data", taken.id, "--yes", spec=False)
    assert restored.code == 0, restored.err
    assert f"data restored: {volume} from snapshot {taken.id}" in restored.out and "discarded" in restored.out
    assert f"volume {volume} restored from snapshot {taken.id} in " in restored.out
    assert f"{db} stopped for it and started again" in restored.out and web not in restored.out
    assert stack.exec(db, "cat", "/data/schema").strip() == "1"
    assert stack.exec(db, "ls", "/data").split() == ["rows", "schema"]
    after_db = _started(stack, db)
    assert after_db[0] == before_db[0] and after_db[1] != before_db[1]  # the same container, started again
    assert _started(stack, web) == before_web  # not mounting it: untouched, same uptime

    # A volume the stack does not own, and an id the volume does not have, are refused: tests/unit (the memory engine).
    deleted = stack.cli("snapshots", "delete", stack.name, "data", taken.id, loose.id, spec=False)
    assert deleted.code == 0, deleted.err
    assert stack.cli("snapshots", "list", "--output", "json").json() == []
    assert driver.list_snapshots(volume) == []


RELEASE = """name: {name}
volumes: {{data: {{}}}}
containers:
  db:
    image: {image}
    command: ["sh", "-c", "{script} && exec sleep 3600"]
    init: true
    stop_grace_period: 1s
    env: {{VERSION: "{version}"}}
    volumes: ["data:/data"]
    update: {{order: stop-first, snapshot: [data]}}
  web:
    image: {image}
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
"""
V1_SCRIPT = "[ -f /data/schema ] || echo 1 > /data/schema; echo v1-row >> /data/rows"
V2_SCRIPT = "echo 2 > /data/schema"  # the migration v2 runs on start


def test_a_daemon_rolls_back_to_v1s_containers_on_v1s_data(stack, tmp_path):
    repo = Repo(tmp_path / "git")
    spec = lambda version, script: {"app/stack.yaml": RELEASE.format(  # noqa: E731
        name=stack.name, image=BASE_IMAGE, script=script, version=version)}
    v1 = repo.commit(spec("1", V1_SCRIPT))
    state = tmp_path / "state"
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({"state_dir": str(state), "resync": 300, "sources": [
        {"name": "repo", "git": {"url": repo.url, "ref": "main", "interval": 0.5}, "paths": ["app"]}]}))
    daemon = RunningDaemon(config)
    db = f"{stack.name}-db-1"
    try:
        daemon.wait_for(lambda l: l.get("revision") == v1 and l.get("ok"))
        assert stack.exec(db, "cat", "/data/schema").strip() == "1"
        v2 = repo.commit(spec("2", V2_SCRIPT))
        daemon.wait_for(lambda l: l.get("revision") == v2 and l.get("ok"))
        assert stack.exec(db, "cat", "/data/schema").strip() == "2"  # migrated, and v2 is fine: no restore

        where = ["--state-dir", str(state)]
        none = stack.cli("rollback", stack.name, "--to", v2, "--with-data", *where, spec=False)
        assert none.code == 1 and f"no snapshot was taken when {stack.name} left {v2[:12]}" in none.err
        listed = stack.cli("snapshots", "list", stack.name, "--output", "json", *where, spec=False)
        assert [(s["from_revision"], s["revision"]) for s in listed.json()] == [(v1, v2)], listed.out

        mark = daemon.mark()
        held = stack.cli("rollback", stack.name, "--to", v1[:12], "--with-data", *where, spec=False)
        assert held.code == 0 and "with its data" in held.out, held.err
        daemon.wait_for(lambda l: l.get("revision") == v1 and l.get("held") and l.get("ok"), after=mark)
        assert stack.exec(db, "cat", "/data/schema").strip() == "1"  # v1's data, under v1's container
        env = stack.engine.inspect_container(db)["Config"]["Env"]
        assert "VERSION=1" in env
        assert any(f"data restored: {stack.name}_data from snapshot {listed.json()[0]['id']}" in line
                   for line in daemon.text)
        after = stack.cli("snapshots", "list", stack.name, "--output", "json", *where, spec=False).json()
        states = {s["id"]: s["state"] for s in after}  # and the v2 → v1 release took one of its own
        assert states.pop(listed.json()[0]["id"]) == "restored" and set(states.values()) <= {"taken"}
    finally:
        assert daemon.stop() == 0
    assert os.path.isdir(state / "snapshots")
