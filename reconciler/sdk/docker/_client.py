"""The engine kit's core: the run's one client, and what every driver on a Docker engine shares.

``EngineDriver`` is the base of the docker plugin's drivers, of the swarm
plugin's, and of any third-party driver built on the engine (the ramdisk
example is one): it holds the run's one engine client (every HTTP response
counted as a read, GET/HEAD, or a write, which is how tests and benchmarks
prove a converged apply writes nothing), ``engine_errors`` maps the Docker
SDK's exceptions onto the project's temporary and permanent errors, and
``owned_filter`` selects a stack's objects. ``use_client`` is the one seam for
a client made elsewhere (unit tests hand it
``reconciler.testing.fakedocker.FakeDockerAPI``). Import it all from
``reconciler.sdk.docker``: this module is private and may move.
"""
from __future__ import annotations

import os
import re
import threading
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Mapping

import docker
import docker.errors
import requests.exceptions

from ...drivers import DriverContext, stream_opened
from ...errors import EngineTimeout, EngineUnreachable, PermanentError, TemporaryError
from ...labels import CONFIG_HASH, KIND, STACK, is_owned, owner_selectors
from ...model import Kind, LiveObject
from ._connection import (CONNECT_TIMEOUT_ENV, ENGINE_TIMEOUT_ENV, Engine, connect_timeout, engine_timeout, engine_urls,
                          open_engine)
from ._shared import SHARED_POOL_SIZE, pass_engine
from ._listing import listed

__all__ = ["EngineDriver", "api_client", "engine_errors", "engine_identity", "engine_swarm", "follow_events", "is_ours",
           "owned_filter", "use_client"]

_ENGINE_KEY = "reconciler.sdk.docker.engine"  # in shared: the run's Engine (its client, ID and Swarm part of /info)
_FAILURE_KEY = "reconciler.sdk.docker.connect_failure"  # in pass_cache: this pass already failed to connect
_CONNECTING_KEY = "reconciler.sdk.docker.connecting"  # in shared: the lock of this context's one connect
_CLIENT_LOCK = threading.Lock()  # held for moments only, never across a request
# The engine answers 500 for faults in the object's own config (a missing
# executable, a bad mount, an invalid subnet): retrying those only wastes time.
_PERMANENT_500 = re.compile(
    r"OCI runtime|starting container process|executable file not found|no such file|invalid mount"
    r"|port is already allocated|address already in use|invalid|failed to parse|out of range"
    r"|not a swarm manager|non-overlapping|overlaps with|already exists|not supported",
    re.I,
)


def api_client(context: DriverContext) -> docker.APIClient:
    """The low-level client for ``context.engine_url`` (``DOCKER_HOST``, then the local socket).

    Made on first use and shared by every driver of the run (unless the run was
    given one: ``use_client``). A failed attempt to connect is the answer for
    the rest of the observe pass (the core clears ``pass_cache`` when one
    starts): the drivers observed beside the one that tried must not each wait
    out the connect timeout again.
    """
    return _engine(context).client


def use_client(context: DriverContext, client: docker.APIClient, *, engine_id: str = "",
               swarm: Mapping | None = None) -> None:
    """Make ``client`` the run's engine client, for every driver built on this kit, instead of connecting.

    The one seam for a client made elsewhere: a
    ``reconciler.testing.fakedocker.FakeDockerAPI`` in unit tests, or a client
    the caller opened itself. Its responses are counted in ``context.stats`` as
    a connection's are (through its ``hooks["response"]``, as a ``requests``
    session has). ``engine_id`` and ``swarm`` stand for what ``/info`` would have
    said: what ``engine_identity`` and ``engine_swarm`` answer.
    """
    with _CLIENT_LOCK:
        _use(context, Engine(client, engine_id, swarm=dict(swarm or {})))


def engine_identity(context: DriverContext) -> str | None:
    """The ID the engine gave when the run connected to it (connecting first if needed), or None."""
    return _engine(context).id or None


def engine_swarm(context: DriverContext) -> dict:
    """The ``Swarm`` part of the engine's ``docker info``, as read when the run connected (no call of its own).

    ``ControlAvailable`` is true on a Swarm manager; ``Cluster.ID`` names its swarm.
    """
    return dict(_engine(context).swarm)


