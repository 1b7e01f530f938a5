"""The status page as the server renders it (no JavaScript): graph, object panel, "–" cells, "n s ago", history.

The ASGI app is called directly, on the in-memory engine; the SVG and time helpers are pure.
"""
from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

from reconciler.daemon import Daemon, load_config
from reconciler.daemon.auth import load_tokens
from reconciler.daemon.config import ApiConfig
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.panel import DASH, ago, cell, object_panel, when
from reconciler.daemon.server import make_app
from reconciler.daemon.stackgraph import COLOURS, edges, health_of, svg
from reconciler.loop import Trigger
from reconciler.state import Sync, SyncResult
from reconciler.testing import make_reconciler
from reconciler.testing.asgi import asgi_request

WRITE = "w" * 24
SPEC = """name: demo
images:
  web: {ref: "busybox:1"}
networks:
  back: {}
volumes:
  data: {}
containers:
  web:
    image: web
    networks: [back]
    volumes: ["data:/data"]
"""


def _row(kind: str, name: str, **extra) -> dict:
    return {"kind": kind, "name": name, "desired": True, "live": True, "external": False, "state": "running",
            "health": None, "drift": None, **extra}


# -- the SVG -------------------------------------------------------------------------------

def test_the_graph_has_a_node_per_object_in_its_column_and_an_edge_per_reference():
    rows = [_row("image", "busybox:1", state="present"), _row("container", "demo-web-1"),
            _row("network", "demo-back", state="present"), _row("volume", "demo-data", state="present")]
    links = [["container:demo-web-1", "image:busybox:1"], ["container:demo-web-1", "network:demo-back"],
             ["container:demo-web-1", "volume:demo-data"], ["container:demo-web-1", "network:gone"]]
    drawn = svg(rows, links, "/stacks/demo")
    assert drawn.startswith("<svg ") and drawn.endswith("</svg>") and "xmlns" not in drawn
    nodes = re.findall(r'<a class="node (\w+)" href="([^"]+)" data-object="([^"]+)"', drawn)
    assert [n[2] for n in nodes] == ["image:busybox:1", "container:demo-web-1", "network:demo-back",
                                     "volume:demo-data"]
    assert nodes[1][1] == "/stacks/demo?object=container:demo-web-1#panel"
    assert len(re.findall(r'<path class="edge"', drawn)) == 3  # the one to a node not drawn is left out
    x = {key: int(re.search(rf'data-object="{re.escape(key)}".*?<rect x="(\d+)"', drawn).group(1))
         for key in ("image:busybox:1", "container:demo-web-1", "network:demo-back", "volume:demo-data")}
    assert x["image:busybox:1"] < x["container:demo-web-1"] < x["network:demo-back"] == x["volume:demo-data"]
    assert 'xmlns="http://www.w3.org/2000/svg"' in svg(rows, links, "/stacks/demo", standalone=True)


def test_each_node_is_coloured_by_health_and_drift_and_the_legend_names_every_colour():
    rows = [_row("container", "ok"), _row("container", "drifted", drift="update: env"),
            _row("container", "sick", health="unhealthy"), _row("container", "dead", state="exited (1)"),
            _row("container", "gone", live=False, state="missing"),
            _row("network", "outside", external=True, state="external"),
            _row("container", "edited", filesystem={"drifted": True, "mode": "report"})]
    assert [health_of(r) for r in rows] == ["converged", "drifted", "unhealthy", "unhealthy", "missing",
                                            "external", "drifted"]
    drawn = svg(rows, [], "/stacks/demo")
    for row, health in zip(rows, map(health_of, rows)):
        fill = COLOURS[health][0]
        assert re.search(rf'data-object="{row["kind"]}:{row["name"]}" data-health="{health}">.*?fill="{fill}"',
                         drawn), health
    legend = drawn[drawn.index('class="legend"'):]
    assert all(f">{health}</text>" in legend for health in COLOURS)


def test_names_are_escaped_in_the_svg():
    drawn = svg([_row("container", 'a<b>&"c"')], [], "/stacks/x")
    assert "<b>" not in drawn and "a&lt;b&gt;&amp;&quot;c&quot;" in drawn
    long = svg([_row("container", "n" * 60)], [], "/stacks/x")
    assert "n" * 25 + "…</text>" in long and f"<title>container {'n' * 60}" in long


def test_edges_come_from_the_desired_states_references():
    spec = SimpleNamespace(image_ref="busybox:1", networks=(("demo-back", ()),),
                           mounts=(SimpleNamespace(type="volume", source="demo-data"),
                                   SimpleNamespace(type="bind", source="/srv")))
    assert edges(SimpleNamespace(containers={"demo-web-1": spec})) == [
        ["container:demo-web-1", "image:busybox:1"], ["container:demo-web-1", "network:demo-back"],
        ["container:demo-web-1", "volume:demo-data"]]
    assert edges(None) == []


