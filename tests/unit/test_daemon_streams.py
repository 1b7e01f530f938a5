"""The API's /logs and /events on the in-memory engine: NDJSON lines, errors as statuses, followers bounded."""
from __future__ import annotations

import asyncio
import json

import pytest
from starlette.requests import Request

from reconciler.daemon import Daemon, load_config
from reconciler.daemon.auth import load_tokens
from reconciler.daemon.config import ApiConfig
from reconciler.daemon.doors import Doors
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.server import make_app
from reconciler.daemon.streams import Streams
from reconciler.loop import Trigger
from reconciler.state import Sync, SyncResult
from reconciler.testing import make_reconciler

READ = "r" * 24


@pytest.fixture
def served(tmp_path, memory_engine):
    """A daemon whose stack ``demo`` has run one pass and whose container wrote two lines; its API and tokens."""
    (tmp_path / "stacks" / "app").mkdir(parents=True)
    (tmp_path / "stacks" / "app" / "stack.yaml").write_text('name: demo\ncontainers:\n  web: {image: "busybox:1"}\n')
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "resync": 300,
                                  "sources": [{"name": "here", "dir": str(tmp_path / "stacks"), "paths": ["app"]}]}))
    daemon = Daemon(load_config(str(config)), reconciler=make_reconciler(memory_engine))
    (worker,) = daemon.workers
    assert worker.loop.run_pass(Trigger.START).ok
    (name,) = [n for n in memory_engine.containers]
    memory_engine.write(name, "hello", at=100.0)
    memory_engine.write(name, "oops", stream="stderr", at=200.0)
    daemon.reconciler.state.add_sync(Sync("engine", "demo", "3f2a1c9" + "0" * 33, "create 1", SyncResult.CONVERGED,
                                          0.5, started_at="1970-01-01T00:02:30Z"))
    tokens = tmp_path / "tokens"
    tokens.write_text(f"viewer read {READ}\n")
    tokens.chmod(0o600)
    api = ApiConfig(tokens_file=str(tokens), max_body=64)
    return make_app(daemon, api, load_tokens(str(tokens)), {}, Metrics()), daemon, api, name


def _get(app, path: str, query: str = "") -> tuple[int, str, bytes]:
    """(status, content type, body) of one GET to the ASGI app."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(b"authorization", f"Bearer {READ}".encode())], "client": ("127.0.0.1", 1),
             "server": ("test", 80)}
    sent: list[dict] = []

    async def receive() -> dict:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    kind = dict(start["headers"]).get(b"content-type", b"").decode()
    return start["status"], kind, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_logs_answers_one_json_object_per_line(served) -> None:
    app, _, _, name = served
    status, kind, body = _get(app, "/api/stacks/demo/logs")
    assert (status, kind) == (200, "application/x-ndjson")
    assert [json.loads(line) for line in body.splitlines()] == [
        {"container": name, "time": 100.0, "stream": "stdout", "line": "hello"},
        {"container": name, "time": 200.0, "stream": "stderr", "line": "oops"}]
    assert [json.loads(l)["line"] for l in _get(app, "/api/stacks/demo/logs", "tail=1")[2].splitlines()] == ["oops"]
    assert [json.loads(l)["line"] for l in _get(app, "/api/stacks/demo/logs", "since=150")[2].splitlines()] == ["oops"]


def test_logs_refuses_what_it_cannot_answer(served) -> None:
    app, _, _, _ = served
    assert _get(app, "/api/stacks/demo/logs", "container=nope")[0] == 404
    assert _get(app, "/api/stacks/demo/logs", "tail=many")[0] == 400
    assert _get(app, "/api/stacks/nope/logs")[0] == 404


def test_events_merge_passes_in_time_and_a_runtime_without_events_shows_its_passes(served) -> None:
    app, _, _, _ = served
    status, kind, body = _get(app, "/api/stacks/demo/events")
    assert (status, kind) == (200, "application/x-ndjson")
    events = [json.loads(line) for line in body.splitlines()]
    assert {"time": 150.5, "source": "reconcile", "kind": "apply", "name": "demo", "action": "converged",
            "detail": "create 1 (rev 3f2a1c9)"} in events
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)


def test_followers_are_bounded_and_a_slot_comes_back_when_its_stream_goes(served) -> None:
    _, daemon, api, _ = served
    streams = Streams(Doors(daemon, api, load_tokens(api.tokens_file), {}, Metrics()), max_followers=1)
    (worker,) = daemon.workers

    def follow():
        scope = {"type": "http", "method": "GET", "path": "/", "query_string": b"follow=1", "headers": []}
        return streams.logs(Request(scope), worker)

    first = follow()
    assert first.status_code == 200
    assert follow().status_code == 503
    first.body_iterator.release()
    assert follow().status_code == 200


def test_the_openapi_document_lists_both_routes(served) -> None:
    app, _, _, _ = served
    paths = json.loads(_get(app, "/openapi.json")[2])["paths"]
    assert {"/api/stacks/{name}/logs", "/api/stacks/{name}/events"} <= set(paths)