def _engine(context: DriverContext) -> Engine:
    """The run's engine, connecting on first use (see ``api_client``).

    Connecting holds a lock of this context's own: another run's drivers (a
    fleet's other targets, each a context of its own) never wait for an
    engine that is slow to answer. With ``context.engine_shared`` (a daemon's
    reconciler) the connection is the reconciler's, opened once for every
    stack and pass and again after a request failed to reach it (``_shared``).
    """
    with _CLIENT_LOCK:
        engine = context.shared.get(_ENGINE_KEY)
        if engine is not None:
            return engine
        connecting = context.shared.setdefault(_CONNECTING_KEY, threading.Lock())
    if context.engine_shared is not None:
        # No failure remembered in pass_cache here: a context that lives on (an event follower's) must be
        # able to open the engine again; drivers connecting at once already share one attempt.
        return pass_engine(context, lambda: _connect_counted(context), _counter(context))
    with connecting:
        engine = context.shared.get(_ENGINE_KEY)
        if engine is None:
            failure = context.pass_cache.get(_FAILURE_KEY)
            if failure is not None:
                raise type(failure)(str(failure))
            try:
                engine = _connect_counted(context)
            except EngineUnreachable as exc:
                context.pass_cache[_FAILURE_KEY] = exc
                raise
            with _CLIENT_LOCK:
                _use(context, engine)
    return engine


def _connect_counted(context: DriverContext) -> Engine:
    engine = _connect(context, pool_size=SHARED_POOL_SIZE if context.engine_shared is not None else None)
    context.stats["read"] += 1  # the one GET /info that negotiated the API version
    return engine


def _use(context: DriverContext, engine: Engine) -> None:
    hooks = getattr(engine.client, "hooks", None)
    if hooks is not None:
        hooks.setdefault("response", []).append(_counter(context))
    context.shared[_ENGINE_KEY] = engine


