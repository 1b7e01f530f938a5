"""The daemon's one engine connection, shared by every stack's passes: opened once, again after a failure.

Why a module of its own: each pass of each stack used to make its own client,
so a new connection pool and a ``GET /info`` per pass, and the client was freed
only when the garbage collector broke the cycle through its response hook, so
descriptors piled up. With ``DriverContext.engine_shared`` (a ``Reconciler``
made with ``shared_engine=True``), the reconciler opens one ``EngineClient``:
its pool, negotiated API version, engine ID and Swarm part of ``/info`` serve
every stack and pass. Each context gets a ``PassClient`` that sends through
the shared client's adapters (the pool) with a response hook of its own, so
``context.stats`` counts that context's requests only and no hook accumulates
on the shared client.

A request that fails to reach the engine (refused, reset, timed out) marks
the connection failed: the next pass that needs it opens it again (one
``/info``), so a restarted engine, or another manager of a swarm, is found
again. The opening is a single flight (``reconciler.drivers.FreshReads``):
passes that need it at once wait for one ``/info``.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable

import requests
import requests.cookies
import requests.hooks

from ...drivers import DriverContext
from ...drivers.freshread import fresh_reads
from ._connection import Engine, EngineClient

__all__ = ["SHARED_POOL_SIZE", "PassClient", "pass_engine"]

#: Connections the shared pool keeps: enough for a worker pool's passes observing their kinds at once.
SHARED_POOL_SIZE = 64
_ENGINE_KEY = "reconciler.sdk.docker.shared_engine"  # in engine_shared: the _SharedEngine; in FreshReads: its opening
_PASS_KEY = "reconciler.sdk.docker.pass_engine"  # in context.shared: (the shared Engine, this context's Engine)
_LOCK = threading.Lock()  # held for moments only


class PassClient(EngineClient):
    """One context's client: the shared client's settings and adapters (its pool), hooks and cookies of its own.

    Made without the SDK's constructor, which would read docker's config files
    and make a pool of its own. Closing it closes nothing: the pool is the
    shared client's, closed by whoever opens the engine again.
    """

    _on_failure: Callable[[], None]

    @classmethod
    def sharing(cls, shared: EngineClient, on_failure: Callable[[], None], hook: Callable) -> PassClient:
        """A client sending through ``shared``'s adapters, ``hook`` its one response hook (the context's counter);
        ``on_failure()`` when a request cannot reach the engine."""
        client = cls.__new__(cls)
        client.__dict__.update(vars(shared))  # the version, base URL, timeouts, TLS and auth settings
        client.hooks = requests.hooks.default_hooks()
        client.hooks["response"].append(hook)
        client.headers = shared.headers.copy()
        client.cookies = requests.cookies.cookiejar_from_dict({})
        client.adapters = OrderedDict(shared.adapters)  # the same adapter objects: the same pool
        client._on_failure = on_failure
        return client

    def send(self, request, **kwargs):
        """Send through the shared pool; a request that cannot reach the engine marks the connection failed."""
        try:
            return super().send(request, **kwargs)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout):
            self._on_failure()
            raise

    def close(self) -> None:
        """Nothing to close: the pool is shared."""


class _SharedEngine:
    """The reconciler's engine as last opened, and when a request last failed to reach it."""

    def __init__(self) -> None:
        self.failed_at = 0.0  # monotonic: an engine opened before then is not used again
        self.current: Engine | None = None

    def failed(self) -> None:
        self.failed_at = time.monotonic()

    def open(self, connect: Callable[[], Engine]) -> Engine:
        """``connect()``'s engine in place of the one before it, whose pool is closed."""
        engine = connect()
        with _LOCK:
            old, self.current = self.current, engine
        if old is not None:
            old.client.close()  # requests in flight on it end on their own connections
        return engine


def pass_engine(context: DriverContext, connect: Callable[[], Engine], hook: Callable) -> Engine:
    """``context``'s view of the engine its reconciler shares: opened with ``connect()`` when none is usable.

    ``connect`` opens a new connection (one ``GET /info``, counted by the
    caller in the context that opens it). The answer's client is the
    context's ``PassClient`` with ``hook`` as its response hook, made once per
    context and again after the shared engine was opened again.
    """
    assert context.engine_shared is not None
    with _LOCK:
        shared = context.engine_shared.get(_ENGINE_KEY)
        if shared is None:
            shared = context.engine_shared[_ENGINE_KEY] = _SharedEngine()
    base = fresh_reads(context).read(_ENGINE_KEY, lambda: shared.open(connect), after=shared.failed_at)
    with _LOCK:
        mine = context.shared.get(_PASS_KEY)
        if mine is None or mine[0] is not base:
            client = PassClient.sharing(base.client, shared.failed, hook)
            mine = context.shared[_PASS_KEY] = (base, Engine(client, base.id, swarm=base.swarm))
    return mine[1]
