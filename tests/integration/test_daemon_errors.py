"""What the daemon says when something is already wrong: logs that never flood, errors that name their cause."""
from __future__ import annotations

import json
import secrets
import socket
import urllib.parse
import urllib.request

from reconciler.waiting import poll_until

from .daemons import Api, conforms


def _hang_up_mid_body(url: str, path: str) -> None:
    """Promise a body of 1,000 bytes, send ten, and close the connection."""
    where = urllib.parse.urlsplit(url)
    with socket.create_connection((where.hostname, where.port), timeout=10) as conn:
        conn.sendall(f"POST {path} HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Type: application/json\r\n"
                     "Content-Length: 1000\r\n\r\n{\"ref\": \"r".encode())


def _disconnects(api) -> dict[str, float]:
    family = api.metrics().get("reconciler_client_disconnects")
    return {s.labels["route"]: s.value for s in family.samples if s.name.endswith("_total")} if family else {}


def _all_passed(api) -> list[dict] | None:
    """Every stack, once each has had a pass; else None."""
    stacks = api.get("/api/stacks?limit=1000")[1]
    return stacks if all(s["last_sync"] for s in stacks) else None


def test_clients_hanging_up_mid_body_make_one_throttled_line_and_are_counted(api, stack):
    start = len(api.daemon.text)
    for _ in range(40):
        _hang_up_mid_body(api.url, "/hooks/github")
    _hang_up_mid_body(api.url, "/login")
    poll_until(lambda: _disconnects(api) == {"/hooks/{hook}": 40.0, "/login": 1.0}, timeout=30, interval=0.2,
               describe=lambda: f"counted {_disconnects(api)}, logged:\n{''.join(api.daemon.text[start:][:60])}")
    logged = api.daemon.text[start:]
    assert len(logged) == 1, "".join(logged)  # the first one; the rest held back (one line a minute at most)
    assert "went away before sending the whole body of POST /hooks/github" in logged[0]
    assert "Traceback" not in "".join(api.daemon.text)
    assert api.deliver("github", b"{}")[0] == 202  # and the server answers as before


def test_a_repository_that_cannot_be_fetched_is_a_source_error_with_all_git_said(tmp_path):
    token = "tok-" + secrets.token_hex(8)
    sources = [{"name": "repo", "git": {"url": f"file://{tmp_path}/nosuch.git", "ref": "main", "interval": 3600},
                "paths": ["app"]},
               {"name": "private", "git": {"url": f"https://x-access-token:{token}@127.0.0.1:9/shop.git", "ref": "main",
                                           "interval": 3600}, "paths": ["app"]}]
    running = Api(tmp_path, None, sources=sources)
    try:
        stacks = poll_until(lambda: _all_passed(running), timeout=30, interval=0.2)
        conforms("/api/stacks", "get", 200, stacks)
        nosuch, private = stacks
        assert nosuch["state"] == private["state"] == "source_error"
        assert nosuch["last_sync"]["result"] == "source_error"
        error = nosuch["last_sync"]["error"]
        assert "spec" not in error and "the source could not be fetched" in error
        assert "does not appear to be a git repository" in error and "and the repository exists." in error
        assert "Please make sure you have the correct access rights" in error  # git's whole message
        assert "Failed to connect to 127.0.0.1 port 9" in private["last_sync"]["error"]
        assert private["source"]["url"] == "https://127.0.0.1:9/shop.git"
        syncs = {s.labels["stack"]: s.labels["result"] for s in running.metrics()["reconciler_syncs"].samples
                 if s.name == "reconciler_syncs_total"}
        assert syncs == {"repo:app": "source_error", "private:app": "source_error"}
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        login = urllib.parse.urlencode({"token": running.read_token}).encode()
        opener.open(running.url + "/login", data=login, timeout=30).close()
        with opener.open(f"{running.url}/stacks/repo:app", timeout=30) as page:
            html = page.read().decode()
        assert 'data-state="source_error"' in html and "The source could not be fetched" in html
        assert "and the repository exists." in html
        everything = [json.dumps(stacks), running.get("/metrics")[1], "".join(running.daemon.text)]
        assert not any(token in text for text in everything)
        assert not any("the spec does not load" in text for text in everything)
    finally:
        assert running.daemon.stop() == 0
