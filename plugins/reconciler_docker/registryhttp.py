"""Talking to a registry's distribution API: requests, auth, redirects and error mapping, in one place.

Why a module of its own: two clients ask registries questions the engine
cannot answer without pulling: where a tag points (``distribution``, the
manifest HEAD of a followed tag) and which tags a repository has (``taglist``,
for image automation). Both must authenticate the same way, follow redirects
the same way and map failures the same way, so they share this class rather
than two copies of it. Standard library only:

- plain HTTP for ``localhost`` / ``127.0.0.1`` registries (as the engine does), HTTPS otherwise;
- auth as registries ask for it (``WWW-Authenticate``): ``Basic`` with the
  stored credentials (sent up front to a registry not yet asked, when some are
  configured), or ``Bearer``: a token from the realm for the repositories
  asked about (``repository:<name>:pull``), reused until it expires
  (``expires_in``, 60 s when the token service does not say);
- no redirect is followed with credentials to another host;
- messages name the registry, the reference and the user, never a password or a token.
"""
from __future__ import annotations

import base64
import http.client
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable, Mapping

from reconciler.sdk import PermanentError, TemporaryError

from .credentials import HUB, Credential, CredentialStore, registry_host

__all__ = ["ACCEPT", "RegistryClient", "RegistryDown", "RegistryRefused", "parse_challenge", "repository_path"]

ACCEPT = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
))
HUB_API = "registry-1.docker.io"
TOKEN_LIFETIME = 60.0  # seconds, when the token service gives no expires_in (the distribution spec's default)
_TOKEN_MARGIN = 5.0  # a token is renewed this long before it expires (the request may take that long)
_LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
_MAX_REDIRECTS = 3


class RegistryRefused(PermanentError):
    """The registry would not answer the question (not found, denied, bad answer)."""


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
    rest = rest.partition("@")[0]
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
    """How one registry wants to be asked: nothing, Basic (``header``), or Bearer tokens from ``realm``."""

    header: str | None = None
    known: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    realm: dict[str, str] | None = None  # the Bearer challenge's parameters, once the registry gave one
    tokens: dict[tuple[str, ...], tuple[str, float]] = field(default_factory=dict)  # scopes → (header, expiry)


