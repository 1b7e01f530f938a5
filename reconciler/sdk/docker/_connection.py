"""Opening the run's one connection to the engine: bounded connects and first answers, and the engine's identity.

Why a module of its own: docker-py gives every request one number as both
connect and read timeout (120 s here, so a black-holed ``tcp://`` address
hung for minutes), and none at all for builds and pulls, which stream for as
long as they take. ``EngineClient`` fills in a short connect timeout on the one
path every request takes (``requests.Session.send``, which accepts a
``(connect, read)`` pair), and a short read timeout, the engine timeout, on
every ordinary read (a GET that does not stream: ``/info``, the lists and
inspects of observe), so an engine that accepts connections and never answers
fails within seconds. Other read timeouts stay as they were: 120 s for writes
and streamed reads, none for builds, pulls and the event stream.

The SDK's own version negotiation asks ``/version`` at construction. We ask
one unversioned ``/info`` instead, with the same bounds: its body
holds the engine's ID (what the stack lock is keyed on, so two URLs reaching
one engine take one lock) and its ``Api-Version`` header the version to speak.
A converged apply still makes one read before its one list call per kind.
While that first answer is late, a warning says what is being waited for.

Several URLs, comma-separated (``tcp://m1:2375,tcp://m2:2375``), name the
managers of one Swarm: the first that answers is used. Another than the first
is used only when it is a manager whose swarm lists, among its managers, the
host of every URL before it that did not answer (its ``/info`` says so: no
extra request), so a mistyped list never sends a stack to another swarm.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import docker
import docker.constants
import docker.errors
import docker.utils
import requests
import requests.adapters

from ...errors import PermanentError

__all__ = ["CONNECT_TIMEOUT_ENV", "DEFAULT_CONNECT_TIMEOUT", "DEFAULT_ENGINE_TIMEOUT", "ENGINE_TIMEOUT_ENV",
           "READ_TIMEOUT", "EngineClient", "Engine", "FailoverRefused", "connect_timeout", "engine_timeout",
           "engine_urls", "failover_problem", "open_engine"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_ENV = "RECONCILER_CONNECT_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT = 5.0
ENGINE_TIMEOUT_ENV = "RECONCILER_ENGINE_TIMEOUT"
DEFAULT_ENGINE_TIMEOUT = 10.0  # seconds to wait for the answer to an ordinary read (/info, a list, an inspect)
READ_TIMEOUT = 120  # seconds to wait for an answer to a write or a streamed read (builds and pulls: no limit)
_NOTICE_AFTER = 3.0  # seconds without the first answer before a warning says what is being waited for


class EngineClient(docker.APIClient):
    """A ``docker.APIClient`` whose every request gives up connecting after ``connect_timeout`` seconds,
    and whose ordinary reads give up waiting for their answer after ``answer_timeout`` seconds."""

    def __init__(self, *args, connect_timeout: float, answer_timeout: float = DEFAULT_ENGINE_TIMEOUT,
                 base_url: str | None = None, **kwargs) -> None:
        self.connect_timeout = connect_timeout  # before the SDK's constructor: it may already send a request
        self.answer_timeout = answer_timeout
        if base_url and base_url.startswith("ssh://"):
            # What the SDK does for ssh://, with our paramiko-free transport (``_ssh``).
            # The socket URL only satisfies the constructor: no request goes to it.
            from ._ssh import SshAdapter

            super().__init__(*args, base_url="unix:///var/run/docker.sock", **kwargs)
            self.mount("http+docker://ssh", SshAdapter(base_url, connect_timeout=connect_timeout,
                                                        timeout=kwargs.get("timeout") or READ_TIMEOUT,
                                                        max_pool_size=kwargs.get("max_pool_size") or 10))
            self.base_url = "http+docker://ssh"
            return
        super().__init__(*args, base_url=base_url, **kwargs)
        if kwargs.get("max_pool_size") and str(self.base_url).startswith(("http://", "https://")):
            # The SDK's tcp:// adapters are requests' own, whose pools keep 10 connections whatever it is told.
            for prefix in ("http://", "https://"):
                self.mount(prefix, requests.adapters.HTTPAdapter(pool_maxsize=kwargs["max_pool_size"]))

    def send(self, request, **kwargs):
        """Send as ``requests`` does, with the connect part of the timeout bounded."""
        kwargs["timeout"] = _bounded(kwargs.get("timeout"), self.connect_timeout)
        return super().send(request, **kwargs)

    def _get(self, url, **kwargs):
        """The SDK's GET: one that does not stream and names no timeout is answered within ``answer_timeout``.

        The SDK's streamed reads (logs, exports, the event stream) keep theirs.
        """
        if not kwargs.get("stream"):
            kwargs.setdefault("timeout", self.answer_timeout)
        return super()._get(url, **kwargs)

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        """As ``requests`` does, except that an engine's own CA (``tls: ca``) beats ``$REQUESTS_CA_BUNDLE``.

        ``requests`` lets that variable override a session's ``verify`` (its
        issue 3829), so a client certificate setup failed to verify the engine
        wherever the variable is set (many distributions' Python images do).
        """
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if isinstance(self.verify, str) and verify in (None, True):
            settings["verify"] = self.verify
        return settings


def _bounded(timeout, connect: float):
    """``timeout`` as a (connect, read) pair whose connect part is at most ``connect``."""
    if timeout is None:
        return (connect, None)
    if isinstance(timeout, tuple):
        first, read = timeout
        return (connect if first is None else min(first, connect), read)
    if isinstance(timeout, (int, float)):
        return (min(timeout, connect), timeout)
    return timeout  # a urllib3 Timeout object: the caller chose both parts


def _settings(engine_url: str, tls) -> dict:
    """The SDK's client arguments for one URL and, maybe, its client certificates."""
    settings: dict = {"base_url": engine_url}
    if tls is not None:
        import docker.tls

        settings["tls"] = docker.tls.TLSConfig(client_cert=(tls.cert, tls.key), ca_cert=tls.ca, verify=True)
    return settings


def connect_timeout(environ=os.environ) -> float:
    """Seconds to wait for a connection to the engine: ``RECONCILER_CONNECT_TIMEOUT``, else 5."""
    return _seconds(environ, CONNECT_TIMEOUT_ENV, DEFAULT_CONNECT_TIMEOUT)


def engine_timeout(given: float | None = None, environ=os.environ) -> float:
    """Seconds to wait for the answer to an ordinary read: ``given`` (``--engine-timeout``), else
    ``RECONCILER_ENGINE_TIMEOUT``, else 10."""
    if given is not None:
        return given
    return _seconds(environ, ENGINE_TIMEOUT_ENV, DEFAULT_ENGINE_TIMEOUT)


def _seconds(environ, name: str, default: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise PermanentError(f"{name} must be a positive number of seconds, got {text!r}")
    return value


@dataclass(frozen=True)
class Engine:
    """The run's client and what the engine said about itself when we connected (or ``use_client`` was told)."""

    client: docker.APIClient  # an EngineClient when we connected
    id: str  # the engine's ID from /info ("" when it gave none)
    #: The ``Swarm`` part of ``/info`` (node state, whether it is a manager, the cluster, its managers).
    swarm: dict = field(default_factory=dict, compare=False)


class FailoverRefused(PermanentError):
    """No URL of a list of managers could be used, and at least one answered but was refused."""


def engine_urls(engine_url: str | None) -> list[str]:
    """The URLs ``engine_url`` names, in order: several are comma-separated (the managers of one swarm)."""
    if not engine_url:
        return []
    return [url.strip() for url in engine_url.split(",") if url.strip()]


def open_engine(engine_url: str | None, *, tls=None, timeout: float | None = None,
                pool_size: int | None = None) -> Engine:
    """Connect to ``engine_url`` (else ``DOCKER_HOST``, its TLS settings, then the local socket).

    ``tls`` (a ``reconciler.model.TLSFiles``) gives client certificate files
    for a ``tcp://`` engine that verifies its clients. ``ssh://`` engines are
    reached through the system's ``ssh`` client (its config, keys and agent).
    ``timeout``: the engine timeout (see ``engine_timeout``), for ``/info`` and
    every ordinary read of the client made. ``pool_size``: connections its pool
    keeps (default: the SDK's 10), for a client many threads share.
    Makes exactly one request, ``GET /info``, per URL tried. Raises the SDK's or
    requests' exceptions (the last URL's, for a list); the caller maps them onto
    the project's errors. For a list, see the module's docstring.
    """
    urls = engine_urls(engine_url)
    answer = engine_timeout(timeout)
    sizing = {"pool_size": pool_size} if pool_size else {}
    if len(urls) <= 1:
        return _open_one(urls[0] if urls else None, tls, answer, **sizing)
    down: list[tuple[str, Exception]] = []
    refused: list[str] = []
    for index, url in enumerate(urls):
        try:
            engine = _open_one(url, tls, answer, **sizing)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            down.append((url, exc))
            continue
        problem = failover_problem(engine.swarm, [u for u, _ in down], more=index < len(urls) - 1, first=index == 0)
        if problem is None:
            if down:
                log.warning("engine %s did not answer (%s): using %s, a manager of the same swarm",
                            ", ".join(u for u, _ in down), _short_reason(down[-1][1]), url)
            return engine
        engine.client.close()
        refused.append(f"{url}: {problem}")
    if refused:
        raise FailoverRefused("no engine of " + ", ".join(urls) + " can be used: "
                              + "; ".join([f"{u}: did not answer" for u, _ in down] + refused))
    raise down[-1][1]


def failover_problem(swarm: dict, unanswered: list[str], *, more: bool, first: bool) -> str | None:
    """Why an engine that answered (its ``/info`` ``Swarm`` part) must not be used, or None.

    ``unanswered``: the URLs before it in the list that did not answer. The
    first URL is used as it is, unless it is a swarm node that is not a manager
    and another URL follows. Any later one must be a manager whose swarm lists
    the host of every unanswered URL among its managers.
    """
    manager = bool(swarm.get("ControlAvailable"))
    if first:
        active = swarm.get("LocalNodeState") == "active"
        return "a swarm node that is not a manager" if active and not manager and more else None
    if not manager:
        return "not a manager of a swarm: a list of engines names the managers of one swarm"
    managers = {_host_addresses(str(m.get("Addr", "")).rpartition(":")[0]) for m in swarm.get("RemoteManagers") or []}
    known = set().union(*managers) if managers else set()
    for url in unanswered:
        host = urlsplit(url).hostname
        if not host:
            return f"cannot tell whether {url} is a manager of its swarm (name managers by tcp:// or ssh:// address)"
        if not _host_addresses(host) & known:
            return f"its swarm does not list {url} among its managers: not the same swarm"
    return None


def _host_addresses(host: str) -> frozenset[str]:
    """``host`` and the addresses it resolves to (itself only, when it does not resolve)."""
    host = host.strip("[]")
    if not host:
        return frozenset()
    try:
        return frozenset({host} | {info[4][0] for info in socket.getaddrinfo(host, None)})
    except (OSError, UnicodeError):
        return frozenset({host})


def _short_reason(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _open_one(engine_url: str | None, tls, answer: float, *, pool_size: int | None = None) -> Engine:
    settings = _settings(engine_url, tls) if engine_url else docker.utils.kwargs_from_env()
    limit = connect_timeout()
    # No request yet: a fixed version skips the SDK's negotiation, /info below does it instead.
    probe = EngineClient(version=docker.constants.MINIMUM_DOCKER_API_VERSION, timeout=READ_TIMEOUT,
                         connect_timeout=limit, answer_timeout=answer, **settings)
    where = engine_url or settings.get("base_url") or "unix:///var/run/docker.sock"
    notice = threading.Timer(min(_NOTICE_AFTER, answer / 2), log.warning, args=(
        "waiting for the engine at %s to answer /info (at most %gs: --engine-timeout, %s)", where, answer,
        ENGINE_TIMEOUT_ENV))
    notice.daemon = True
    notice.start()
    try:
        response = probe.get(f"{probe.base_url}/info", timeout=(limit, answer))
        response.raise_for_status()
        version = response.headers.get("Api-Version") or probe.version(api_version=False)["ApiVersion"]
        info = response.json()
    except requests.exceptions.HTTPError as exc:
        raise docker.errors.APIError(exc, response=exc.response) from exc
    finally:
        notice.cancel()
        probe.close()
    if pool_size:
        settings["max_pool_size"] = pool_size
    client = EngineClient(version=version, timeout=READ_TIMEOUT, connect_timeout=limit, answer_timeout=answer,
                          **settings)
    return Engine(client, str(info.get("ID") or ""), swarm=dict(info.get("Swarm") or {}))