def _connect(context: DriverContext, *, pool_size: int | None = None) -> Engine:
    where = ", ".join(engine_urls(context.engine_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"))
    answer = engine_timeout(context.engine_timeout)
    try:
        sizing = {"pool_size": pool_size} if pool_size else {}
        return open_engine(context.engine_url, tls=context.engine_tls, timeout=answer, **sizing)
    except requests.exceptions.ConnectTimeout as exc:
        raise EngineTimeout(f"cannot reach the Docker engine at {where}: no connection within "
                            f"{connect_timeout():g}s (the connect timeout, {CONNECT_TIMEOUT_ENV})") from exc
    except requests.exceptions.ReadTimeout as exc:
        raise EngineTimeout(f"the engine at {where} accepted the connection but did not answer /info within "
                            f"{answer:g}s (the engine timeout: --engine-timeout, {ENGINE_TIMEOUT_ENV})") from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineUnreachable(f"cannot reach the Docker engine at {where}: {_reason(exc)}") from exc


def _counter(context: DriverContext):
    def count(response, *args, **kwargs):
        kind = "read" if response.request.method in ("GET", "HEAD") else "write"
        context.stats[kind] += 1
        return response

    return count


def follow_events(api: docker.APIClient, types: list[str], stop: threading.Event,
                  name_of: Callable[[dict], T | None], *, source: str = "engine") -> Iterator[T]:
    """The engine's event stream of ``types``, as what ``name_of`` makes of each event (None, "": skip it).

    ``name_of`` may return the object's name (``ObjectDriver.events``) or a
    whole ``EngineEvent`` (``ObjectDriver.engine_events``).

    Calls ``stream_opened(stop)`` once the engine has answered the request.

    Returns when ``stop`` is set (a watcher thread closes the stream, as a blocked
    read ends only then); raises ``EngineUnreachable`` when the stream breaks or
    the engine closes it, so the loop opens it again.
    """
    with engine_errors(f"follow {source} events"):
        stream = api.events(decode=True, filters={"type": types})
    done = threading.Event()

    def close_on_stop() -> None:
        while not (stop.wait(5) or done.is_set()):  # idle daemons must not spin
            pass
        stream.close()

    threading.Thread(target=close_on_stop, daemon=True, name=f"{source}-events-closer").start()
    stream_opened(stop)  # the engine answered: it reports every event from here on
    try:
        for event in stream:
            found = name_of(event)
            if found:
                yield found
    except Exception as exc:  # the stream broke: the engine went away, or stop closed it
        if not stop.is_set():
            raise EngineUnreachable(f"the {source}'s event stream broke: {exc}") from exc
    finally:
        done.set()
    if not stop.is_set():
        raise EngineUnreachable(f"the {source} closed its event stream")


def is_ours(existing: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """True when an object found under a wanted name carries exactly the labels we meant to give it."""
    existing = existing or {}
    return all(existing.get(key) == labels.get(key) for key in (STACK, KIND, CONFIG_HASH))


def owned_filter(stack: str, kind: str) -> dict:
    """The engine list filter that selects the objects of ``kind`` claiming ``stack``.

    A container run from an image we built carries the image's labels, ``kind``
    image: it is not selected as a container of the stack (``labels.is_owned``).
    """
    return {"label": owner_selectors(stack, kind)}


class EngineDriver:
    """The shared opening of a driver whose objects live on the Docker engine.

    Subclass it together with a role (``class MyVolumes(EngineDriver, StorageDriver)``):
    ``self.api`` is the run's low-level ``docker.APIClient``, created on first use
    and shared by every driver of the run.
    """

    kind: Kind

    def __init__(self, context: DriverContext) -> None:
        self.context = context

    @property
    def api(self) -> docker.APIClient:
        return api_client(self.context)

    def engine_id(self) -> str | None:
        """The engine's ID (``docker info``), read once per run when the client connects."""
        return engine_identity(self.context)

    def listed(self, stack: str, wanted: Iterable[str], *, owned: Callable[[], list[dict]],
               everything: Callable[[], list[dict]], lookup: Callable[[list[str]], Iterable[dict]],
               name_of: Callable[[dict], str]) -> dict[str, dict]:
        """What ``observe`` reports, as the engine lists it: ``stack``'s objects of this kind plus wanted names.

        ``owned()``: the stack's filtered list call; ``everything()``: the
        kind's unfiltered one; ``lookup(names)``: the call for wanted names the
        stack does not own. One run (the CLI) makes the filtered calls; a
        reconciler sharing its engine (the daemon) lists the kind once per
        moment for every stack (``_listing.listed``).
        """
        return listed(self.context, stack, self.kind, wanted, owned=owned, everything=everything, lookup=lookup,
                      name_of=name_of)

    def live(self, name: str, id: str, labels: Mapping[str, str] | None, **fields: object) -> LiveObject:
        """A ``LiveObject`` of this driver's kind, owned when its labels claim the run's stack for that kind."""
        labels = labels or {}
        return LiveObject(kind=self.kind, name=name, id=id, labels=labels,
                          owned=is_owned(labels, self.context.stack, kind=self.kind), **fields)


@contextmanager
def engine_errors(action: str, *, missing_ok: bool = False) -> Iterator[None]:
    """Turn docker/requests exceptions into Temporary/Permanent errors that say what failed.

    ``missing_ok``: an object the engine does not have (its 404, ``NotFound``) is
    no error, as for a delete of what is already gone; the block ends there.
    """
    try:
        yield
    except docker.errors.APIError as exc:
        if missing_ok and isinstance(exc, docker.errors.NotFound):
            return
        message = f"{action}: {exc.explanation or exc}"
        status = exc.status_code or 0
        if status >= 500 and not _PERMANENT_500.search(str(exc.explanation or "")):
            raise TemporaryError(message) from exc
        raise PermanentError(message) from exc
    except requests.exceptions.ConnectTimeout as exc:
        raise EngineTimeout(f"{action}: cannot reach the engine: no connection within its connect timeout "
                            f"({CONNECT_TIMEOUT_ENV})") from exc
    except requests.exceptions.ReadTimeout as exc:
        raise EngineTimeout(f"{action}: the engine accepted the connection but did not answer{_limit(exc)}") from exc
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise EngineUnreachable(f"{action}: cannot reach the engine: {_reason(exc)}") from exc
    except docker.errors.DockerException as exc:
        text = str(exc)
        if "Connection" in text or "connect" in text or "No such file" in text:
            raise EngineUnreachable(f"{action}: cannot reach the engine: {_reason(exc)}") from exc
        raise PermanentError(f"{action}: {text}") from exc


_REASONS = ("No such file or directory", "Connection refused", "Permission denied", "timed out",
            "Name or service not known", "Connection reset")


def _reason(exc: Exception) -> str:
    """The part of a deeply wrapped connection error that tells the user something."""
    text = str(exc)
    said = re.search(r"ssh exited \d+: [^'\"]*", text)  # the ssh client's own words (reconciler.sdk.docker._ssh)
    if said:
        return said.group(0).rstrip(")")
    for reason in _REASONS:
        if reason.lower() in text.lower():
            return reason.lower() + (" (is dockerd running?)" if reason != "Permission denied" else "")
    return _short(exc)


def _limit(exc: Exception) -> str:
    """" within Ns": the read limit a timeout names, or ""."""
    found = re.search(r"read timeout=([\d.]+)", str(exc))
    return f" within {float(found.group(1)):g}s" if found else ""


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "…"
