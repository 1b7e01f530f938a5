"""Opening the run's one connection to the engine: bounded connects, and the engine's identity.

Why a module of its own: docker-py gives every request one number as both
connect and read timeout (120 s here, so a black-holed ``tcp://`` address
hung for minutes), and none at all for builds and pulls, which stream for as
long as they take. ``EngineClient`` fills in a short connect timeout on the one
path every request takes (``requests.Session.send``, which accepts a
``(connect, read)`` pair), so read timeouts stay as they were: 120 s for
ordinary calls, none for builds and pulls.

The SDK's own version negotiation asks ``/version`` at construction. We ask
one unversioned ``/info`` instead, with the same bounded connect: its body
holds the engine's ID (what the stack lock is keyed on, so two URLs reaching
one engine take one lock) and its ``Api-Version`` header the version to speak.
A converged apply still makes one read before its one list call per kind.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import docker
import docker.constants
import docker.errors
import docker.utils
import requests

from reconciler.errors import PermanentError

__all__ = ["CONNECT_TIMEOUT_ENV", "DEFAULT_CONNECT_TIMEOUT", "READ_TIMEOUT", "EngineClient", "Engine",
           "connect_timeout", "open_engine"]

CONNECT_TIMEOUT_ENV = "RECONCILER_CONNECT_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 120  # seconds to wait for an answer to an ordinary call (builds and pulls: no limit)


class EngineClient(docker.APIClient):
    """A ``docker.APIClient`` whose every request gives up connecting after ``connect_timeout`` seconds."""

    def __init__(self, *args, connect_timeout: float, **kwargs) -> None:
        self.connect_timeout = connect_timeout  # before the SDK's constructor: it may already send a request
        super().__init__(*args, **kwargs)

    def send(self, request, **kwargs):
        """Send as ``requests`` does, with the connect part of the timeout bounded."""
        kwargs["timeout"] = _bounded(kwargs.get("timeout"), self.connect_timeout)
        return super().send(request, **kwargs)


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
    if engine_url.startswith("ssh://"):
        settings["use_ssh_client"] = True  # the ssh binary, not paramiko (not a dependency)
    return settings


def connect_timeout(environ=os.environ) -> float:
    """Seconds to wait for a connection to the engine: ``RECONCILER_CONNECT_TIMEOUT``, else 5."""
    text = environ.get(CONNECT_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_CONNECT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise PermanentError(f"{CONNECT_TIMEOUT_ENV} must be a positive number of seconds, got {text!r}")
    return value


@dataclass(frozen=True)
class Engine:
    """The run's client and what the engine said about itself when we connected."""

    client: EngineClient
    id: str  # the engine's ID from /info ("" when it gave none)
    #: The ``Swarm`` part of /info (``LocalNodeState``, ``ControlAvailable``, ``Cluster``...), read in the same
    #: request: a Swarm runtime learns from it, for free, that this engine manages no Swarm.
    swarm: dict | None = None


def open_engine(engine_url: str | None, *, tls=None) -> Engine:
    """Connect to ``engine_url`` (else ``DOCKER_HOST``, its TLS settings, then the local socket).

    ``tls`` (a ``reconciler.model.TLSFiles``) gives client certificate files
    for a ``tcp://`` engine that verifies its clients. ``ssh://`` engines are
    reached through the system's ``ssh`` client (its config, keys and agent).
    Makes exactly one request, ``GET /info``. Raises the SDK's or requests'
    exceptions; the caller maps them onto the project's errors.
    """
    settings = _settings(engine_url, tls) if engine_url else docker.utils.kwargs_from_env()
    limit = connect_timeout()
    # No request yet: a fixed version skips the SDK's negotiation, /info below does it instead.
    probe = EngineClient(version=docker.constants.MINIMUM_DOCKER_API_VERSION, timeout=READ_TIMEOUT,
                         connect_timeout=limit, **settings)
    try:
        response = probe.get(f"{probe.base_url}/info", timeout=READ_TIMEOUT)
        response.raise_for_status()
        version = response.headers.get("Api-Version") or probe.version(api_version=False)["ApiVersion"]
        info = response.json()
        engine_id = str(info.get("ID") or "")
        swarm = info.get("Swarm") or {}
    except requests.exceptions.HTTPError as exc:
        raise docker.errors.APIError(exc, response=exc.response) from exc
    finally:
        probe.close()
    client = EngineClient(version=version, timeout=READ_TIMEOUT, connect_timeout=limit, **settings)
    return Engine(client, engine_id, swarm)
