"""What the daemon says when something is already wrong: logs that never flood, errors that name their cause."""
from __future__ import annotations

import socket
import urllib.parse

from reconciler.waiting import poll_until


def _hang_up_mid_body(url: str, path: str) -> None:
    """Promise a body of 1,000 bytes, send ten, and close the connection."""
    where = urllib.parse.urlsplit(url)
    with socket.create_connection((where.hostname, where.port), timeout=10) as conn:
        conn.sendall(f"POST {path} HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Type: application/json\r\n"
                     "Content-Length: 1000\r\n\r\n{\"ref\": \"r".encode())


def _disconnects(api) -> dict[str, float]:
    family = api.metrics().get("reconciler_client_disconnects")
    return {s.labels["route"]: s.value for s in family.samples if s.name.endswith("_total")} if family else {}


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
