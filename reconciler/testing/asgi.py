"""One request to an ASGI app in this process, without a server: for tests and benches of the daemon's API.

The daemon's HTTP side is a Starlette app; calling it directly measures and
checks the app itself (routes, authentication, rendering) with no socket in
between. The request body is sent whole, then the client disconnects.
"""
from __future__ import annotations

import asyncio
from typing import Any, Iterable

__all__ = ["asgi_request"]


def asgi_request(app: Any, method: str, path: str, *, body: bytes = b"", headers: Iterable[tuple[str, str]] = (),
                 server: str = "test") -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of ``method path`` (``path`` may carry ``?query``) sent to ``app``."""
    path, _, query = path.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers], "client": ("127.0.0.1", 1),
             "server": (server, 80)}
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return (start["status"], {k.decode(): v.decode() for k, v in start["headers"]},
            b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))
