"""The Docker engine kit: what every driver whose objects live on a Docker engine shares.

Why it is part of the SDK and not of the docker plugin: a second runtime on the
same engine (the built-in swarm plugin), and third-party drivers built on it
(the ramdisk, isolated and localtag examples), need the run's one connection,
the error mapping and the ownership filter, and plugins never import each
other. Everything here is public; the modules behind it are private and may
move:

- ``_client``: the run's one client (``api_client``, ``EngineDriver``, the
  ``use_client`` seam), ``engine_errors``, ``owned_filter``, ``follow_events``;
- ``_shared``: the one connection a daemon's reconciler shares between every
  stack and pass (``PassClient``: one context's client over the shared pool);
- ``_listing``: what a driver lists (``EngineDriver.listed``): the stack's
  filtered list, or the kind's whole list once per moment for every stack;
- ``_connection``: opening it, with a bounded connect and first answer
  (``open_engine``, ``connect_timeout``, ``engine_timeout``), and failing over
  between a swarm's managers;
- ``_ssh``: ``ssh://`` engines through the system's ``ssh`` client.

It imports the Docker SDK, so ``reconciler.sdk`` does not import it: a plugin
imports it on first use when it wants ``validate`` to stay free of docker-py::

    from reconciler.sdk.docker import EngineDriver, engine_errors, owned_filter
"""
from __future__ import annotations

from ._client import (
    EngineDriver,
    api_client,
    engine_errors,
    engine_identity,
    engine_swarm,
    follow_events,
    is_ours,
    owned_filter,
    use_client,
)
from ._connection import (
    CONNECT_TIMEOUT_ENV,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_ENGINE_TIMEOUT,
    ENGINE_TIMEOUT_ENV,
    Engine,
    EngineClient,
    FailoverRefused,
    connect_timeout,
    engine_timeout,
    engine_urls,
    failover_problem,
    open_engine,
)
from ._ssh import SSH_CONFIG_ENV, ssh_command

__all__ = [
    "CONNECT_TIMEOUT_ENV",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_ENGINE_TIMEOUT",
    "ENGINE_TIMEOUT_ENV",
    "Engine",
    "EngineClient",
    "EngineDriver",
    "FailoverRefused",

    "SSH_CONFIG_ENV",
    "api_client",
    "connect_timeout",
    "engine_errors",
    "engine_identity",
    "engine_swarm",
    "engine_timeout",
    "engine_urls",
    "failover_problem",
    "follow_events",
    "is_ours",
    "open_engine",
    "owned_filter",
    "ssh_command",
    "use_client",
]
