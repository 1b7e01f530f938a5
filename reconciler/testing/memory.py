"""One engine in memory, with a driver for each role: the core, hooks and policies tested without Docker.

httpx tests a client with ``MockTransport``: the real code runs, only the far
side of the seam is fake. Our seam is the driver interface, so this module
fakes the engine behind it: ``MemoryEngine`` keeps objects as ``LiveObject``
records, journals every driver call and fails chosen ones on demand, and
``make_reconciler`` builds a ``Reconciler`` whose only plugins are the engine
and the test's own.
"""
from __future__ import annotations

import dataclasses
import hashlib
import queue
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Collection, Iterator, Mapping

from ..defaults import ARCHIVE_DRIVER, DEFAULT_DRIVERS
from ..drivers import (
    DriverContext,
    DriverRegistry,
    Drivers,
    NetworkDriver,
    PluginDrivers,
    RegistryDriver,
    RuntimeDriver,
    StorageDriver,
    owned_plus_wanted,
    stream_opened,
)
from ..errors import ConflictError, PermanentError
from ..hookspecs import hookimpl
from ..labels import VOLUME_ID, is_owned
from ..model import ContainerSpec, Content, ImageSpec, Kind, LiveObject, NetworkSpec, VolumeSpec
from ..state import StateStore

if TYPE_CHECKING:
    from ..reconcile import Reconciler

__all__ = [
    "MemoryEngine",
    "MemoryNetworkDriver",
    "MemoryRegistryDriver",
    "MemoryRuntimeDriver",
    "MemoryStorageDriver",
    "make_reconciler",
]


@dataclasses.dataclass
class _Fault:
    call: tuple  # a journal entry, or its first items
    error: BaseException
    times: int | None  # None: every matching call


#: The first item of every journal entry.
_VERBS = frozenset({"observe", "events", "pull", "build", "push", "create-network", "delete-network",
                    "create-volume", "delete-volume", "update-network", "update-volume", "create", "start", "wait",
                    "delete", "rename", "stop"})
# Calls that keep the engine busy, as opposed to waiting on its clock: a container's
# removal (a stop first) and ``wait`` are the ones ``RuntimeDriver`` says wait, and
# observing and following events are reads. ``peak["work"]`` counts these together.
_WORK = _VERBS - {"observe", "events", "wait", "delete", "rename", "stop"}
# How often an event stream with nothing to report looks at its ``stop``.
_EVENT_POLL = 0.05


