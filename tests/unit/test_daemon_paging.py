"""``/api/stacks`` at a thousand stacks: pages, filters, Link headers, and not one read of the database or engine."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from reconciler.client import _next_page
from reconciler.daemon.auth import load_tokens
from reconciler.daemon.config import ApiConfig, Source
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.paging import BadPage, Paging, link_header, paging_of
from reconciler.daemon.stackworker import StackWorker
from reconciler.daemon.server import make_app
from reconciler.daemon.view import STATES, DaemonView
from reconciler.loop import Pass, Trigger
from reconciler.model import Kind
from reconciler.report import ApplyReport
from reconciler.testing.asgi import asgi_request

TOKEN = "r" * 24


class NoStore:
    """A state store that fails on any read (or write): the listing must not need one."""

    path = ":memory:"

    def __getattr__(self, name: str):
        raise AssertionError(f"the state database was asked for {name}")


class Desired(SimpleNamespace):
    def of(self, kind: Kind) -> dict:
        return {"web": object()} if kind is Kind.CONTAINER else {}


def _worker(n: int) -> StackWorker:
    worker = StackWorker(Source(name="here", dir="/nowhere", paths=(f"s{n}",)), f"s{n}", SimpleNamespace(revision=""))
    worker.loop = SimpleNamespace(desired=Desired(stack=f"stack{n:04}"))
    if n % 10:  # every tenth never passed: pending; every seventh failed
        worker.last = Pass(Trigger.RESYNC, report=ApplyReport(stack=f"stack{n:04}", seconds=0.1, outcomes=()),
                           seconds=0.1, error="no" if n % 7 == 0 else "")
        worker.last_at = 1.0
    return worker


@pytest.fixture
def thousand(tmp_path):
    """The app of a daemon of 1,000 stacks whose record and engine are out of reach, and its view."""
    daemon = SimpleNamespace(workers=[_worker(n) for n in range(1000)], reconciler=SimpleNamespace(state=NoStore()))
    tokens = tmp_path / "tokens"
    tokens.write_text(f"viewer read {TOKEN}\n")
    tokens.chmod(0o600)
    app = make_app(daemon, ApiConfig(tokens_file=str(tokens)), load_tokens(str(tokens)), {}, Metrics())
    return app, daemon


def _get(app, path: str):
    status, headers, body = asgi_request(app, "GET", path, headers=[("authorization", f"Bearer {TOKEN}")])
    return status, headers, json.loads(body)


def _view(app) -> DaemonView:
    """The view the app's routes share (its doors are in the routes' closures)."""
    for route in app.routes:
        for cell in getattr(route.endpoint, "__closure__", None) or ():
            found = getattr(cell.cell_contents, "view", None)
            if isinstance(found, DaemonView):
                return found
    raise AssertionError("no view")


def test_a_page_of_a_thousand_stacks_reads_neither_the_database_nor_the_engine(thousand):
    app, daemon = thousand
    view = DaemonView(daemon)
    view.refresh({"stack0001": "2026-12-07T00:00:00Z"}, {"stack0002": ("a" * 40, "b" * 40)})
    rows, total = view.page(limit=100)
    assert total == 1000 and len(rows) == 100 and rows[1]["suspended"] and rows[2]["held_at"] == "a" * 40
    assert view.find("stack0999") is daemon.workers[999] and view.find("here:s5") is daemon.workers[5]
    assert view.find("nobody") is None


def test_api_stacks_pages_with_total_count_and_link_headers(thousand):
    app, daemon = thousand
    _view(app).refresh({}, {})
    status, headers, rows = _get(app, "/api/stacks?limit=100")
    assert status == 200 and len(rows) == 100 and rows[0]["name"] == "stack0000"
    assert headers["x-total-count"] == "1000"
    assert headers["link"] == '</api/stacks?limit=100&offset=100>; rel="next"'
    status, headers, rows = _get(app, "/api/stacks?limit=300&offset=900")
    assert [r["name"] for r in rows] == [f"stack{n:04}" for n in range(900, 1000)]
    assert headers["link"] == '</api/stacks?limit=300&offset=600>; rel="prev"'
    status, headers, rows = _get(app, "/api/stacks")
    assert len(rows) == 100  # the default limit
    assert 'rel="next"' in headers["link"] and 'rel="prev"' not in headers["link"]


def test_the_state_filter_counts_and_pages_only_the_matching_stacks(thousand):
    app, daemon = thousand
    _view(app).refresh({"stack0003": "2026-12-07T00:00:00Z"}, {})
    status, headers, rows = _get(app, "/api/stacks?state=pending&limit=50&offset=50")
    assert status == 200 and headers["x-total-count"] == "100" and len(rows) == 50
    assert {r["state"] for r in rows} == {"pending"} and rows[0]["name"] == "stack0500"
    assert headers["link"] == '</api/stacks?limit=50&offset=0&state=pending>; rel="prev"'
    _, headers, rows = _get(app, "/api/stacks?state=suspended,error")
    assert rows[0]["name"] == "stack0003" and all(r["state"] == "error" for r in rows[1:])
    assert int(headers["x-total-count"]) == 1 + len([n for n in range(1000) if n % 10 and n % 7 == 0])


@pytest.mark.parametrize("query, message", [
    ("limit=0", "limit must be from 1 to 1000, not 0"),
    ("limit=1001", "limit must be from 1 to 1000, not 1001"),
    ("limit=ten", "limit must be a whole number, not 'ten'"),
    ("offset=-1", "offset must be at least 0, not -1"),
    ("state=happy", "state must be one or more of pending, converged"),
])
def test_a_bad_query_is_a_400_that_says_what_was_expected(thousand, query, message):
    app, _ = thousand
    status, _, body = _get(app, f"/api/stacks?{query}")
    assert status == 400 and message in body["error"]


def test_the_paging_rules_on_their_own():
    assert paging_of({}, STATES) == Paging(limit=100, offset=0, states=())
    assert paging_of({"state": "failed,held"}, STATES).states == ("failed", "held")
    with pytest.raises(BadPage):
        paging_of({"offset": "x"}, STATES)
    assert link_header("/api/stacks", Paging(limit=10, offset=0), 10) == ""
    assert link_header("/api/stacks", Paging(limit=10, offset=10), 15) == '</api/stacks?limit=10&offset=0>; rel="prev"'
    assert link_header("/api/stacks", Paging(limit=10, offset=50), 15) == '</api/stacks?limit=10&offset=5>; rel="prev"'


def test_the_client_follows_next_on_the_same_daemon_only():
    assert _next_page('</api/stacks?limit=2&offset=2>; rel="next", </api/stacks?limit=2&offset=0>; rel="prev"') \
        == "/api/stacks?limit=2&offset=2"
    assert _next_page('</api/stacks?limit=2&offset=0>; rel="prev"') == ""
    assert _next_page('<https://elsewhere.example/api/stacks?offset=2>; rel="next"') == ""
    assert _next_page("") == ""


def test_the_copy_is_read_from_the_store_when_nobody_refreshed_it_and_api_writes_update_it(monkeypatch):
    from reconciler.state import StateStore

    store = StateStore.in_memory()
    daemon = SimpleNamespace(workers=[], reconciler=SimpleNamespace(state=store))
    view = DaemonView(daemon)
    assert view.stale and view.marks() == ({}, {})
    store.suspend("web")  # by the CLI, on this host: seen once the copy is stale
    assert not view.stale and view.marks()[0] == {}
    monkeypatch.setattr("reconciler.daemon.view.STALE_AFTER", -1.0)
    assert "web" in view.marks()[0]
    monkeypatch.setattr("reconciler.daemon.view.STALE_AFTER", 3600.0)
    view.resume("web")
    view.suspend("db")
    assert set(view.marks()[0]) == {"db"}


def test_the_status_page_overview_pages_with_plain_links_and_reads_no_database(thousand):
    app, _ = thousand
    _view(app).refresh({}, {})
    status, headers, _ = asgi_request(app, "POST", "/login", body=f"token={TOKEN}".encode())
    cookie = headers["set-cookie"].split(";")[0]

    def page(query: str) -> str:
        status, _, body = asgi_request(app, "GET", "/" + query, headers=[("cookie", cookie)])
        assert status == 200
        return body.decode()

    first = page("")
    assert first.count("<tr data-stack=") == 100 and 'data-stack="stack0000"' in first
    assert '<a href="/?page=2" rel="next">' in first and 'rel="prev"' not in first and "page 1 of 10" in first
    second = page("?page=2")
    assert 'data-stack="stack0100"' in second and '<a href="/?page=1" rel="prev">' in second
    assert 'data-refresh="/?fragment=1&amp;page=2"' in second
    assert "page 10 of 10" in page("?page=99") and "page 1 of 10" in page("?page=nope")
    assert page("?fragment=1&page=3").startswith("<h1>Stacks</h1>")
