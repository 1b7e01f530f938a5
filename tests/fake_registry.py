"""One fake of a registry's distribution API on 127.0.0.1, for the unit tests of the registry clients.

The docker driver asks a registry three things without pulling: where a tag
points (``distribution``, a manifest HEAD), which tags a repository has and
what they hold (``taglist``: ``tags/list`` pages, manifests, the config blob).
Both speak the same auth dance (``registryhttp``), so both are tested against
this one fake: a change to the protocol is taught to the tests once.

Not a test module: test modules import ``FakeRegistry`` and ``credential_store``
from here (tests never import helpers from each other).
"""
from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
from dataclasses import dataclass
from pathlib import Path

from reconciler_docker.credentials import CredentialStore

__all__ = ["FakeRegistry", "Manifest", "credential_store"]


@dataclass(frozen=True)
class Manifest:
    """What ``/v2/<name>/manifests/<reference>`` answers: ``Docker-Content-Digest`` and the body of a GET."""

    digest: str
    body: bytes = b""


class FakeRegistry:
    """``/v2`` manifests (HEAD and GET), ``tags/list`` pages, blobs and a token realm, behind Basic or Bearer auth.

    ``scheme`` is ``"basic"``, ``"bearer"`` (tokens from ``/token``, which takes
    the Basic credentials; only the newest token is good) or ``"none"``.
    ``manifests`` are found by tag or digest, ``default`` answers any other
    reference (``None``: 404). ``tags`` are listed ``n`` a page with a ``Link``
    to the next, with an ``ETag`` (and ``304`` to a matching ``If-None-Match``)
    unless ``etag`` is false. ``redirect`` (a base URL) sends every authorized
    ``/v2`` request there with a 307. A repository whose name contains
    ``missing`` does not exist. Set ``status`` to force the answer to every
    authorized ``/v2`` request. ``requests`` records ``(method, path,
    Authorization)`` of every request, ``accepts`` the ``Accept`` of each ``/v2`` one.
    """

    def __init__(self, scheme: str = "basic", *, user: str = "bob", password: str = "s3cret",
                 manifests: dict[str, Manifest] | None = None, default: Manifest | None = None,
                 tags: list[str] | tuple[str, ...] = (), blobs: dict[str, bytes] | None = None,
                 etag: bool = True, expires_in: int | None = None, redirect: str | None = None) -> None:
        self.scheme, self.etag, self.expires_in, self.redirect = scheme, etag, expires_in, redirect
        self.manifests, self.default = dict(manifests or {}), default
        self.tags = list(tags)
        self.blobs = dict(blobs or {})
        self.status: int | None = None
        self.tokens = 0
        self.requests: list[tuple[str, str, str | None]] = []
        self.accepts: list[str] = []
        self.basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()

    def heads(self) -> list[tuple[str, str, str | None]]:
        """The manifest HEADs recorded so far."""
        return [r for r in self.requests if r[0] == "HEAD"]

    def lists(self) -> list[tuple[str, str, str | None]]:
        """The ``tags/list`` requests recorded so far."""
        return [r for r in self.requests if "/tags/list" in r[1]]

    def authorized(self, auth: str | None) -> bool:
        """Whether a ``/v2`` request with this ``Authorization`` is let in."""
        if self.scheme == "none":
            return True
        if self.scheme == "basic":
            return auth == self.basic
        return bool(self.tokens) and auth == f"Bearer tok-{self.tokens}"

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` of a 401."""
        if self.scheme == "basic":
            return 'Basic realm="test"'
        return f'Bearer realm="http://{self.host}/token",service="fake"'

    def token(self, auth: str | None) -> dict | None:
        """A new token for the Basic credentials (the old one stops working), or ``None`` for wrong ones."""
        if auth != self.basic:
            return None
        with self.lock:
            self.tokens += 1
            answer: dict = {"token": f"tok-{self.tokens}"}
        if self.expires_in is not None:
            answer["expires_in"] = self.expires_in
        return answer

    def tag_page(self, repository: str, query: dict[str, str]) -> tuple[list[str], bytes, str | None]:
        """The page of tags after ``last``, ``n`` long: the page, its JSON body, the ``last`` of the next or None."""
        n = int(query.get("n", 1000))
        after = query.get("last")
        rest = self.tags[self.tags.index(after) + 1:] if after else self.tags
        page = rest[:n]
        body = json.dumps({"name": repository, "tags": page}).encode()
        return page, body, page[-1] if len(rest) > n else None


def _handler(fake: FakeRegistry) -> type[http.server.BaseHTTPRequestHandler]:
    """The request handler class of one ``FakeRegistry``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self._serve()

        def do_GET(self) -> None:
            self._serve()

        def _answer(self, status: int, headers=(), body: bytes = b"") -> None:
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _serve(self) -> None:
            auth = self.headers.get("Authorization")
            with fake.lock:
                fake.requests.append((self.command, self.path, auth))
            if self.path.startswith("/token"):
                answer = fake.token(auth)
                if answer is None:
                    return self._answer(401)
                return self._answer(200, [("Content-Type", "application/json")], json.dumps(answer).encode())
            with fake.lock:
                fake.accepts.append(self.headers.get("Accept", ""))
            if not fake.authorized(auth):
                return self._answer(401, [("WWW-Authenticate", fake.challenge())])
            if fake.redirect:
                return self._answer(307, [("Location", fake.redirect + self.path)])
            if fake.status:
                return self._answer(fake.status)
            path, _, query = self.path.partition("?")
            repository, _, rest = path.removeprefix("/v2/").partition("/manifests/")
            if not rest:
                repository = path.removeprefix("/v2/").rsplit("/", 2)[0]
            if "missing" in repository:
                return self._answer(404, [], b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
            if path.endswith("/tags/list"):
                return self._tags(path, repository, dict(p.split("=", 1) for p in query.split("&") if "=" in p))
            if rest:
                manifest = fake.manifests.get(rest, fake.default)
                if manifest is None:
                    return self._answer(404)
                return self._answer(200, [("Docker-Content-Digest", manifest.digest)], manifest.body)
            _, _, blob = path.partition("/blobs/")
            if blob in fake.blobs:
                return self._answer(200, [], fake.blobs[blob])
            self._answer(404)

        def _tags(self, path: str, repository: str, query: dict[str, str]) -> None:
            page, body, last = fake.tag_page(repository, query)
            tag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            headers = [("Content-Type", "application/json")]
            if fake.etag:
                if self.headers.get("If-None-Match") == tag:
                    return self._answer(304, [("ETag", tag)])
                headers.append(("ETag", tag))
            if last is not None:
                headers.append(("Link", f'<{path}?last={last}&n={len(page)}>; rel="next"'))
            self._answer(200, headers, body)

        def log_message(self, *args) -> None:
            pass

    return Handler


def credential_store(host: str, tmp_path: Path, password: str = "s3cret") -> CredentialStore:
    """A credential store that gives ``bob`` / ``password`` for ``host`` (and reads no Docker config)."""
    path = tmp_path / "auth.yaml"
    path.write_text(f'registries:\n  "{host}": {{username: bob, password_env: PW}}\n')
    return CredentialStore({"RECONCILER_REGISTRY_AUTH": str(path), "PW": password,
                            "DOCKER_CONFIG": str(tmp_path / "none")})