class MemoryEngine:
    """An engine held in memory, with a driver for each role: the core runs against it unchanged.

    Objects are ``LiveObject`` records by name (images by reference) in
    ``images``, ``networks``, ``volumes`` and ``containers``; ``owned`` is
    worked out per observe, from the labels. ``add`` puts objects there as a
    user or another stack would have made them.

    Every driver call is journaled in ``calls`` before it takes effect:
    ``("observe", kind)``; ``("pull" | "build" | "push", ref)``;
    ``("create-network" | "delete-network" | "create-volume" | "delete-volume", name)``;
    ``("create" | "start" | "delete", name)`` and ``("wait", name, condition)``
    for containers; ``("events", stack)`` when an event stream opens. ``fail``
    makes chosen calls raise.

    Every change, whoever makes it, is an event: the runtime driver's
    ``events`` follows them for all kinds, as ``reconcile watch`` and the
    daemon follow an engine's. ``remove`` and ``stop`` change the engine by
    hand, the drift those loops exist to repair; like ``add``, they are not
    journaled.

    Where the core relies on the engine, it behaves as the engine does: a name
    that exists cannot be created again (``ConflictError``); a container needs
    its image and networks; a network in use cannot be removed; deleting what
    is gone is quiet; pulling a reference twice gives the same image id.
    Nothing runs: ``start`` makes a container ``running`` (and ``healthy``
    when it has a healthcheck) at once, and ``wait`` answers at once. An option
    with an empty value is refused, the invalid config of the contract kit.

    Calls take no time unless ``delays`` says so, by verb (``{"delete": 0.3}``:
    every container removal takes 0.3 s, as a stop grace period would); the
    engine is not held while a call sleeps, so slow calls overlap and
    ``peak`` shows how many did.
    """

    def __init__(self, *, delays: Mapping[str, float] | None = None, rolls: bool = True) -> None:
        #: Whether its runtime replaces containers in place (``RuntimeDriver.rolls``); False
        #: stands in for a runtime without ``rename``, replaced the simple way.
        self.rolls = rolls
        unknown = sorted(set(delays or ()) - _VERBS)
        if unknown:
            raise ValueError(f"delays names no call the engine journals: {', '.join(unknown)}")
        self.images: dict[str, LiveObject] = {}
        self.networks: dict[str, LiveObject] = {}
        self.volumes: dict[str, LiveObject] = {}
        self.containers: dict[str, LiveObject] = {}
        #: The registry: reference → the image id its tag points to now (see ``publish``).
        self.registry: dict[str, str] = {}
        #: Image archives: path → the id of the image the file holds now (see ``replace_archive``);
        #: a path never given holds an image whose id derives from the path.
        self.archives: dict[str, str] = {}
        #: Every driver call, in the order made (see the class docstring).
        self.calls: list[tuple] = []
        #: What the runtime driver's ``engine_id`` answers (the stack lock's key); None: it cannot say.
        self.id: str | None = f"memory-{uuid.uuid4().hex[:12]}"
        #: Seconds each call of a verb takes (see the class docstring).
        self.delays: dict[str, float] = dict(delays or {})
        #: The most calls of each verb that were in progress at once; ``"work"``: of every
        #: call that keeps the engine busy (all but ``observe``, ``events``, ``wait`` and a
        #: container's ``delete``), which is what ``ApplyOptions.workers`` bounds.
        self.peak: Counter[str] = Counter()
        self._running: Counter[str] = Counter()
        self._faults: list[_Fault] = []
        self._feeds: list[queue.SimpleQueue] = []  # one per open event stream
        self._lock = threading.RLock()  # apply calls drivers from worker threads
        #: The reconciler's record of what it made here: it lives and dies with the engine.
        self.state = StateStore.in_memory()
        self._factories = {cls.kind: (lambda context, cls=cls: cls(self, context)) for cls in _MEMORY_DRIVERS}

    def of(self, kind: Kind) -> dict[str, LiveObject]:
        """The records of one kind, by name."""
        return {Kind.IMAGE: self.images, Kind.NETWORK: self.networks,
                Kind.VOLUME: self.volumes, Kind.CONTAINER: self.containers}[kind]

    def add(self, *objects: LiveObject) -> None:
        """Put objects in the engine as made by hand or by another tool; not journaled."""
        with self._lock:
            for obj in objects:
                self._store(obj)

    def remove(self, name: str, *, kind: Kind = Kind.CONTAINER) -> None:
        """Remove an object by hand (``docker rm -f``): no checks, not journaled; ``KeyError`` if absent."""
        with self._lock:
            if name not in self.of(kind):
                raise KeyError(f"no {kind.value} named {name!r} in the memory engine")
            self._drop(kind, name)

    def stop(self, name: str, *, exit_code: int = 137) -> None:
        """Stop a container by hand, or have it crash: ``exited`` with ``exit_code``; not journaled.

        The default is what ``docker stop`` leaves when the process ignores
        SIGTERM; a container with a healthcheck turns ``unhealthy``.
        """
        with self._lock:
            container = self.containers[name]
            self._store(dataclasses.replace(container, state="exited", exit_code=exit_code,
                                            health="unhealthy" if container.health else ""))

    @property
    def followers(self) -> int:
        """How many event streams are open: a test waits for the loop to follow before it makes drift."""
        with self._lock:
            return len(self._feeds)

    def fail(self, call: tuple | str, error: BaseException, *, times: int | None = 1) -> None:
        """Make the next ``times`` calls matching ``call`` raise ``error`` (``times=None``: every one).

        ``call`` is a journal entry or its first items (``("wait", "demo-db-1")``),
        or a verb alone (``"observe"``). A failed call is still journaled, so a
        retried call shows once per attempt. Faults added first are used first.
        """
        with self._lock:
            self._faults.append(_Fault((call,) if isinstance(call, str) else tuple(call), error, times))

    def publish(self, ref: str) -> str:
        """Point the tag ``ref`` at a new image in the registry (a push by someone else); return its id.

        The registry driver's ``observe`` then reports the local image's
        ``content`` as changed, for specs that follow their tag.
        """
        with self._lock:
            self.registry[ref] = _digest(f"{ref}@{uuid.uuid4().hex}")
            return self.registry[ref]

    def replace_archive(self, path: str) -> str:
        """Make the image archive at ``path`` hold a new image (a file replaced by hand); return its id.

        The registry driver's ``observe`` then reports the local image's
        ``content`` as changed, for specs that load that archive.
        """
        with self._lock:
            self.archives[path] = _digest(f"{path}@{uuid.uuid4().hex}")
            return self.archives[path]

    def archive_image_id(self, path: str) -> str:
        """The id of the image the archive at ``path`` holds now."""
        with self._lock:
            return self.archives.get(path) or _digest(path)

    def register(self, registry: PluginDrivers) -> None:
        """Add the memory drivers under the default driver names (images also as ``archive``)."""
        images = self._factories[Kind.IMAGE]
        registry.add_registry_driver(DEFAULT_DRIVERS["images"], images)
        registry.add_registry_driver(ARCHIVE_DRIVER, images)
        registry.add_network_driver(DEFAULT_DRIVERS["networks"], self._factories[Kind.NETWORK])
        registry.add_storage_driver(DEFAULT_DRIVERS["volumes"], self._factories[Kind.VOLUME])
        registry.add_runtime_driver(DEFAULT_DRIVERS["containers"], self._factories[Kind.CONTAINER])

    @hookimpl
    def reconciler_register_drivers(self, registry: PluginDrivers) -> None:
        """The engine is a plugin too: ``pm.register(engine)`` gives the core its drivers."""
        self.register(registry)

    def drivers(self, stack: str) -> Drivers:
        """Driver instances for ``stack``, as ``apply_plan`` takes them (no plugin manager needed)."""
        registry = DriverRegistry()
        self.register(registry.view("memory-engine"))
        return registry.instantiate(DriverContext(stack=stack))

    @contextmanager
    def _call(self, *call: Any) -> Iterator[None]:
        """Journal ``call``, take its delay, raise its injected fault if any, and hold the engine for its body."""
        verb = call[0]
        counted = (verb, "work") if verb in _WORK else (verb,)
        with self._lock:
            self.calls.append(call)
            error = self._take_fault(call)
            self._running.update(counted)
            for key in counted:
                self.peak[key] = max(self.peak[key], self._running[key])
        try:
            time.sleep(self.delays.get(verb, 0.0))  # not holding the engine: slow calls overlap
            if error is not None:
                raise error
            with self._lock:
                yield
        finally:
            with self._lock:
                self._running.subtract(counted)

    def _store(self, record: LiveObject) -> None:
        """Write ``record`` and tell every event stream (with the engine held)."""
        self.of(record.kind)[record.name] = record
        self._publish(record)

    def _drop(self, kind: Kind, name: str) -> None:
        """Delete the record ``name`` of ``kind`` and tell every event stream (with the engine held)."""
        self._publish(self.of(kind).pop(name))

    def _publish(self, record: LiveObject) -> None:
        for feed in self._feeds:
            feed.put(record)

    def _open_feed(self) -> queue.SimpleQueue:
        with self._lock:
            feed: queue.SimpleQueue = queue.SimpleQueue()
            self._feeds.append(feed)
            return feed

    def _close_feed(self, feed: queue.SimpleQueue) -> None:
        with self._lock:
            self._feeds.remove(feed)

    def _take_fault(self, call: tuple) -> BaseException | None:
        """The error the first fault matching ``call`` injects, counting it used; None when none matches."""
        for fault in self._faults:
            if call[:len(fault.call)] == fault.call and fault.times != 0:
                if fault.times is not None:
                    fault.times -= 1
                return fault.error
        return None


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class _MemoryDriver:
    """What the memory drivers share: observe, delete, and writing records."""

    kind: ClassVar[Kind]
    noun: ClassVar[str]  # journal suffix: "create-network"; containers have none

    def __init__(self, engine: MemoryEngine, context: DriverContext) -> None:
        self.engine = engine
        self.context = context

    @property
    def records(self) -> dict[str, LiveObject]:
        return self.engine.of(self.kind)

    def observe(self, stack: str, wanted: Mapping[str, Any]) -> list[LiveObject]:
        """The stack's own records plus any under a wanted name, ``owned`` set from the labels."""
        with self.engine._call("observe", self.kind.value):
            records = self.records
            found = owned_plus_wanted([r for r in records.values() if is_owned(r.labels, stack)], wanted,
                                      lambda names: [records[n] for n in names if n in records], lambda r: r.name)
            self.context.stats["read"] += 1
        return [dataclasses.replace(r, owned=is_owned(r.labels, stack)) for _, r in sorted(found.items())]

    def delete(self, live: LiveObject) -> None:
        """Remove the record named ``live.name`` (or with its id); one already gone is not an error."""
        with self.engine._call("delete" + self.noun, live.name):
            name = next((n for n, r in self.records.items() if live.name == n or live.id == r.id), None)
            if name is not None:
                self._check_removable(name)
                self.engine._drop(self.kind, name)
                self.context.stats["write"] += 1

    def _check_removable(self, name: str) -> None:
        pass

    def _get(self, name: str) -> LiveObject:
        if name not in self.records:
            raise PermanentError(f"no such {self.kind.value}: {name}")
        return self.records[name]

    def _put(self, record: LiveObject, *, new: bool = False) -> None:
        if new and record.name in self.records:
            raise ConflictError(f"{self.kind.value} {record.name} already exists")
        self.engine._store(record)
        self.context.stats["write"] += 1


