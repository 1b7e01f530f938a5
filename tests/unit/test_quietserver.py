"""The API's uvicorn server ticks once a second when idle, and still stops at once when told."""
from __future__ import annotations

import threading
import time
import urllib.request

import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from reconciler.daemon import quietserver
from reconciler.daemon.quietserver import QuietServer

from ..waiting import wait_until


def _serve(monkeypatch, tick: float):
    monkeypatch.setattr(quietserver, "TICK", tick)
    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])
    server = QuietServer(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False,
                                        lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, "the server to start")
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}/"


def test_it_serves_with_a_date_header_and_stop_wakes_its_tick_at_once(monkeypatch):
    server, thread, url = _serve(monkeypatch, tick=60.0)  # a tick that never comes in this test
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.read() == b"ok" and response.headers["Date"].endswith("GMT")
    started = time.monotonic()
    server.stop()
    thread.join(timeout=20)
    assert not thread.is_alive() and time.monotonic() - started < 20  # not after a 60 s tick


def test_its_date_header_moves_with_its_ticks(monkeypatch):
    server, thread, url = _serve(monkeypatch, tick=0.2)
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            first = response.headers["Date"]
        time.sleep(1.5)
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.headers["Date"] != first
    finally:
        server.stop()
        thread.join(timeout=20)
