"""Previews where people look: ``reconcile previews`` (the record here, or a daemon's API), ``GET /api/previews``,
the ``preview`` of a preview stack's entry in ``/api/stacks``, and the status page's rows and section.

Every view reads the daemon's record (``StateStore.previews``): the tests put previews there with
``save_preview``, as the daemon does, on the in-memory engine.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from urllib.parse import quote

import pytest
from jsonschema import Draft202012Validator

from reconciler.cli import main
from reconciler.daemon import Daemon, load_config
from reconciler.daemon.auth import load_tokens
from reconciler.daemon.config import ApiConfig
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.server import ApiServer, make_app
from reconciler.loop import Trigger
from reconciler.model import Preview
from reconciler.render_previews import preview_data, previews_text, servers_previews_text, state_text
from reconciler.state import StateStore
from reconciler.testing import make_reconciler
from reconciler.testing.asgi import asgi_request

NOW = 1_800_000_000.0
READ = "r" * 24
OPENAPI = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "api.openapi.json").read_text())
UP = Preview("repo", "feature/login", "app", stack="demo", base="shop", revision="a1b2c3d4e5f6" + "0" * 28,
             created=NOW - 7200, pushed=NOW - 300, state="up", ports={"web-1:80/tcp": 30001},
             urls=("http://203.0.113.7:30001",))
WAITING = Preview("repo", "feature/slow", "app", stack="", base="shop", created=NOW - 40, pushed=NOW - 40,
                  state="waiting", reason="the source has max 1 previews (feature/login)")
OTHER = Preview("tools", "fix/<b>", "svc", stack="svc-fix-b", base="svc", revision="f" * 40, created=NOW - 90000,
                pushed=NOW - 90000, state="failed", urls=("javascript:alert(1)",),
                reason="image pull failed: 404\nsecond line")


# -- the table and the JSON -------------------------------------------------------------------------------------

def test_the_table_says_branch_revision_ages_state_with_its_reason_and_urls():
    text = previews_text([preview_data(p) for p in (UP, WAITING, OTHER)], now=NOW)
    lines = text.splitlines()
    assert lines[0].split() == ["SOURCE", "BRANCH", "STACK", "REVISION", "CREATED", "PUSHED", "STATE", "URLS"]
    assert lines[1].split() == ["repo", "feature/login", "demo", "a1b2c3d4e5f6", "2", "h", "ago", "5", "min", "ago",
                                "up", "http://203.0.113.7:30001"]
    assert lines[2].split()[:4] == ["repo", "feature/slow", "-", "-"]  # no stack name, no revision yet
    assert "waiting (the source has max 1 previews (feature/login))" in lines[2]
    assert lines[2].rstrip().endswith("-") and "40 s ago" in lines[2]
    assert "failed (image pull failed: 404)" in lines[3] and "second line" not in text and "25 h ago" in lines[3]


def test_an_empty_record_says_no_previews():
    assert previews_text([]) == "no previews"
    assert servers_previews_text([]) == "no previews"


@pytest.mark.parametrize("state, reason, shown", [
    ("up", "", "up"), ("starting", "", "starting"), ("up", "stale text", "up"),
    ("waiting", "max 10", "waiting (max 10)"),
    ("expired", "idle past its ttl (72h)", "expired (idle past its ttl (72h))"),
    ("failed", "", "failed")])
def test_a_reason_is_shown_for_failed_waiting_and_expired_only(state, reason, shown):
    assert state_text({"state": state, "reason": reason}) == shown


def test_the_json_of_a_preview_is_the_records_fields_without_its_host_ports():
    data = preview_data(UP)
    assert data == {"source": "repo", "branch": "feature/login", "path": "app", "stack": "demo", "base": "shop",
                    "revision": UP.revision, "created": NOW - 7200, "pushed": NOW - 300, "state": "up",
                    "urls": ["http://203.0.113.7:30001"], "reason": ""}
    _conforms({"$ref": "#/components/schemas/Preview"}, data)


def test_several_servers_make_one_table_led_by_the_host_and_one_that_did_not_answer_says_so():
    text = servers_previews_text([("http://a.example:8470", [preview_data(UP)]),
                                  ("https://b.example:8470", "https://b.example:8470: cannot reach the daemon")],
                                 now=NOW)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["HOST", "SOURCE"]
    assert lines[1].split()[:3] == ["a.example:8470", "repo", "feature/login"]
    assert lines[2].startswith("b.example:8470") and "unreachable" in lines[2] and "cannot reach" in lines[2]


# -- reconcile previews, from the record -------------------------------------------------------------------------

@pytest.fixture
def record(tmp_path) -> Path:
    with StateStore.open(tmp_path / "state") as store:
        for preview in (UP, WAITING, OTHER):
            store.save_preview(preview)
    return tmp_path / "state"


def test_the_command_lists_the_records_previews_and_filters_by_source(record, capsys):
    assert main(["previews", "--state-dir", str(record)]) == 0
    text = capsys.readouterr().out
    assert text.count("\n") == 4 and "feature/login" in text and "fix/<b>" in text
    assert main(["previews", "--state-dir", str(record), "--source", "tools", "--output", "json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert [(p["source"], p["branch"]) for p in answer["previews"]] == [("tools", "fix/<b>")]
    assert main(["previews", "--state-dir", str(record), "--source", "nowhere"]) == 0
    assert capsys.readouterr().out == "no previews\n"


def test_an_empty_record_exits_0_saying_no_previews(tmp_path, capsys):
    assert main(["previews", "--state-dir", str(tmp_path / "state")]) == 0
    assert capsys.readouterr().out == "no previews\n"
    assert main(["previews", "--state-dir", str(tmp_path / "state"), "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"previews": []}


# -- the daemon's API --------------------------------------------------------------------------------------------

@pytest.fixture
def served(tmp_path, memory_engine):
    """The app of a daemon running two stacks, ``demo`` (a preview, in the record) and ``other`` (none)."""
    for path, name in (("app", "demo"), ("more", "other")):
        (tmp_path / "stacks" / path).mkdir(parents=True)
        (tmp_path / "stacks" / path / "stack.yaml").write_text(
            f'name: {name}\ncontainers:\n  web: {{image: "busybox:1"}}\n')
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "resync": 300,
                                  "sources": [{"name": "here", "dir": str(tmp_path / "stacks"),
                                               "paths": ["app", "more"]}]}))
    daemon = Daemon(load_config(str(config)), reconciler=make_reconciler(memory_engine))
    for worker in daemon.workers:
        assert worker.loop.run_pass(Trigger.START).ok
    for preview in (UP, WAITING, OTHER):
        daemon.reconciler.state.save_preview(preview)
    tokens = tmp_path / "tokens"
    tokens.write_text(f"viewer read {READ}\n")
    tokens.chmod(0o600)
    api = ApiConfig(tokens_file=str(tokens), host="127.0.0.1", port=0)
    return make_app(daemon, api, load_tokens(str(tokens)), {}, Metrics()), daemon, api


def _get(app, path: str, token: str | None = READ) -> tuple[int, object]:
    status, _, body = asgi_request(app, "GET", path, headers=[("authorization", f"Bearer {token}")] if token else [])
    return status, json.loads(body)


def _conforms(schema: dict, data) -> None:
    Draft202012Validator({"components": OPENAPI["components"], **schema}).validate(data)


def _answer_schema(path: str) -> dict:
    return OPENAPI["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]


def test_api_previews_answers_the_record_and_filters_by_source(served):
    app, _, _ = served
    status, answer = _get(app, "/api/previews")
    assert status == 200
    assert answer == {"previews": [preview_data(p) for p in (UP, WAITING, OTHER)]}
    _conforms(_answer_schema("/api/previews"), answer)
    assert _get(app, "/api/previews?source=tools")[1] == {"previews": [preview_data(OTHER)]}
    assert _get(app, "/api/previews?source=nowhere")[1] == {"previews": []}


def test_api_previews_needs_a_token(served):
    app, _, _ = served
    assert _get(app, "/api/previews", token=None)[0] == 401
    assert _get(app, "/api/previews", token="x" * 24)[0] == 401


def test_a_preview_stacks_entry_carries_its_preview_from_the_copy_of_the_record(served, monkeypatch):
    app, daemon, _ = served
    reads = []
    store = daemon.reconciler.state
    real = store.previews
    monkeypatch.setattr(store, "previews", lambda source=None: reads.append(source) or real(source))
    status, stacks = _get(app, "/api/stacks")
    assert status == 200 and reads == [None]  # the copy nobody refreshed yet is read, once for every stack
    _conforms(_answer_schema("/api/stacks"), stacks)
    entries = {s["name"]: s for s in stacks}
    assert entries["demo"]["preview"] == {"source": "repo", "branch": "feature/login",
                                          "urls": ["http://203.0.113.7:30001"], "state": "up"}
    assert "preview" not in entries["other"]
    status, detail = _get(app, "/api/stacks/demo")
    assert status == 200 and detail["preview"]["branch"] == "feature/login" and reads == [None]  # the copy's
    _conforms(_answer_schema("/api/stacks/{name}"), detail)
    assert "preview" not in _get(app, "/api/stacks/other")[1]
    # The daemon renews the copy each second, as it reads the record (``recordwatch``): a listing reads nothing.
    daemon.on_record({}, {}, [dataclasses.replace(UP, state="failed", urls=())])
    assert _get(app, "/api/stacks")[1][0]["preview"] == {"source": "repo", "branch": "feature/login", "urls": [],
                                                          "state": "failed"}
    assert reads == [None]


def test_the_record_watcher_gives_the_copy_the_records_previews(served):
    import threading

    from reconciler.daemon.recordwatch import watch_record

    app, daemon, _ = served
    told = []
    daemon.on_record = lambda suspended, holds, previews=None, *, read_at: told.append(previews)
    stop = threading.Event()
    stop.set()  # one round, then it returns
    watch_record(daemon, stop)
    assert told == [[UP, WAITING, OTHER]]


def test_previews_server_asks_a_running_daemon(served, capsys, monkeypatch):
    app, _, api = served
    server = ApiServer(app, api)
    url = server.start()
    try:
        monkeypatch.setenv("RECONCILER_TOKEN", READ)
        assert main(["previews", "--server", url, "--source", "repo"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].split()[:3] == ["HOST", "SOURCE", "BRANCH"] and len(lines) == 3
        assert "feature/login" in lines[1] and "http://203.0.113.7:30001" in lines[1] and "waiting (" in lines[2]
        assert main(["previews", "--server", url, "--server", "http://127.0.0.1:9", "--output", "json"]) == 1
        answers = json.loads(capsys.readouterr().out)
        assert [len(a["previews"] or ()) for a in answers] == [3, 0] and answers[1]["error"]
        monkeypatch.setenv("RECONCILER_TOKEN", "n" * 24)
        assert main(["previews", "--server", url]) == 1
        captured = capsys.readouterr()
        assert "401" in captured.out and "n" * 24 not in captured.out + captured.err
    finally:
        server.stop()


# -- the status page (no JavaScript) -----------------------------------------------------------------------------

def _signed_in(app) -> str:
    status, headers, _ = asgi_request(app, "POST", "/login", body=f"token={READ}".encode(),
                                      headers=[("content-type", "application/x-www-form-urlencoded")])
    assert status == 303
    return headers["set-cookie"].split(";")[0]


def test_the_overview_shows_a_preview_rows_branch_and_links_and_a_previews_section(served):
    app, _, _ = served
    status, _, html = asgi_request(app, "GET", "/", headers=[("cookie", _signed_in(app))])
    html = html.decode()
    assert status == 200
    row = html[html.index('<tr data-stack="demo">'):]
    row = row[:row.index("</tr>")]
    assert 'data-branch="feature/login"' in row
    assert '<a class="url" href="http://203.0.113.7:30001" rel="noreferrer">http://203.0.113.7:30001</a>' in row
    assert 'class="preview"' not in html[html.index('<tr data-stack="other">'):].split("</tr>")[0]
    section = html[html.index("<h2>Previews</h2>"):]
    assert section.count("<tr data-preview=") == 3
    assert '<a href="/stacks/demo">demo</a>' in section and 'data-state="waiting"' in section
    assert "fix/&lt;b&gt;" in section and "fix/<b>" not in html  # escaped, everywhere
    assert 'href="javascript:' not in html and "javascript:alert(1)" in section  # shown, never a link
    assert f'/stacks/{quote("svc-fix-b", safe="")}' in section


def test_a_preview_stacks_page_says_its_branch_and_links_its_urls(served):
    app, _, _ = served
    _, _, html = asgi_request(app, "GET", "/stacks/demo", headers=[("cookie", _signed_in(app))])
    html = html.decode()
    assert '<p id="preview">Preview of branch <span class="branch">feature/login</span>' in html
    assert 'href="http://203.0.113.7:30001"' in html
    _, _, other = asgi_request(app, "GET", "/stacks/other", headers=[("cookie", _signed_in(app))])
    assert b'id="preview"' not in other


def test_a_record_that_cannot_be_read_leaves_the_stacks_listed_without_their_previews(served, monkeypatch, caplog):
    from reconciler.errors import StateError

    app, daemon, _ = served

    def broken(source=None):
        raise StateError("cannot read the state database: disk I/O error")

    monkeypatch.setattr(daemon.reconciler.state, "previews", broken)
    status, stacks = _get(app, "/api/stacks")
    assert status == 200 and [s["name"] for s in stacks] == ["demo", "other"] and "preview" not in stacks[0]
    assert "stacks listed without their previews: cannot read the state database" in caplog.text
    status, _, html = asgi_request(app, "GET", "/", headers=[("cookie", _signed_in(app))])
    assert status == 200 and b'<tr data-stack="demo">' in html and b"<h2>Previews</h2>" not in html
    status, answer = _get(app, "/api/previews")
    assert status == 503 and answer == {"error": "cannot read the state database: disk I/O error"}
