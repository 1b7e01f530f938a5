"""Where a tag points now, asked of the registry without pulling: the manifest HEAD.

Why a module of its own: ``plan`` must notice that a tag moved upstream, and the
engine offers no way to ask a registry without pulling. The distribution API
does: ``HEAD /v2/<name>/manifests/<tag>`` answers with ``Docker-Content-Digest``.
This client speaks just that, with the standard library only:

- plain HTTP for ``localhost`` / ``127.0.0.1`` registries (as the engine does), HTTPS otherwise;
- auth as registries ask for it (``WWW-Authenticate``): ``Basic`` with the
  stored credentials, or ``Bearer``: one token from the realm, cached per registry;
- no redirect is followed with credentials to another host.

Cost: the first image of each registry goes alone (sending Basic credentials
up front when some are configured); its answer tells how the rest authenticate,
and they go concurrently, one HEAD each. A registry that wants a token costs at
most one extra HEAD (the challenge) and one token fetch, for every repository
of the batch at once.
"""
from __future__ import annotations

import base64
import http.client
import json
import re
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable

from reconciler.sdk import PermanentError, TemporaryError

from .credentials import HUB, Credential, CredentialStore, registry_host

__all__ = ["ACCEPT", "DigestCheckFailed", "ManifestChecker", "parse_challenge", "repository_path"]

ACCEPT = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
))
HUB_API = "registry-1.docker.io"
_LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
_MAX_REDIRECTS = 3


class DigestCheckFailed(PermanentError):
    """The registry would not say where a tag points (not found, denied, bad answer)."""


class RegistryDown(TemporaryError):
    """The registry did not answer, or answered with a 5xx or 429."""


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…"`` → ("bearer", {"realm": …, "service": …})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)).replace('\\"', '"')
              for m in _PARAM.finditer(rest)}
    return scheme.lower(), params


def repository_path(ref: str) -> tuple[str, str, str]:
    """(API host, repository name, tag) of a tag reference, by docker's rules."""
    host = registry_host(ref)
    first, sep, rest = ref.partition("/")
    if not (sep and ("." in first or ":" in first or first == "localhost")):
        rest = ref
    name, sep, tag = rest.rpartition(":")
    if not sep or "/" in tag:
        name, tag = rest, "latest"
    if host == HUB:
        host = HUB_API
        if "/" not in name:
            name = "library/" + name
    return host, name, tag


def _is_loopback(host: str) -> bool:
    return host.rsplit(":", 1)[0] in _LOOPBACK if not host.startswith("[") else host.split("]")[0] + "]" in _LOOPBACK


