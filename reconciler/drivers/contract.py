"""The driver contract: what a plugin author implements, and what a driver is given.

The core reaches a backend only through drivers. Four roles, one per object
kind: a *registry* driver for images, a *network* driver, a *storage* driver
for volumes and a *runtime* driver for containers (the registry role has a
room of its own, ``images``). Plugins add them through
the ``reconciler_register_drivers(registry)`` hook (``reconciler.drivers.registry``)
under one or more names (the ``driver:`` a spec names). A driver is created
once per run from its factory, so a factory registered under several names
gives one instance, observed once.

Contract for every driver:

- ``observe(stack, wanted)`` lists what this stack owns (by its labels) plus
  any object whose name is in ``wanted`` (so the plan can refuse to take over
  an object it does not own). ``wanted`` maps each name the spec wants of this
  driver (images: each reference) to its spec (``ImageSpec``, ``NetworkSpec``,
  ...), so a driver may read what it needs from it (an image's ``tracks_tag``,
  a container's ``config_hash``), for instance to read details only of objects
  that changed.
- ``create`` / ``delete`` are idempotent where the backend allows: deleting
  what is already gone is not an error.
- ``create`` returns the new object's id, as ``observe`` will report it in
  ``LiveObject.id``; the core writes it in its record (``reconciler.state``),
  which is what lets it tell its own objects from ones that merely copy their
  labels. A create that returns anything else fails its change with a
  ``PluginError`` naming the driver.
- Backend failures are mapped onto ``TemporaryError`` (retried by the core)
  or ``PermanentError`` (that change fails, its dependents are skipped).
- What a driver refuses in a spec is checked before anything is observed,
  without making the driver: its options by the JSON Schema it declares
  (``ObjectDriver.options_schema``), anything else by the ``Check`` it
  registers with (``check=``).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
import threading
from typing import Any, Callable, ClassVar, Collection, Iterable, Iterator, Mapping, Sequence, TypeVar

from ..addresses import AddressPool
from ..errors import PermanentError
from ..model import (
    ContainerSpec, EngineEvent, Kind, LiveObject, NetworkSpec, Restored, Snapshot, TLSFiles, VolumeSpec,
)

__all__ = [
    "Check",
    "DriverContext",
    "Factory",
    "NetworkDriver",
    "ObjectDriver",
    "Progress",
    "RuntimeDriver",
    "StorageDriver",
    "owned_plus_wanted",
    "stream_opened",
]


def stream_opened(stop: threading.Event) -> None:
    """Tell the loop that an event stream (``events``, ``engine_events``) is open: call it once, before the first event."""
    opened = getattr(stop, "opened", None)
    if opened is not None:  # the loop's; a plain Event (a test, a caller of its own) does not ask
        opened()


@dataclass
class DriverContext:
    """What a driver factory gets: which engine, which stack, and a place to share state.

    ``shared`` lets the drivers of one plugin share a connection for the
    context's lifetime; ``pass_cache`` lets them share reads within one
    observe pass (the core clears it when a pass starts); ``stats`` counts
    backend calls (``"read"``, ``"write"``) so a converged apply can be shown
    to make zero writes. ``progress``, when set, takes one line of progress
    text about a named object (a build step, a pull or push status) as it
    happens; drivers call it from worker threads and must redact secrets first.
    ``engine_tls`` holds the client certificate files for a ``tcp://`` engine
    that verifies its clients (a fleet target's ``tls:``). ``engine_timeout``:
    seconds the engine may take to answer an ordinary read (``--engine-timeout``;
    None: ``RECONCILER_ENGINE_TIMEOUT``, else the backend's default).
    ``address_pools``: where a network driver that picks subnets takes a bridge network's
    from when the spec gives none (``reconciler.addresses``; None: ``DEFAULT_ADDRESS_POOLS``,
    (): none, the engine allocates as it would).
    ``engine_shared``: what every stack's contexts share while the reconciler lives (a daemon's engine
    connection, ``fresh_read``'s lists; None: the CLI). ``fresh_after``: set (monotonic) when the pass is one
    of a burst, a resync sweep, whose lists ``fresh_read`` shares, never one that started earlier; None (an
    ordinary pass: each stack lists its own objects).
    ``state_dir``: the reconciler's state directory (None: ``reconciler.state.default_state_dir()``); a
    driver that keeps files keeps them under ``state_dir / "snapshots"`` (mode 0700).
    """

    stack: str
    engine_url: str | None = None
    engine_tls: TLSFiles | None = None
    engine_timeout: float | None = None
    shared: dict = field(default_factory=dict)
    pass_cache: dict = field(default_factory=dict)
    stats: Counter = field(default_factory=Counter)
    progress: Callable[[str, str], None] | None = None
    address_pools: tuple[AddressPool, ...] | None = None
    engine_shared: dict | None = None
    fresh_after: float | None = None
    state_dir: Path | None = None


class ObjectDriver(ABC):
    """What every driver does: list its objects and delete one."""

    kind: ClassVar[Kind]
    #: The JSON Schema (draft 2020-12) of the ``options:`` a spec gives this driver, or None
    #: (any options). Read from the class when the factory registered is the class itself;
    #: otherwise pass ``schema=`` when registering. A property marked
    #: ``"x-reconciler-change": "in-place"`` can change without recreating the object
    #: (the driver implements ``update``); every other option forces a replacement.
    options_schema: ClassVar[Mapping[str, Any] | None] = None
    #: Whether a change to this driver's objects that a plan reads always comes as an event the daemon follows:
    #: its own (``events``, ``engine_events``) or a stream of the same backend another driver follows (Docker's
    #: network and volume drivers: the runtime's stream reports them). None: true when the driver overrides
    #: ``events`` or ``engine_events``. A daemon's resync may then trust the events of a stack all of whose
    #: drivers say so, instead of looking (a few resyncs in a row at most); say False when your objects can
    #: change unseen (a directory on a host, a remote API without a change feed).
    changes_reported: ClassVar[bool | None] = None

    @abstractmethod
    def observe(self, stack: str, wanted: Mapping[str, Any]) -> list[LiveObject]:
        """Objects this stack owns, plus unowned ones whose names are in ``wanted`` (name → spec)."""

    @abstractmethod
    def delete(self, live: LiveObject) -> None:
        """Remove the object; an object already gone is not an error."""

    def events(self, stack: str, names: Collection[str], stop: threading.Event) -> Iterator[str]:
        """Optional: follow the backend's changes, yielding the name of each object of ``stack`` that changed.

        ``reconcile watch`` and the daemon run a pass when one arrives, so a
        container stopped or removed by hand is repaired within seconds.
        ``names`` is the stack's current object names (read it on every event:
        it changes); report objects that claim the stack or carry one of those
        names. Return when ``stop`` is set; raise ``TemporaryError`` when the
        stream breaks (the loop opens it again). The default yields nothing:
        the loop then relies on its resync interval. Drivers sharing one
        backend should let one of them follow it for all kinds.

        Call ``stream_opened(stop)`` once the stream is open, before the
        first name: the loop then looks once more, so a change made between
        its last read of the live state and the stream (a container exiting
        just after the first pass started it) is not missed until the
        resync. ``stop`` has the ``is_set`` and ``wait`` of a
        ``threading.Event``.
        """
        return iter(())

    def engine_events(self, stop: threading.Event) -> Iterator[EngineEvent]:
        """Optional: every change on the backend, any stack's or none's, as an ``EngineEvent`` each.

        What the daemon follows: one stream per driver class and engine URL
        serves every stack, routed by the event's ``stack`` (claimed by the
        labels for the object's own kind), by the stack of the ``container`` a
        network or volume event concerns, else by name. Leave out what no plan
        reads (a healthcheck's exec); report ``die``: crash loops are told by it.
        Same rules as ``events`` (``stream_opened``, return on stop,
        ``TemporaryError`` when the stream breaks). The default yields nothing:
        a driver with only ``events`` gets a thread per stack, which does not scale.
        """
        return iter(())

    def find_labelled(self, selectors: Sequence[str]) -> list[LiveObject]:
        """Optional: every object of this driver's kind carrying all of ``selectors`` (``key=value``), whoever owns it.

        What ``reconcile adopt`` takes over: the objects another tool made and
        labelled (a Compose project's ``com.docker.compose.project=shop``). One
        list call. The default finds nothing: this driver's objects cannot be adopted.
        """
        return []

    def differences(self, spec: Any, live: LiveObject) -> list[str] | None:
        """Optional: the fields in which ``live``, an object the reconciler did not create, differs from ``spec``.

        Asked when adopting: ``[]`` means the object already is what ``spec``
        says, and is kept as it runs (a container is not restarted); a list
        names the differing fields as ``spec``'s ``field_hashes`` name them
        (``env.LOG_LEVEL``, ``command``, ``options.type``), and the plan shows
        them. None (the default) means this driver cannot tell: a container is
        then replaced, a network or a volume taken over as it is.
        """
        return None


class NetworkDriver(ObjectDriver):
    kind = Kind.NETWORK

    @abstractmethod
    def create(self, spec: NetworkSpec, labels: Mapping[str, str]) -> str:
        """Create the network named ``spec.name`` with ``labels``; return its id."""

    def update(self, spec: NetworkSpec, live: LiveObject, labels: Mapping[str, str]) -> None:
        """Change the options the options schema marks in place, and set ``labels`` (the new config hash).

        Called only when every changed field is such an option. The default refuses.
        """
        raise PermanentError(f"the {type(self).__name__} network driver cannot change {spec.name} in place")


#: What a snapshot or a restore reports as it goes: (bytes done, bytes in all or None when unknown).
Progress = Callable[[int, int | None], None]


class StorageDriver(ObjectDriver):
    """Keeps volumes; optionally takes and restores snapshots of their content.

    A driver that takes snapshots sets ``takes_snapshots`` and implements
    ``snapshot``, ``restore``, ``list_snapshots`` and ``delete_snapshot``.
    The core calls ``snapshot`` while no container writes the volume (stopped
    or paused) and ``restore`` while no running container uses it. The driver
    guarantees: a snapshot killed midway leaves no listed snapshot (and no
    leftover once its next call of any of the four runs); a restore killed
    midway completes when run again with the same snapshot.
    """

    kind = Kind.VOLUME
    #: True for a driver that implements the four snapshot methods. Read from the class when the
    #: factory registered is the class itself; otherwise pass ``takes_snapshots=`` when registering.
    takes_snapshots: ClassVar[bool] = False

    @abstractmethod
    def create(self, spec: VolumeSpec, labels: Mapping[str, str]) -> str:
        """Create the volume named ``spec.name`` with ``labels``; return its id.

        Volumes have no engine id: ``labels`` carries one the core made up
        (``reconciler.labels.VOLUME_ID``). A driver that reports it as the
        volume's ``LiveObject.id`` (as the built-in ones do) returns it here;
        one that reports the name returns the name.
        """

    def update(self, spec: VolumeSpec, live: LiveObject, labels: Mapping[str, str]) -> None:
        """Change the options the options schema marks in place, and set ``labels`` (the new config hash).

        Called only when every changed field is such an option; ``labels`` keep the
        volume's id label. The default refuses.
        """
        raise PermanentError(f"the {type(self).__name__} storage driver cannot change {spec.name} in place")

    def snapshot(self, volume: str, *, progress: Progress | None = None) -> Snapshot:
        """Copy the volume ``volume``'s content as it is now; return the ``Snapshot``, listed from now on."""
        raise self._no_snapshots()

    def restore(self, volume: str, snapshot: Snapshot, *, progress: Progress | None = None) -> Restored:
        """Make the volume's content exactly the snapshot's (what is not in it goes); idempotent."""
        raise self._no_snapshots()

    def list_snapshots(self, volume: str) -> list[Snapshot]:
        """The volume's snapshots, oldest first; [] for none."""
        raise self._no_snapshots()

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        """Remove the snapshot; one already gone is not an error."""
        raise self._no_snapshots()

    def _no_snapshots(self) -> PermanentError:
        return PermanentError(f"the {type(self).__name__} storage driver takes no snapshots")


class RuntimeDriver(ObjectDriver):
    """Runs containers.

    ``delete`` (which stops a running container gracefully first) and ``wait``
    may block for a long time: a stop grace period, a healthcheck. The core
    calls them from its wait lane, where they hold none of the workers that
    bound ``create`` and ``start``: they should wait on the backend, not load it.
    """

    kind = Kind.CONTAINER
    #: True for a runtime that schedules a container's replicas itself (a Swarm service, a
    #: Kubernetes deployment): the spec then gives it one ``ContainerSpec`` per container key,
    #: with ``replicas`` set, instead of one per replica. Read from the class when the factory
    #: registered is the class itself; otherwise pass ``schedules_replicas=`` when registering.
    schedules_replicas: ClassVar[bool] = False

    @abstractmethod
    def create(self, spec: ContainerSpec, labels: Mapping[str, str]) -> str:
        """Create (not start) the container ``spec.name``, attached to its networks; return its id."""

    def update(self, spec: ContainerSpec, live: LiveObject, labels: Mapping[str, str]) -> str | None:
        """Optional: change the object ``live`` to match ``spec`` in place, with ``labels`` (the new config hash).

        A runtime that implements it (``updates_in_place``) gets an ``update``
        change instead of a replacement when a container's config changed or
        the runtime reported drift (``LiveObject.details["drift"]``): a Swarm
        service is updated, and the Swarm rolls its tasks over. Returns the
        object's id (the same). The default refuses.
        """
        raise PermanentError(f"the {type(self).__name__} runtime driver cannot change {spec.name} in place")

    @property
    def updates_in_place(self) -> bool:
        """Whether this runtime implements ``update``."""
        return type(self).update is not RuntimeDriver.update

    @abstractmethod
    def start(self, name: str) -> None:
        """Start (or unpause) the container.

        Raise ``RecreateRequired`` when the backend can no longer start this
        container but a new one from the same spec would start (after an
        engine crash: a task that outlived it). The core then removes it and
        creates it again, if the stack owns it and its config is unchanged.
        """

    @abstractmethod
    def wait(self, name: str, condition: str, *, timeout: float) -> None:
        """Block until the container is ``started``, ``healthy`` or ``completed``.

        Raises ``PermanentError`` when the condition can no longer be met
        (exited with an error, no healthcheck) or ``timeout`` passes.
        """

    def engine_id(self) -> str | None:
        """The identity of the engine this driver runs containers on, or None when it cannot say.

        The same for every address that reaches the engine (Docker's is the
        ``docker info`` ID), so the core keys the stack's lock on it: two runs
        reaching one engine through a socket and through ``tcp://`` take one
        lock. Optional: the default says nothing, and the lock falls back to
        the engine URL's text. Asked once per apply, before observing; an
        answer that costs a backend call should be one the driver reuses.
        """
        return None

    def prune_files(self, stack: str) -> None:
        """Optional: remove what ``create`` materialized for configs and secrets that no container needs now.

        The core calls it once after an apply that changed containers, and
        after ``destroy``, when every change has finished (the old containers
        are gone). A driver that writes no files keeps this default, which
        does nothing.
        """

    def logs(self, name: str, *, follow: bool = False, since: float | None = None, tail: int | None = None,
             stop: threading.Event | None = None) -> Iterator[tuple[float, str, str]]:
        """Optional: the container's output, as (unix time, ``"stdout"`` or ``"stderr"``, line without newline).

        ``tail``: only the last N lines (None: all); ``since``: only lines
        written at or after this unix time. With ``follow``, keep yielding
        lines as they are written until ``stop`` is set (return soon after)
        or the container's output ends. Shown as the container wrote them:
        ``reconcile logs`` and the daemon's ``/logs``. The default refuses.
        """
        raise PermanentError("this runtime cannot show logs")

    def health_output(self, name: str) -> str | None:
        """Optional: what the container's last health probe printed (the status page's panel); None: unknown."""
        return None

    def event_log(self, stack: str, *, names: Collection[str] = (), since: float | None = None,
                  until: float | None = None, follow: bool = False,
                  stop: threading.Event | None = None) -> Iterator[dict[str, Any]]:
        """Optional: the backend's events about ``stack``'s objects, oldest first, as data (``reconcile events``).

        Each is a dict: ``time`` (unix seconds), ``type`` (container, network,
        volume), ``action`` (``die``, ``stop``, ``create``...), ``name``, and
        ``attributes`` (say ``{"exitCode": "137"}``; never labels or env).
        Objects are the stack's by their labels or by ``names``. Without
        ``follow`` it ends at ``until`` (default: now); with it, it goes on
        until ``stop`` is set. Unlike ``events`` (what the loop follows), it
        runs only when a user asks. The default refuses.
        """
        raise PermanentError("this runtime cannot show its events")

    # Rolling replacements (``reconciler.rollout``). A runtime that keeps the
    # defaults has its containers replaced the simple way: the old one is
    # removed, then the new one created and started.

    def rename(self, container_id: str, name: str) -> None:
        """Give the container ``container_id`` the name ``name`` (the old one steps aside for its successor)."""
        raise NotImplementedError

    def stop(self, container_id: str) -> None:
        """Stop the container gracefully (its stop signal and grace period); a stopped one is fine."""
        raise NotImplementedError

    def drain(self, container_id: str) -> None:
        """Optional: stop sending the container new work before it is stopped (start-first rollouts).

        The Docker runtime takes it out of its networks' name resolution, so
        clients looking up its alias reach only its successor. The default does nothing.
        """

    def pause(self, container_id: str) -> None:
        """Optional: freeze the container's processes (``docker pause``), so a snapshot of its volumes is
        consistent while it keeps its connections; requests to it wait rather than fail. The default refuses."""
        raise PermanentError(f"the {type(self).__name__} runtime cannot pause a container")

    def unpause(self, container_id: str) -> None:
        """Optional: let a container ``pause`` froze run again; one not paused is fine. The default refuses."""
        raise PermanentError(f"the {type(self).__name__} runtime cannot unpause a container")

    def ready(self, name: str, *, healthcheck: bool, min_ready: float, timeout: float) -> None:
        """Block until a just-started container can take over: healthy when it has a healthcheck,
        else still running after ``min_ready`` seconds.

        Raises ``PermanentError`` saying why not (unhealthy with its last probe's
        output, exited with its code and last log lines, or ``timeout``).
        """
        self.wait(name, "healthy" if healthcheck else "started", timeout=timeout)

    @property
    def rolls(self) -> bool:
        """Whether this runtime can replace a container in place (it implements ``rename`` and ``stop``)."""
        return type(self).rename is not RuntimeDriver.rename and type(self).stop is not RuntimeDriver.stop


T = TypeVar("T")


def owned_plus_wanted(
    owned: Iterable[T],
    wanted: Iterable[str],
    lookup: Callable[[list[str]], Iterable[T]],
    name_of: Callable[[T], str],
) -> dict[str, T]:
    """What ``observe`` returns, by name: the stack's own objects plus any object under a wanted name.

    ``owned`` is the backend's answer for the stack (one filtered list call).
    ``lookup(names)`` is asked only for wanted names the stack does not own, so
    a converged stack costs one call; it may return more than asked (a
    substring filter): only exact names are kept. Reporting those strangers
    is what lets the plan refuse to take over an object it does not own.
    """
    found = {name_of(obj): obj for obj in owned}
    missing = [name for name in wanted if name not in found]
    if missing:
        for obj in lookup(missing):
            if name_of(obj) in missing:
                found.setdefault(name_of(obj), obj)
    return found


#: What a plugin registers for a driver name: it takes the run's ``DriverContext`` and returns the
#: driver (the driver class itself, or a function that imports the backend's client only when called).
Factory = Callable[[DriverContext], ObjectDriver]
#: A driver's check of its part of a spec, registered with it (``check=``): given the whole spec
#: record of the driver's kind (``ImageSpec``, ``NetworkSpec``, ``VolumeSpec``, ``ContainerSpec``),
#: it returns one message per problem, naming the field first (``"privileged: ..."``; an option by
#: its name). ``reconcile validate`` runs it without making the driver, so it must not need the
#: backend or import its client; its messages are shown at the entry's ``options`` (images,
#: networks, volumes) or at the container, and ``apply`` refuses the spec before any change.
#: What a JSON Schema can say belongs in ``options_schema`` instead.
Check = Callable[[Any], Iterable[str]]