class _MemoryObjectDriver(_MemoryDriver):
    def create(self, spec: NetworkSpec | VolumeSpec, labels: Mapping[str, str]) -> str:
        """Store ``spec.name`` with ``labels`` and return its id; an option with an empty value is a ``PermanentError``.

        Volumes have no id of their own: a volume's id is the one the core gave
        it (``labels.VOLUME_ID``), else its name, as the built-in drivers do.
        """
        with self.engine._call("create" + self.noun, spec.name):
            empty = [key for key, value in spec.options if not value]
            if empty:
                raise PermanentError(f"create {self.kind.value} {spec.name}: option {empty[0]} has no value")
            if self.kind is Kind.VOLUME:
                object_id = labels.get(VOLUME_ID) or spec.name
            else:
                object_id = uuid.uuid4().hex
            self._put(LiveObject(self.kind, spec.name, object_id, dict(labels)), new=True)
            return object_id

    def update(self, spec: NetworkSpec | VolumeSpec, live: LiveObject, labels: Mapping[str, str]) -> None:
        """Give the object ``labels`` (its options changed in place; the memory engine keeps none)."""
        with self.engine._call("update" + self.noun, spec.name):
            self._put(dataclasses.replace(self._get(spec.name), labels=dict(labels)))


class MemoryNetworkDriver(_MemoryObjectDriver, NetworkDriver):
    """The network driver of a ``MemoryEngine``."""

    noun = "-network"

    def _check_removable(self, name: str) -> None:
        users = sorted(c.name for c in self.engine.containers.values() if name in c.details.get("networks", ()))
        if users:
            raise PermanentError(f"network {name} has active endpoints: {', '.join(users)}")


