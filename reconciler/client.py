"""A client of daemons' HTTP APIs: ``reconcile status|history|sync|suspend|resume|rollback|release --server URL``,
``reconcile snapshots list --server URL``, ``reconcile previews --server URL``.

One client can follow the daemons of several hosts: each ``--server`` is asked
in turn, and a host that cannot be reached is reported without hiding the others.
The token comes from ``--token-file`` or ``$RECONCILER_TOKEN`` and only ever
travels in the Authorization header.
"""
from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from .errors import ReconcilerError

__all__ = ["DaemonClient", "token_from"]

TOKEN_ENV = "RECONCILER_TOKEN"


def token_from(token_file: str | None) -> str:
    """The API token: the file's first line, else ``$RECONCILER_TOKEN``."""
    if token_file:
        try:
            token = Path(token_file).read_text().strip().splitlines()
        except OSError as exc:
            raise ReconcilerError(f"{token_file}: cannot read the API token: {exc.strerror or exc}") from exc
        if token and token[0].strip():
            return token[0].strip()
        raise ReconcilerError(f"{token_file}: the file holds no token")
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise ReconcilerError(f"--server needs a token: give --token-file FILE or set {TOKEN_ENV}")
    return token


class DaemonClient:
    def __init__(self, url: str, token: str, *, cacert: str | None = None, timeout: float = 15.0) -> None:
        self.url = url.rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise ReconcilerError(f"--server {url}: give a URL starting with http:// or https://")
        self._token = token
        self.timeout = timeout
        self._context = ssl.create_default_context(cafile=cacert) if self.url.startswith("https://") else None

    def _open(self, request: urllib.request.Request, timeout: float | None):
        """The response to ``request``; HTTP and connection errors as ``ReconcilerError`` naming the daemon."""
        try:
            return urllib.request.urlopen(request, timeout=timeout, context=self._context)
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error") or exc.reason
            except (ValueError, AttributeError):
                message = exc.reason
            raise ReconcilerError(f"{self.url}: {exc.code} {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ReconcilerError(f"{self.url}: cannot reach the daemon: {reason}") from None

    def _lines(self, path: str, *, follow: bool) -> Iterator[dict[str, Any]]:
        """Each JSON object of an NDJSON answer, as it arrives (a follow: no read timeout)."""
        request = urllib.request.Request(self.url + path, method="GET", headers={
            "Authorization": f"Bearer {self._token}", "Accept": "application/x-ndjson"})
        with self._open(request, None if follow else self.timeout) as response:
            for raw in response:
                if raw.strip():
                    try:
                        yield json.loads(raw)
                    except ValueError as exc:
                        raise ReconcilerError(f"{self.url}: a line of the answer is not JSON: {exc}") from None

    def logs(self, name: str, containers: Sequence[str] = (), *, follow: bool = False, since: float | None = None,
             tail: int | None = None) -> Iterator[Any]:
        """The stack's log lines (``logs.LogLine``), from ``GET /api/stacks/NAME/logs``."""
        from .logs import LogLine

        query = [("container", c) for c in containers] + [("follow", int(follow))]
        query += [("since", since)] if since is not None else []
        query += [("tail", tail)] if tail is not None else []
        for line in self._lines(f"/api/stacks/{quote(name, safe='')}/logs?{urlencode(query)}", follow=follow):
            yield LogLine(line["container"], float(line["time"]), line["stream"], line["line"])

    def events(self, name: str, *, follow: bool = False, since: float | None = None) -> Iterator[Any]:
        """The stack's events (``logs.StackEvent``), from ``GET /api/stacks/NAME/events``."""
        from .logs import StackEvent

        query = [("follow", int(follow))] + ([("since", since)] if since is not None else [])
        for event in self._lines(f"/api/stacks/{quote(name, safe='')}/events?{urlencode(query)}", follow=follow):
            yield StackEvent(float(event["time"]), event["source"], event.get("kind", ""), event.get("name", ""),
                             event.get("action", ""), event.get("detail", ""))

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        return self._answer(method, path, body)[0]

    def _answer(self, method: str, path: str, body: Any = None) -> tuple[Any, str]:
        """(the JSON answer, the path of its ``Link: rel="next"`` page or "") of one request."""
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with self._open(request, self.timeout) as response:
            try:
                return json.loads(response.read() or b"null"), _next_page(response.headers.get("Link", ""))
            except OSError as exc:  # the connection broke while the answer was read
                raise ReconcilerError(f"{self.url}: cannot reach the daemon: {exc}") from None
            except ValueError as exc:
                raise ReconcilerError(f"{self.url}: the answer is not JSON: {exc}") from None

    def stacks(self, *, limit: int = 1000) -> list[dict[str, Any]]:
        """Every stack the daemon runs: ``GET /api/stacks`` in pages of ``limit``, following ``Link: rel="next"``."""
        rows, path = [], f"/api/stacks?limit={int(limit)}"
        while path:
            page, path = self._answer("GET", path)
            rows += page
        return rows

    def stack(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/api/stacks/{quote(name, safe='')}")

    def history(self, name: str, limit: int = 20) -> list[dict[str, Any]]:
        return self._call("GET", f"/api/stacks/{quote(name, safe='')}/history?limit={int(limit)}")

    def post(self, name: str, verb: str) -> dict[str, Any]:
        """``verb`` is sync, suspend or resume."""
        return self._call("POST", f"/api/stacks/{quote(name, safe='')}/{verb}")

    def rollback(self, name: str, to: str, *, with_data: bool = False) -> dict[str, Any]:
        """Hold the stack at commit ``to`` (a full id, or its first digits as history shows them); ``with_data``:
        its volumes' data too (refused when no snapshot was taken as the stack left ``to``)."""
        body: dict[str, Any] = {"to": to, "with_data": True} if with_data else {"to": to}
        return self._call("POST", f"/api/stacks/{quote(name, safe='')}/rollback", body)

    def snapshots(self, name: str) -> list[dict[str, Any]]:
        """The stack's volume snapshots, from ``GET /api/stacks/NAME/snapshots``."""
        return self._call("GET", f"/api/stacks/{quote(name, safe='')}/snapshots")

    def previews(self, source: str | None = None) -> list[dict[str, Any]]:
        """The daemon's preview stacks (of ``source`` only when given), from ``GET /api/previews``."""
        query = f"?{urlencode({'source': source})}" if source else ""
        answer = self._call("GET", f"/api/previews{query}")
        if not isinstance(answer, dict) or not isinstance(answer.get("previews"), list):
            raise ReconcilerError(f"{self.url}: the answer to /api/previews holds no list of previews")
        return answer["previews"]

    def release(self, name: str) -> dict[str, Any]:
        """Let a held stack follow its source again."""
        return self._call("POST", f"/api/stacks/{quote(name, safe='')}/release")


def _next_page(link: str) -> str:
    """The path (and query) of an RFC 8288 ``Link`` header's ``rel="next"`` target on the same daemon, or "".

    A target on another host is not followed: the token would travel there.
    """
    for part in link.split(","):
        target, _, params = part.strip().partition(";")
        rels = {p.strip() for p in params.split(";")}
        if target.startswith("<") and target.endswith(">") and ('rel="next"' in rels or "rel=next" in rels):
            url = urlsplit(target[1:-1])
            return urlunsplit(("", "", url.path, url.query, "")) if not url.scheme and not url.netloc \
                and url.path.startswith("/") else ""
    return ""
