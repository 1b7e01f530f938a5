"""The notify plugin end to end: a real apply through the CLI posts a signed summary."""
from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import os
import threading

import pytest

pytestmark = pytest.mark.engine

SECRET = "notify-KEY-5d1e-never-printed"

SPEC = """
name: STACK
containers:
  web:
    image: BASE
    command: ["sleep", "3600"]
    init: true
"""


class Receiver:
    """An HTTP server on 127.0.0.1 with an ephemeral port that records every POST and answers 204."""

    def __init__(self):
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/reconciler"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_apply_posts_a_signed_summary(stack):
    stack.write(SPEC)
    no_proxy = ",".join(filter(None, [os.environ.get("no_proxy"), "127.0.0.1"]))
    with Receiver() as receiver:
        result = stack.apply(env={"RECONCILER_NOTIFY_URLS": receiver.url, "RECONCILER_NOTIFY_SECRET": SECRET,
                                  "no_proxy": no_proxy, "NO_PROXY": no_proxy})
    assert result.code == 0, result.err
    assert f"{stack.name}-web-1" in stack.containers()

    [(headers, body)] = receiver.requests
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, headers["X-Reconciler-Signature"])
    assert headers["X-Reconciler-Event"] == "apply"
    payload = json.loads(body)
    assert payload["stack"] == stack.name and payload["ok"] is True
    assert [(c["id"], c["status"]) for c in payload["changes"]] == [(f"container:{stack.name}-web-1", "ok")]
    assert payload["counts"] == {"ok": 1, "failed": 0, "skipped": 0} and payload["failures"] == []
    assert SECRET not in result.out + result.err
    assert headers["X-Reconciler-Signature"] not in result.out + result.err


def test_an_unreachable_receiver_does_not_fail_the_apply(stack):
    stack.write(SPEC)
    result = stack.apply(env={"RECONCILER_NOTIFY_URLS": "http://127.0.0.1:9/nobody-listens",
                              "RECONCILER_NOTIFY_SECRET": SECRET, "RECONCILER_NOTIFY_TIMEOUT": "1"})
    assert result.code == 0, result.err
    assert f"{stack.name}-web-1" in stack.containers()
    assert SECRET not in result.out + result.err