class RegistryClient:
    """Requests to registries, authenticated as each asks; its subclasses ask the questions.

    ``requests`` counts every HTTP request made (token fetches included); a
    request's ``count`` callback, when given (a driver's ``stats["read"]``),
    is called once per request too. Thread-safe.
    """

    refused: type[PermanentError] = RegistryRefused  # what a refusal raises (a subclass names its own)

    def __init__(self, credentials: CredentialStore | None = None, *, timeout: float = 10.0,
                 connect: Callable[..., http.client.HTTPConnection] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.credentials = credentials or CredentialStore()
        self.timeout = timeout
        self.requests = 0
        self._connect = connect
        self._clock = clock
        self._lock = threading.Lock()
        self._auth: dict[str, _Auth] = {}

    def fetch(self, method: str, ref: str, path: str, *, scopes: tuple[str, ...], action: str,
              headers: Mapping[str, str] | None = None,
              count: Callable[[], None] | None = None) -> tuple[int, Mapping[str, str], bytes]:
        """(status, headers, body) of ``method path`` at ``ref``'s registry, authenticated for ``scopes``.

        A 401 is answered once (its challenge: Basic credentials or a token);
        any other status is the caller's to read. ``action`` names the request
        in errors (``"list tags of HOST/app:1"``).
        """
        host = repository_path(ref)[0]
        with self._lock:
            auth = self._auth.setdefault(host, _Auth())
        credential = self.credentials.for_host(registry_host(ref))
        header = self._known_header(auth, host, credential, scopes, action, count) if auth.known.is_set() \
            else self._basic(credential)
        status, answer, body = self._send(method, "http" if _is_loopback(host) else "https", host, path, header,
                                          action, headers, count)
        if status == 401:
            header = self._authenticate(auth, host, answer.get("WWW-Authenticate", ""), credential, scopes, action,
                                        header, count)
            status, answer, body = self._send(method, "http" if _is_loopback(host) else "https", host, path,
                                              header, action, headers, count)
        if status != 401 and not (header or "").startswith("Bearer "):  # how this registry takes requests
            auth.header = header
            auth.known.set()
        return status, answer, body

    def _known_header(self, auth: _Auth, host: str, credential: Credential | None, scopes: tuple[str, ...],
                      action: str, count: Callable[[], None] | None) -> str | None:
        if auth.realm is None:
            return auth.header
        return self._token(auth, host, credential, scopes, action, None, count)

    @staticmethod
    def _basic(credential: Credential | None) -> str | None:
        if credential is None or credential.identity_token:
            return None
        token = base64.b64encode(f"{credential.username}:{credential.password}".encode()).decode()
        return f"Basic {token}"

    def _authenticate(self, auth: _Auth, host: str, challenge: str, credential: Credential | None,
                      scopes: tuple[str, ...], action: str, rejected: str | None,
                      count: Callable[[], None] | None) -> str | None:
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if credential is None:
                raise self.refused(f"{action}: registry {host} requires credentials and none are configured")
            return self._basic(credential)
        if scheme == "bearer" and params.get("realm"):
            auth.realm = params
            return self._token(auth, host, credential, scopes, action, rejected, count)
        raise self.refused(f"{action}: registry {host} asks for an unsupported auth scheme {scheme!r}")

    def _token(self, auth: _Auth, host: str, credential: Credential | None, scopes: tuple[str, ...],
               action: str, rejected: str | None, count: Callable[[], None] | None) -> str:
        """A Bearer header for ``scopes``: the one held while it lives (and was not just refused), else a new one."""
        key = tuple(sorted(set(scopes)))
        with auth.lock:
            held = auth.tokens.get(key)
            if held is not None and held[1] > self._clock() and held[0] != rejected:
                return held[0]
            params = auth.realm or {}
            realm = urllib.parse.urlsplit(params.get("realm", ""))
            if realm.scheme != "https" and not (realm.scheme == "http" and _is_loopback(realm.netloc)):
                raise self.refused(f"{action}: registry {host} names a token realm that is not https")
            query = [("service", params["service"])] if params.get("service") else []
            query += [("scope", scope) for scope in key]
            path = (realm.path or "/") + "?" + urllib.parse.urlencode(query)
            status, _, body = self._send("GET", realm.scheme, realm.netloc, path, self._basic(credential), action,
                                         None, count)
            if status != 200:
                raise self.error(status, action, realm.netloc, credential, what="token")
            try:
                answer = json.loads(body)
                token = answer.get("token") or answer["access_token"]
                lifetime = float(answer.get("expires_in") or TOKEN_LIFETIME)
            except (ValueError, KeyError, AttributeError, TypeError):
                raise self.refused(f"{action}: the token service of {host} gave an unreadable answer") from None
            header = f"Bearer {token}"
            auth.tokens[key] = (header, self._clock() + max(lifetime - _TOKEN_MARGIN, lifetime / 2))
            auth.known.set()
            return header

    def _send(self, method: str, scheme: str, host: str, path: str, header: str | None, action: str,
              extra: Mapping[str, str] | None, count: Callable[[], None] | None):
        for _ in range(_MAX_REDIRECTS + 1):
            headers = {"Accept": ACCEPT, "User-Agent": "reconciler", **(extra or {})}
            if header:
                headers["Authorization"] = header
            with self._lock:
                self.requests += 1
            if count is not None:
                count()
            conn = self._open(scheme, host)
            try:
                conn.request(method, path, headers=headers)
                response = conn.getresponse()
                body = response.read() if method != "HEAD" else b""
            except (OSError, http.client.HTTPException) as exc:
                raise RegistryDown(f"{action}: registry {host} is unreachable ({type(exc).__name__}: {exc})") from None
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
        raise self.refused(f"{action}: too many redirects")

    def _open(self, scheme: str, host: str) -> http.client.HTTPConnection:
        if self._connect is not None:
            return self._connect(scheme, host, self.timeout)
        if scheme == "https":
            return http.client.HTTPSConnection(host, timeout=self.timeout)
        return http.client.HTTPConnection(host, timeout=self.timeout)

    def error(self, status: int, action: str, host: str, credential: Credential | None,
              what: str = "manifest") -> Exception:
        """The error for an answer that is not the one asked for: TemporaryError for 5xx and 429, else ``refused``."""
        if status in (429,) or status >= 500:
            return RegistryDown(f"{action}: registry {host} answered {status}")
        if status == 401:
            who = f"as user {credential.username!r} (credentials from {credential.source})" if credential \
                else "and none are configured"
            return self.refused(f"{action}: authentication failed for registry {host} {who}")
        if status == 404:
            return self.refused(f"{action}: image not found on registry {host}")
        if status == 403:
            return self.refused(f"{action}: registry {host} denied access (403)")
        return self.refused(f"{action}: registry {host} answered {status} to the {what} request")
