"""The API's rollback and release routes without a server: the ASGI app called directly, on the in-memory engine."""
from __future__ import annotations

import asyncio
import json

import pytest

from reconciler.daemon import Daemon, load_config
from reconciler.daemon.auth import load_tokens
from reconciler.daemon.config import ApiConfig
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.server import make_app
from reconciler.loop import Trigger
from reconciler.state import Sync, SyncResult
from reconciler.testing import make_reconciler

WRITE, READ = "w" * 24, "r" * 24
OLDER, NEWER = "1a2b3c4d5e6f" + "0" * 28, "9f8e7d6c5b4a" + "1" * 28


@pytest.fixture
def app(tmp_path, memory_engine):
    """The API of a daemon whose stack ``demo`` has loaded and synced OLDER then NEWER, and that daemon."""
    (tmp_path / "stacks" / "app").mkdir(parents=True)
    (tmp_path / "stacks" / "app" / "stack.yaml").write_text('name: demo\ncontainers:\n  web: {image: "busybox:1"}\n')
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "resync": 300,
                                  "sources": [{"name": "here", "dir": str(tmp_path / "stacks"), "paths": ["app"]}]}))
    daemon = Daemon(load_config(str(config)), reconciler=make_reconciler(memory_engine))
    (worker,) = daemon.workers
    assert worker.loop.run_pass(Trigger.START).ok
    for revision in (OLDER, NEWER):
        daemon.reconciler.state.add_sync(Sync("engine", "demo", revision, "no changes", SyncResult.CONVERGED, 0.1))
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ci write {WRITE}\nviewer read {READ}\n")
    tokens.chmod(0o600)
    api = ApiConfig(tokens_file=str(tokens), max_body=64)
    return make_app(daemon, api, load_tokens(str(tokens)), {}, Metrics()), daemon


def _post(app, path: str, *, token: str | None = WRITE, body: bytes = b"") -> tuple[int, dict]:
    """(status, JSON answer) of one POST to the ASGI app."""
    headers = [(b"content-length", str(len(body)).encode())]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("test", 80)}
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))


def _to(revision) -> bytes:
    return json.dumps({"to": revision}).encode()


def test_rollback_holds_at_the_digits_history_shows_and_release_lets_go(app):
    app, daemon = app
    status, answer = _post(app, "/api/stacks/demo/rollback", body=_to(OLDER[:12]))
    assert status == 200, answer
    assert answer == {"stack": "demo", "held_at": OLDER, "source_revision": NEWER,
                      "message": f"stack demo held at {OLDER[:12]} until its source moves past {NEWER[:12]} "
                                 "or 'reconcile release demo'"}
    assert daemon.reconciler.state.holds() == {"demo": (OLDER, NEWER)}
    status, answer = _post(app, "/api/stacks/demo/release")
    assert (status, answer["message"]) == (200, "stack demo released: it follows its source again")
    assert daemon.reconciler.state.holds() == {}


@pytest.mark.parametrize("verb", ["rollback", "release"])
def test_rollback_and_release_need_a_write_token(app, verb):
    app, daemon = app
    assert _post(app, f"/api/stacks/demo/{verb}", token=None, body=_to(OLDER))[0] == 401
    assert _post(app, f"/api/stacks/demo/{verb}", token="x" * 24, body=_to(OLDER))[0] == 401
    status, answer = _post(app, f"/api/stacks/demo/{verb}", token=READ, body=_to(OLDER))
    assert status == 403 and "read-only" in answer["error"]
    status, answer = _post(app, f"/api/stacks/nope/{verb}", body=_to(OLDER))
    assert (status, answer) == (404, {"error": "no stack is named 'nope'"})
    daemon.reconciler.state.hold("demo", OLDER, source_revision=NEWER)
    _post(app, f"/api/stacks/demo/{verb}", token=READ, body=_to(NEWER))  # refused before anything is written
    assert daemon.reconciler.state.holds() == {"demo": (OLDER, NEWER)}


@pytest.mark.parametrize("body, message", [
    (b'{"to": "abc"}', "--to: 'abc' is not a commit id (7 to 40 hex digits)"),
    (b'{"to": "abcdef0"}', "--to: no revision of stack 'demo' synced in this state directory starts with abcdef0"),
    (b'{"to": "abc"', 'the body must be a JSON object with "to"'),
    (b'["to"]', 'the body must be a JSON object with "to"'),
    (b'{"to": null}', 'the body must be a JSON object with "to"'),
    (b"", 'the body must be a JSON object with "to"'),
])
def test_a_bad_revision_or_body_is_a_400_saying_why(app, body, message):
    app, daemon = app
    status, answer = _post(app, "/api/stacks/demo/rollback", body=body)
    assert status == 400 and answer["error"].startswith(message), answer
    assert daemon.reconciler.state.holds() == {}


def test_a_body_over_max_body_is_a_413(app):
    app, _ = app
    status, answer = _post(app, "/api/stacks/demo/rollback", body=_to(OLDER + " " * 64))
    assert status == 413 and "larger than 64 bytes" in answer["error"]