# -- cells and times -----------------------------------------------------------------------

def test_n_seconds_ago_then_minutes_hours_days():
    now = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    assert [ago(at, now) for at in ("2027-01-15T08:00:00Z", "2027-01-15T07:59:18Z", "2027-01-15T07:55:00Z",
                                     "2027-01-15T05:00:00Z", "2027-01-10T08:00:00Z")] == \
        ["0 s ago", "42 s ago", "5 min ago", "3 h ago", "5 d ago"]
    assert ago("not a time", now) == "" and ago(None, now) == ""
    shown = when("2027-01-15T07:59:18Z", now)
    assert '<time datetime="2027-01-15T07:59:18Z">' in shown and 'data-ago="2027-01-15T07:59:18Z">42 s ago' in shown


def test_empty_cells_say_a_dash():
    for nothing in (None, "", [], {}):
        assert DASH in cell(nothing)
    assert cell(0) == "0" and cell("<x>") == "&lt;x&gt;"
    assert DASH in when(None)


def test_the_panel_shows_what_there_is_and_a_dash_for_the_rest():
    bare = object_panel(_row("container", "demo-web-1"), "container:demo-web-1", "demo")
    assert 'id="object-diff"' in bare and 'id="object-health"' in bare and "filesystem: ignore" in bare
    assert 'data-src="/api/stacks/demo/logs?container=demo-web-1&amp;tail=200&amp;follow=1"' in bare
    full = object_panel(_row("container", "demo-web-1", diff=["env: + MODE=x", "mounts: - /srv:/data"],
                             health_output="ok\n", filesystem={
                                 "mode": "report", "added": 1, "changed": 0, "deleted": 0, "size_rw": 2048,
                                 "paths": [{"kind": "A", "path": "/etc/edited"}], "more": 3, "drifted": True,
                                 "checked_at": 1_800_000_000.0 - 42}),  # Unix time, as fsdrift gives it
                        "container:demo-web-1", "demo", now=1_800_000_000.0)
    assert '<span class="diff-add">env: + MODE=x</span>' in full.replace("\n", "")  # as given: prefixed lines
    assert "A /etc/edited\n… and 3 more" in full and 'data-drifted="1"' in full and "2.0 kB" in full and "42 s ago" in full
    assert '<pre id="object-health">ok</pre>' in full
    image = object_panel(_row("image", "busybox:1", layers={"size": 4_000_000, "shared_bytes": 0, "items": [
        {"id": "sha256:abc", "size": 4_000_000, "created_by": "ADD file:x in /", "reused": True}]}),
        "image:busybox:1", "demo")
    assert "4.0 MB" in image and "ADD file:x in /" in image and "(cached: the last build reused it)" in image and 'id="logs"' not in image


# -- the page, served ------------------------------------------------------------------------

@pytest.fixture
def served(tmp_path, memory_engine):
    (tmp_path / "stacks" / "app").mkdir(parents=True)
    (tmp_path / "stacks" / "app" / "stack.yaml").write_text(SPEC)
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "resync": 300,
                                  "sources": [{"name": "here", "dir": str(tmp_path / "stacks"), "paths": ["app"]}]}))
    daemon = Daemon(load_config(str(config)), reconciler=make_reconciler(memory_engine))
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ci write {WRITE}\n")
    tokens.chmod(0o600)
    app = make_app(daemon, ApiConfig(tokens_file=str(tokens), max_body=256), load_tokens(str(tokens)), {}, Metrics())
    return app, daemon, tmp_path


def _call(app, method: str, path: str, *, body: bytes = b"", cookie: str = "") -> tuple[int, dict, str]:
    headers = [("content-length", str(len(body))), ("content-type", "application/x-www-form-urlencoded")]
    status, answer, text = asgi_request(app, method, path, body=body,
                                        headers=headers + ([("cookie", cookie)] if cookie else []))
    return status, answer, text.decode()


def _signed_in(app) -> str:
    status, headers, _ = _call(app, "POST", "/login", body=f"token={WRITE}".encode())
    assert status == 303, headers
    return headers["set-cookie"].split(";")[0]


def _pass(daemon, why: Trigger):
    (worker,) = daemon.workers
    result = worker.loop.run_pass(why)
    daemon._passed(worker, result)
    return result


def test_the_stack_page_without_javascript_shows_graph_objects_and_history_with_triggers(served):
    app, daemon, _ = served
    assert _pass(daemon, Trigger.START).report.outcomes
    _pass(daemon, Trigger.RESYNC)  # the follow-up no-op
    cookie = _signed_in(app)
    status, headers, html = _call(app, "GET", "/stacks/demo", cookie=cookie)
    assert status == 200 and "script-src 'self'" in headers["content-security-policy"]
    assert '<svg id="graph"' in html
    for key in ("image:busybox:1", "container:demo-web-1", "network:demo_back", "volume:demo_data"):
        assert f'data-object="{key}" data-health="converged"' in html, key
    assert html.count('<path class="edge"') == 3
    history = html[html.index('<table id="history">'):]
    assert re.findall(r'<td class="trigger">([^<]*)</td>', history) == ["resync", "start"]
    assert 'data-ago="' in history and " s ago</span>" in history
    assert 'id="panel"' not in html
    assert [s.trigger for s in daemon.reconciler.state.syncs(stack="demo")] == ["resync", "start"]