@dataclass
class _Auth:
    """How one registry wants to be asked: nothing, Basic, or a Bearer token."""

    header: str | None = None
    known: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class ManifestChecker:
    """Asks registries for the digest of many tags at once; one instance per run.

    ``requests`` counts every HTTP request made (HEADs, token fetches), so a
    test or a benchmark can hold the cost to its promise.
    """

    def __init__(self, credentials: CredentialStore | None = None, *, timeout: float = 10.0,
                 max_workers: int = 32, connect: Callable[..., http.client.HTTPConnection] | None = None) -> None:
        self.credentials = credentials or CredentialStore()
        self.timeout = timeout
        self.max_workers = max_workers
        self.requests = 0
        self._connect = connect
        self._lock = threading.Lock()
        self._auth: dict[str, _Auth] = {}

    def digests(self, refs: Iterable[str]) -> dict[str, str | Exception]:
        """``ref`` → its manifest digest upstream, or the error that kept us from knowing it."""
        refs = sorted(set(refs))
        by_host: dict[str, list[str]] = {}
        for ref in refs:
            by_host.setdefault(repository_path(ref)[0], []).append(ref)
        out: dict[str, str | Exception] = {}
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(refs) or 1),
                                thread_name_prefix="digest") as pool:
            # The first ref of each registry learns how it authenticates; the rest follow it.
            firsts = {host: pool.submit(self._safe, group[0], group) for host, group in by_host.items()}
            rest = {}
            for host, group in by_host.items():
                out[group[0]] = firsts[host].result()
                rest.update({ref: pool.submit(self._safe, ref, group) for ref in group[1:]})
            out.update({ref: future.result() for ref, future in rest.items()})
        return out

    def digest(self, ref: str) -> str:
        """The manifest digest ``ref``'s tag points to now, at its registry."""
        return self._head(ref, [ref])

    def _safe(self, ref: str, batch: list[str]) -> str | Exception:
        try:
            return self._head(ref, batch)
        except Exception as exc:  # one image's failure is that image's answer, never the batch's
            return exc

    def _head(self, ref: str, batch: list[str]) -> str:
        host, name, tag = repository_path(ref)
        with self._lock:
            auth = self._auth.setdefault(host, _Auth())
        credential = self.credentials.for_host(registry_host(ref))
        header = auth.header if auth.known.is_set() else self._basic(credential)
        status, headers = self._request("HEAD", host, f"/v2/{name}/manifests/{tag}", header, ref)
        if status == 401:
            header = self._authenticate(host, headers.get("WWW-Authenticate", ""), credential, batch, ref)
            status, headers = self._request("HEAD", host, f"/v2/{name}/manifests/{tag}", header, ref)
        if status != 401:  # whatever the answer, this is how the registry takes requests
            auth.header = header
            auth.known.set()
        if status == 200 and headers.get("Docker-Content-Digest", "").startswith("sha256:"):
            return headers["Docker-Content-Digest"]
        raise self._error(status, ref, host, credential)

    @staticmethod
    def _basic(credential: Credential | None) -> str | None:
        if credential is None or credential.identity_token:
            return None
        token = base64.b64encode(f"{credential.username}:{credential.password}".encode()).decode()
        return f"Basic {token}"

    def _authenticate(self, host: str, challenge: str, credential: Credential | None,
                      batch: list[str], ref: str) -> str | None:
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if credential is None:
                raise DigestCheckFailed(f"check {ref}: registry {host} requires credentials and none are configured")
            return self._basic(credential)
        if scheme == "bearer" and params.get("realm"):
            return self._token(host, params, credential, batch, ref)
        raise DigestCheckFailed(f"check {ref}: registry {host} asks for an unsupported auth scheme {scheme!r}")

    def _token(self, host: str, params: dict[str, str], credential: Credential | None,
               batch: list[str], ref: str) -> str:
        """One token for every repository of ``batch`` on this registry (several ``scope`` params)."""
        with self._lock:
            auth = self._auth[host]
        with auth.lock:
            if auth.known.is_set() and auth.header and auth.header.startswith("Bearer "):
                return auth.header
            realm = urllib.parse.urlsplit(params["realm"])
            if realm.scheme != "https" and not (realm.scheme == "http" and _is_loopback(realm.netloc)):
                raise DigestCheckFailed(f"check {ref}: registry {host} names a token realm that is not https")
            scopes = sorted({f"repository:{repository_path(r)[1]}:pull" for r in batch})
            query = [("service", params["service"])] if params.get("service") else []
            query += [("scope", scope) for scope in scopes]
            path = (realm.path or "/") + "?" + urllib.parse.urlencode(query)
            status, _, body = self._send("GET", realm.scheme, realm.netloc, path, self._basic(credential), ref)
            if status != 200:
                raise self._error(status, ref, realm.netloc, credential, what="token")
            try:
                answer = json.loads(body)
                token = answer.get("token") or answer["access_token"]
            except (ValueError, KeyError, AttributeError):
                raise DigestCheckFailed(f"check {ref}: the token service of {host} gave an unreadable answer") from None
            auth.header = f"Bearer {token}"
            auth.known.set()
            return auth.header

    def _request(self, method: str, host: str, path: str, header: str | None, ref: str):
        scheme = "http" if _is_loopback(host) else "https"
        status, headers, _ = self._send(method, scheme, host, path, header, ref)
        return status, headers

    def _send(self, method: str, scheme: str, host: str, path: str, header: str | None, ref: str):
        for _ in range(_MAX_REDIRECTS + 1):
            headers = {"Accept": ACCEPT, "User-Agent": "reconciler"}
            if header:
                headers["Authorization"] = header
            with self._lock:
                self.requests += 1
            conn = self._open(scheme, host)
            try:
                conn.request(method, path, headers=headers)
                response = conn.getresponse()
                body = response.read() if method != "HEAD" else b""
            except (OSError, http.client.HTTPException) as exc:
                raise RegistryDown(f"check {ref}: registry {host} is unreachable ({type(exc).__name__}: {exc})") from None
            finally:
                conn.close()
            if response.status not in (301, 302, 303, 307, 308):
                return response.status, response.headers, body
            target = urllib.parse.urlsplit(urllib.parse.urljoin(f"{scheme}://{host}{path}",
                                                                response.headers.get("Location", "")))
            if target.netloc != host:
                header = None  # credentials never follow a redirect to another host
            scheme, host = target.scheme, target.netloc
            path = target.path + (f"?{target.query}" if target.query else "")
        raise DigestCheckFailed(f"check {ref}: too many redirects")

    def _open(self, scheme: str, host: str) -> http.client.HTTPConnection:
        if self._connect is not None:
            return self._connect(scheme, host, self.timeout)
        if scheme == "https":
            return http.client.HTTPSConnection(host, timeout=self.timeout)
        return http.client.HTTPConnection(host, timeout=self.timeout)

    @staticmethod
    def _error(status: int, ref: str, host: str, credential: Credential | None, what: str = "manifest"):
        if status in (429,) or status >= 500:
            return RegistryDown(f"check {ref}: registry {host} answered {status}")
        if status == 401:
            who = f"as user {credential.username!r} (credentials from {credential.source})" if credential \
                else "and none are configured"
            return DigestCheckFailed(f"check {ref}: authentication failed for registry {host} {who}")
        if status == 404:
            return DigestCheckFailed(f"check {ref}: image not found on registry {host}")
        if status == 200:
            return DigestCheckFailed(f"check {ref}: registry {host} sent no Docker-Content-Digest")
        return DigestCheckFailed(f"check {ref}: registry {host} answered {status} to the {what} request")