class MemoryStorageDriver(_MemoryObjectDriver, StorageDriver):
    """The storage (volume) driver of a ``MemoryEngine``."""

    noun = "-volume"


class MemoryRegistryDriver(_MemoryDriver, RegistryDriver):
    """The registry (image) driver of a ``MemoryEngine``: pulls, loads archives, builds and pushes."""

    def observe(self, stack: str, wanted: Mapping[str, ImageSpec]) -> list[LiveObject]:
        """The wanted images, each with ``content``: the image id its archive or its registry's tag holds, against its own."""
        out = []
        for live in super().observe(stack, wanted):
            spec = wanted.get(live.name)
            source = ""
            if spec is not None and spec.is_archive:
                source = self.engine.archive_image_id(spec.archive)
            elif spec is not None and spec.tracks_tag:
                source = self.engine.registry.get(spec.ref, "")
            if source:
                live = dataclasses.replace(live, content=Content(live.image_id != source, live.image_id, source))
            out.append(live)
        return out

    def pull(self, spec: ImageSpec) -> None:
        """Make ``spec.ref`` present: an archive's image id, else the registry's, else an id derived from the ref."""
        with self.engine._call("pull", spec.ref):
            image_id = (self.engine.archive_image_id(spec.archive) if spec.is_archive
                        else self.engine.registry.get(spec.ref)) or _digest(spec.ref)
            self._put(LiveObject(Kind.IMAGE, spec.ref, image_id, image_id=image_id))

    def build(self, spec: ImageSpec, labels: Mapping[str, str]) -> None:
        """Make ``spec.ref`` present with ``labels``, its id derived from the build hash."""
        with self.engine._call("build", spec.ref):
            image_id = _digest(spec.build_hash or spec.ref)
            self._put(LiveObject(Kind.IMAGE, spec.ref, image_id, dict(labels), image_id=image_id))

    def push(self, spec: ImageSpec) -> None:
        """Record a ``repo_digests`` entry for the reference's repository, as the engine does on a push."""
        with self.engine._call("push", spec.ref):
            image = self._get(spec.ref)
            name, sep, tag = spec.ref.rpartition(":")  # host:port/name:tag → host:port/name
            repository = name if sep and "/" not in tag else spec.ref
            digests = (*image.details.get("repo_digests", ()), f"{repository}@{_digest(image.id)}")
            self._put(dataclasses.replace(image, details={**image.details, "repo_digests": digests}))

    def delete(self, live: LiveObject) -> None:
        """Images are shared caches: the core never deletes them."""


