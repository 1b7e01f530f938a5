"""``rollback --with-data`` without an engine: the hold the record keeps, the daemon's API, and the restore the
held revision's next pass makes first (on the in-memory engine)."""
from __future__ import annotations

import dataclasses
import json

import pytest

from reconciler.cli import main
from reconciler.daemon import Daemon, load_config
from reconciler.daemon.auth import load_tokens
from reconciler.daemon.config import ApiConfig
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.page import detail
from reconciler.daemon.auth import Access, Principal
from reconciler.daemon.rollbackdata import restore_held_data
from reconciler.daemon.server import make_app
from reconciler.errors import SpecError
from reconciler.loop import Trigger
from reconciler.model import Kind
from reconciler.state import StateStore, Sync, SyncResult
from reconciler.testing import make_reconciler
from reconciler.testing.asgi import asgi_request

WRITE = "w" * 24
OLDER, NEWER = "1a2b3c4d5e6f" + "0" * 28, "9f8e7d6c5b4a" + "1" * 28


def _synced(store: StateStore, stack: str = "demo") -> None:
    for revision in (OLDER, NEWER):
        store.add_sync(Sync("engine", stack, revision, "no changes", SyncResult.CONVERGED, 0.1))


def test_a_hold_with_data_needs_a_snapshot_taken_when_the_stack_left_that_revision(tmp_path, memory_engine):
    from reconciler.model import Snapshot

    store = StateStore.open(tmp_path)
    _synced(store)
    with pytest.raises(SpecError, match=f"no snapshot was taken when demo left {OLDER[:12]}"):
        store.hold_at("demo", OLDER[:12], with_data=True)
    assert store.holds() == {}
    snapshot = Snapshot("20261207T184500Z-000001", "demo_db", 1.0, 1, 1)
    store.stack("engine", "demo").snapshot_taken("demo_db", "local", snapshot, container="demo-db-1",
                                                  revision=NEWER, from_revision=OLDER)
    assert store.hold_at("demo", OLDER[:12], with_data=True) == NEWER
    assert store.holds()["demo"] == (OLDER, NEWER) and store.hold_data("demo") == "pending"
    store.data_restored("demo", OLDER)
    assert store.hold_data("demo") == "restored"
    store.hold_at("demo", OLDER)  # a rollback without data: the hold forgets the data
    assert store.hold_data("demo") == "" and store.hold_data("other") == ""


def test_the_cli_refuses_a_rollback_with_data_without_a_snapshot(tmp_path, capsys):
    store = StateStore.open(tmp_path)
    _synced(store)
    store.close()
    assert main(["rollback", "demo", "--to", OLDER[:7], "--with-data", "--state-dir", str(tmp_path)]) == 1
    assert f"no snapshot was taken when demo left {OLDER[:12]}" in capsys.readouterr().err
    assert main(["rollback", "demo", "--to", OLDER[:7], "--state-dir", str(tmp_path)]) == 0
    assert "with its data" not in capsys.readouterr().out


SPEC = """name: demo
volumes: {db: {}}
containers:
  db: {image: "busybox:1", volumes: ["db:/data"]}
  web: {image: "busybox:1"}
"""


@pytest.fixture
def daemon(tmp_path, memory_engine):
    """A daemon whose stack ``demo`` (volume ``demo_db`` mounted by ``db`` only) has loaded and synced OLDER then
    NEWER, with a snapshot of the volume taken as it left OLDER (its content then: schema 1)."""
    (tmp_path / "stacks" / "app").mkdir(parents=True)
    (tmp_path / "stacks" / "app" / "stack.yaml").write_text(SPEC)
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "resync": 300,
                                  "sources": [{"name": "here", "dir": str(tmp_path / "stacks"), "paths": ["app"]}]}))
    daemon = Daemon(load_config(str(config)), reconciler=make_reconciler(memory_engine))
    (worker,) = daemon.workers
    assert worker.loop.run_pass(Trigger.START).ok
    _synced(daemon.reconciler.state)
    reconciler = daemon.reconciler
    drivers = reconciler.drivers("demo")
    book = reconciler.book("demo", reconciler.engine_identity(drivers))
    memory_engine.volume_content["demo_db"] = {"schema": b"1"}
    taken = drivers.get(Kind.VOLUME, "local").snapshot("demo_db")
    book.snapshot_taken("demo_db", "local", taken, container="demo-db-1", revision=NEWER, from_revision=OLDER)
    memory_engine.volume_content["demo_db"] = {"schema": b"2"}
    return daemon, worker, taken