def test_the_overviews_last_sync_is_the_pass_that_changed_something_not_the_no_op_after_it(served):
    app, daemon, _ = served
    _pass(daemon, Trigger.START)
    _pass(daemon, Trigger.ENGINE)
    _, _, api = _call(app, "GET", "/api/stacks?limit=1000", cookie=_signed_in(app))
    (stack,) = json.loads(api)
    assert stack["last_sync"]["trigger"] == "engine" and stack["last_change"]["trigger"] == "start"
    assert stack["last_change"]["changes"] == 4
    _, _, html = _call(app, "GET", "/", cookie=_signed_in(app))
    last = html[html.index('<td class="last-sync">'):]
    assert last.startswith('<td class="last-sync"><span class="trigger">start</span>')


def test_an_object_panel_without_javascript_and_its_refreshable_part(served):
    app, daemon, _ = served
    _pass(daemon, Trigger.START)
    cookie = _signed_in(app)
    status, _, html = _call(app, "GET", "/stacks/demo?object=container:demo-web-1", cookie=cookie)
    assert status == 200
    panel = html[html.index('<aside id="panel"'):]
    assert 'id="object-diff"' in panel and "no difference from the spec" in panel
    assert 'id="object-health"' in panel and DASH in panel and 'id="logs"' in panel
    assert 'stroke-width="3"' in html  # the open node stands out in the graph
    assert 'data-refresh="/stacks/demo?fragment=1&amp;object=container:demo-web-1"' in html
    status, _, info = _call(app, "GET", "/stacks/demo?object=container:demo-web-1&fragment=panel", cookie=cookie)
    assert status == 200 and info.startswith("<dl>") and "<aside" not in info
    _, _, unknown = _call(app, "GET", "/stacks/demo?object=container:nope", cookie=cookie)
    assert "is not an object of this stack" in unknown
    status, headers, drawn = _call(app, "GET", "/stacks/demo/graph.svg", cookie=cookie)
    assert status == 200 and headers["content-type"].startswith("image/svg+xml") and "xmlns=" in drawn
    assert _call(app, "GET", "/stacks/demo/graph.svg")[0] == 401


def test_an_invalid_spec_shows_its_error_and_no_pending_plan(served):
    app, daemon, root = served
    _pass(daemon, Trigger.START)
    (root / "stacks" / "app" / "stack.yaml").write_text(SPEC + "    bogus: 1\n")
    assert _pass(daemon, Trigger.FILES).invalid
    _, _, html = _call(app, "GET", "/stacks/demo", cookie=_signed_in(app))
    assert "The spec does not load" in html and "stack.yaml:" in html and "bogus" in html
    assert 'id="plan"' not in html and "Pending plan" not in html


def test_empty_cells_on_the_page_say_a_dash(served):
    app, daemon, _ = served
    daemon.reconciler.state.add_sync(Sync("engine", "demo", "", "", SyncResult.CONVERGED, 0.1))  # an older row
    _pass(daemon, Trigger.START)
    _, _, html = _call(app, "GET", "/stacks/demo", cookie=_signed_in(app))
    history = html[html.index('<table id="history">'):]
    last = history[history.rindex("<tr>"):]
    assert last.count(DASH) == 3  # trigger, revision, changes
    objects = html[html.index("<h2>Objects</h2>"):html.index('<table id="history">')]
    assert "<td></td>" not in objects and DASH in objects


def test_a_version_4_history_gains_the_trigger_column_its_old_rows_without_one(tmp_path, monkeypatch):
    from reconciler import statedb
    from reconciler.state import StateStore

    directory = tmp_path / "state"
    monkeypatch.setattr(statedb, "MIGRATIONS", statedb.MIGRATIONS[:4])
    with StateStore.open(directory) as old:
        old._db.execute("INSERT INTO syncs (engine, stack, revision, started_at, seconds, summary, result) "
                        "VALUES ('e', 'demo', '', '2026-12-07T10:00:00Z', 0.1, 'create 1', 'converged')")
    monkeypatch.undo()
    with StateStore.open(directory) as store:
        assert store.schema_version == len(statedb.MIGRATIONS)  # 5 and later
        store.add_sync(Sync("e", "demo", "", "no changes", SyncResult.CONVERGED, 0.1, trigger="webhook"))
        assert [s.trigger for s in store.syncs(stack="demo")] == ["webhook", ""]