class MemoryRuntimeDriver(_MemoryDriver, RuntimeDriver):
    """The runtime (container) driver of a ``MemoryEngine``. Nothing runs; states change at once."""

    noun = ""

    def create(self, spec: ContainerSpec, labels: Mapping[str, str]) -> str:
        """Store a ``created`` container and return its id; its image and networks must exist."""
        with self.engine._call("create", spec.name):
            if spec.image_ref not in self.engine.images:
                raise PermanentError(f"create container {spec.name}: no such image: {spec.image_ref}")
            networks = [name for name, _ in spec.networks]
            for network in networks:
                if network not in self.engine.networks:
                    raise PermanentError(f"create container {spec.name}: no such network: {network}")
            checked = spec.healthcheck is not None and spec.healthcheck.test != ("NONE",)
            details = {"networks": sorted(networks) or [spec.network_mode or "bridge"],  # the engine's default
                       "volumes": sorted(m.source for m in spec.mounts if m.type == "volume" and m.source),
                       "default_network": "bridge"}  # as Docker's runtime reports it
            container_id = uuid.uuid4().hex
            self._put(LiveObject(Kind.CONTAINER, spec.name, container_id, dict(labels), state="created",
                                 health="starting" if checked else "",
                                 image_id=self.engine.images[spec.image_ref].image_id, details=details), new=True)
            return container_id

    def start(self, name: str) -> None:
        """Make the container ``running``, and ``healthy`` if it has a healthcheck."""
        with self.engine._call("start", name):
            container = self._get(name)
            self._put(dataclasses.replace(container, state="running", exit_code=None,
                                          health="healthy" if container.health else ""))

    def rename(self, container_id: str, name: str) -> None:
        """Move the container ``container_id`` to ``name`` (a ``ConflictError`` when it is taken)."""
        with self.engine._call("rename", container_id, name):
            old = next((r for r in self.records.values() if r.id == container_id), None)
            if old is None:
                raise PermanentError(f"no such container: {container_id}")
            if name in self.records:
                raise ConflictError(f"container {name} already exists")
            self.engine._drop(Kind.CONTAINER, old.name)
            self._put(dataclasses.replace(old, name=name))

    def stop(self, container_id: str) -> None:
        """Make the container ``exited`` (code 0); one already stopped, or gone, is fine."""
        with self.engine._call("stop", container_id):
            found = next((r for r in self.records.values() if r.id == container_id), None)
            if found is not None and found.state == "running":
                self._put(dataclasses.replace(found, state="exited", exit_code=0, health=""))

    @property
    def rolls(self) -> bool:
        return self.engine.rolls

    def engine_id(self) -> str | None:
        """The engine's ``id``: not journaled, as the Docker runtime reads it with its connection."""
        return self.engine.id

    def wait(self, name: str, condition: str, *, timeout: float) -> None:
        """Return if the container is ``started``, ``healthy`` or ``completed`` now; else ``PermanentError``."""
        with self.engine._call("wait", name, condition):
            container = self._get(name)
            met = {"started": container.state != "created", "healthy": container.health == "healthy",
                   "completed": container.state == "exited" and container.exit_code == 0}.get(condition, False)
            if not met:
                raise PermanentError(f"container {name} is {container.state or 'unknown'}"
                                     f"{' and ' + container.health if container.health else ''}, not {condition}")

    def events(self, stack: str, names: Collection[str], stop: threading.Event) -> Iterator[str]:
        """The name of each object of any kind that changes from now on and claims ``stack`` or is in ``names``.

        One stream follows the whole engine, as the contract asks of drivers
        sharing a backend. Returns once ``stop`` is set.
        """
        with self.engine._call("events", stack):
            feed = self.engine._open_feed()
        stream_opened(stop)
        try:
            while not stop.is_set():
                try:
                    record = feed.get(timeout=_EVENT_POLL)
                except queue.Empty:
                    continue
                if is_owned(record.labels, stack) or record.name in names:
                    yield record.name
        finally:
            self.engine._close_feed(feed)


_MEMORY_DRIVERS = (MemoryRegistryDriver, MemoryNetworkDriver, MemoryStorageDriver, MemoryRuntimeDriver)


def make_reconciler(engine: MemoryEngine, *, plugins: Mapping[str, object] | None = None) -> Reconciler:
    """A ``Reconciler`` whose only plugins are ``engine`` and ``plugins`` (by name); nothing installed loads.

    Its stack lock is keyed on this engine (its ``id``, else this URL), so a
    test never waits for a real run, or for another engine's test, on the
    same stack name.
    """
    import pluggy

    from .. import hookspecs
    from ..reconcile import Reconciler

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(engine, name="memory-engine")
    for name, plugin in (plugins or {}).items():
        pm.register(plugin, name=name)
    pm.check_pending()  # a misspelled hook fails here, as it does in make_plugin_manager
    return Reconciler(engine_url=f"memory://{id(engine):x}", plugin_manager=pm, state=engine.state)