def _call(app, method: str, path: str, body: bytes = b"") -> tuple[int, object]:
    status, _, answer = asgi_request(app, method, path, body=body, headers=[("Authorization", f"Bearer {WRITE}")])
    return status, json.loads(answer)


@pytest.fixture
def app(tmp_path, daemon):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ci write {WRITE}\n")
    tokens.chmod(0o600)
    api = ApiConfig(tokens_file=str(tokens), max_body=256)
    return make_app(daemon[0], api, load_tokens(str(tokens)), {}, Metrics())


def test_the_api_lists_the_snapshots_and_takes_a_rollback_with_data(app, daemon):
    _, _, taken = daemon
    status, listed = _call(app, "GET", "/api/stacks/demo/snapshots")
    assert status == 200 and [(s["volume"], s["id"], s["from_revision"]) for s in listed] == \
        [("demo_db", taken.id, OLDER)]
    status, answer = _call(app, "POST", "/api/stacks/demo/rollback",
                           json.dumps({"to": NEWER[:12], "with_data": True}).encode())
    assert status == 400 and f"no snapshot was taken when demo left {NEWER[:12]}" in answer["error"]
    status, answer = _call(app, "POST", "/api/stacks/demo/rollback", json.dumps({"to": OLDER, "with_data": 1}).encode())
    assert status == 400 and "with_data" in answer["error"]
    status, answer = _call(app, "POST", "/api/stacks/demo/rollback",
                           json.dumps({"to": OLDER[:12], "with_data": True}).encode())
    assert status == 200 and answer["with_data"] is True and "with its data" in answer["message"]
    assert daemon[0].reconciler.state.hold_data("demo") == "pending"


def test_the_held_revisions_pass_restores_its_data_first_once_and_leaves_the_users_stopped(daemon, memory_engine):
    d, worker, taken = daemon
    state = d.reconciler.state
    state.hold_at("demo", OLDER, with_data=True)
    desired = dataclasses.replace(worker.loop.desired, revision=OLDER)
    restore_held_data(d.reconciler, False, desired)  # the source's head, not the held revision: nothing
    assert memory_engine.volume_content["demo_db"] == {"schema": b"2"}
    memory_engine.calls.clear()
    restore_held_data(d.reconciler, True, desired)
    assert memory_engine.volume_content["demo_db"] == {"schema": b"1"}
    assert memory_engine.containers["demo-db-1"].state == "exited"  # the apply that follows starts OLDER's
    assert memory_engine.containers["demo-web-1"].state == "running"
    assert state.hold_data("demo") == "restored"
    memory_engine.volume_content["demo_db"] = {"schema": b"1", "more": b"x"}
    restore_held_data(d.reconciler, True, desired)  # once: written since stays
    assert memory_engine.volume_content["demo_db"] == {"schema": b"1", "more": b"x"}


def test_the_status_page_shows_each_volumes_snapshots(daemon):
    d, worker, taken = daemon
    from reconciler.daemon.view import DaemonView

    data = DaemonView(d).detail(worker)
    assert data["snapshots"]["demo_db"]["count"] == 1 and data["snapshots"]["demo_db"]["newest"] == taken.id
    html = detail(data, [], Principal("ci", Access.WRITE), "csrf")
    assert '<table id="snapshots">' in html and taken.id in html and "<script" not in html
