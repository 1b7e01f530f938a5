"""The drivers of a ``MemoryEngine``, one per role: what the core calls, over the engine's objects.

Why a module of its own: each driver is the contract of its role played
against ``EngineObjects`` (``memory_objects.py``): it journals the call, takes
the engine's delay and injected fault, checks what the engine would refuse
(a taken name, a missing image or network, a network in use) and writes the
records. ``memory.py`` registers them under the default driver names.
"""
from __future__ import annotations

import dataclasses
import queue
import threading
import time
import uuid
from typing import Any, Callable, ClassVar, Collection, Iterator, Mapping

from ..drivers import (
    DriverContext,
    NetworkDriver,
    RegistryDriver,
    RuntimeDriver,
    StorageDriver,
    owned_plus_wanted,
    stream_opened,
)
from ..errors import ConflictError, PermanentError
from ..labels import STACK, VOLUME_ID, is_owned
from ..model import (
    ContainerSpec, Content, EngineEvent, ImageSpec, Kind, LiveObject, NetworkSpec, Restored, Snapshot, VolumeSpec,
    snapshot_id,
)
from .memory_objects import EngineObjects, digest

__all__ = ["MEMORY_DRIVERS", "MemoryNetworkDriver", "MemoryRegistryDriver", "MemoryRuntimeDriver",
           "MemoryStorageDriver"]

# How often an event stream with nothing to report looks at its ``stop``.
_EVENT_POLL = 0.05


class _MemoryDriver:
    """What the memory drivers share: observe, delete, and writing records."""

    kind: ClassVar[Kind]
    noun: ClassVar[str]  # journal suffix: "create-network"; containers have none
    #: The runtime driver's one stream reports a change to any kind (``engine_events``).
    changes_reported: ClassVar[bool | None] = True

    def __init__(self, engine: EngineObjects, context: DriverContext) -> None:
        self.engine = engine
        self.context = context

    @property
    def records(self) -> dict[str, LiveObject]:
        return self.engine.of(self.kind)

    def observe(self, stack: str, wanted: Mapping[str, Any]) -> list[LiveObject]:
        """The stack's own records plus any under a wanted name, ``owned`` set from the labels."""
        with self.engine._call("observe", self.kind.value):
            records = self.records
            owned = [r for r in records.values() if is_owned(r.labels, stack, kind=self.kind)]
            found = owned_plus_wanted(owned, wanted, lambda names: [records[n] for n in names if n in records],
                                      lambda r: r.name)
            self.context.stats["read"] += 1
        return [dataclasses.replace(r, owned=is_owned(r.labels, stack, kind=self.kind))
                for _, r in sorted(found.items())]

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
    """The storage (volume) driver of a ``MemoryEngine``; it takes snapshots of ``engine.volume_content``."""

    noun = "-volume"
    takes_snapshots = True

    def delete(self, live: LiveObject) -> None:
        """Remove the volume and its content (its snapshots stay, as a real driver's do)."""
        super().delete(live)
        with self.engine._lock:
            if live.name not in self.records:
                self.engine.volume_content.pop(live.name, None)

    def snapshot(self, volume: str, *, progress: Callable[[int, int | None], None] | None = None) -> Snapshot:
        """Copy the volume's content; ``size`` and ``content`` are its bytes (nothing is compressed)."""
        with self.engine._call("snapshot", volume):
            self._get(volume)
            files = dict(self.engine.volume_content.get(volume, {}))
            total = sum(map(len, files.values()))
            created = time.time()
            taken = Snapshot(snapshot_id(created), volume, created, total, total, {"files": str(len(files))})
            self.engine.snapshots.setdefault(volume, []).append((taken, files))
            if progress is not None:
                progress(total, total)
            return taken

    def restore(self, volume: str, snapshot: Snapshot, *,
                progress: Callable[[int, int | None], None] | None = None) -> Restored:
        """Make the volume's content the snapshot's; ``discarded``: the bytes of files it did not hold identically."""
        started = time.monotonic()
        with self.engine._call("restore", volume, snapshot.id):
            self._get(volume)
            kept = next((files for taken, files in self.engine.snapshots.get(volume, ()) if taken.id == snapshot.id),
                        None)
            if kept is None:
                raise PermanentError(f"volume {volume} has no snapshot {snapshot.id}")
            now = self.engine.volume_content.get(volume, {})
            discarded = sum(len(data) for path, data in now.items() if kept.get(path) != data)
            self.engine.volume_content[volume] = dict(kept)
            if progress is not None:
                progress(snapshot.content, snapshot.content)
            return Restored(snapshot, discarded, time.monotonic() - started)

    def list_snapshots(self, volume: str) -> list[Snapshot]:
        """The volume's snapshots, oldest first."""
        with self.engine._call("list-snapshots", volume):
            return [taken for taken, _ in self.engine.snapshots.get(volume, ())]

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        """Forget the snapshot; one already gone is fine."""
        with self.engine._call("delete-snapshot", snapshot.volume, snapshot.id):
            kept = self.engine.snapshots.get(snapshot.volume, [])
            kept[:] = [(taken, files) for taken, files in kept if taken.id != snapshot.id]


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
                        else self.engine.registry.get(spec.ref)) or digest(spec.ref)
            self._put(LiveObject(Kind.IMAGE, spec.ref, image_id, image_id=image_id))

    def build(self, spec: ImageSpec, labels: Mapping[str, str]) -> None:
        """Make ``spec.ref`` present with ``labels``, its id derived from the build hash."""
        with self.engine._call("build", spec.ref):
            image_id = digest(spec.build_hash or spec.ref)
            self._put(LiveObject(Kind.IMAGE, spec.ref, image_id, dict(labels), image_id=image_id))

    def push(self, spec: ImageSpec) -> None:
        """Record a ``repo_digests`` entry for the reference's repository, as the engine does on a push."""
        with self.engine._call("push", spec.ref):
            image = self._get(spec.ref)
            name, sep, tag = spec.ref.rpartition(":")  # host:port/name:tag → host:port/name
            repository = name if sep and "/" not in tag else spec.ref
            digests = (*image.details.get("repo_digests", ()), f"{repository}@{digest(image.id)}")
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
            if found is not None and found.state in ("running", "paused"):
                self._put(dataclasses.replace(found, state="exited", exit_code=0, health=""))

    def pause(self, container_id: str) -> None:
        """Make a running container ``paused``."""
        with self.engine._call("pause", container_id):
            found = next((r for r in self.records.values() if r.id == container_id), None)
            if found is None:
                raise PermanentError(f"no such container: {container_id}")
            if found.state == "running":
                self._put(dataclasses.replace(found, state="paused"))

    def unpause(self, container_id: str) -> None:
        """Make a paused container ``running`` again; one not paused, or gone, is fine."""
        with self.engine._call("unpause", container_id):
            found = next((r for r in self.records.values() if r.id == container_id), None)
            if found is not None and found.state == "paused":
                self._put(dataclasses.replace(found, state="running"))

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

    def logs(self, name: str, *, follow: bool = False, since: float | None = None, tail: int | None = None,
             stop: threading.Event | None = None) -> Iterator[tuple[float, str, str]]:
        """What ``MemoryEngine.write`` wrote for the container; a follow polls for more until ``stop`` is set."""
        with self.engine._call("logs", name):
            self._get(name)
        seen = list(self.engine.output.get(name, ()))
        shown = [entry for entry in seen if since is None or entry[0] >= since]
        yield from shown[len(shown) - tail:] if tail is not None and tail < len(shown) else shown
        while follow and not (stop is not None and stop.wait(_EVENT_POLL)):
            now = list(self.engine.output.get(name, ()))
            yield from now[len(seen):]
            seen = now

    def events(self, stack: str, names: Collection[str], stop: threading.Event) -> Iterator[str]:
        """The name of each object of any kind that changes from now on and claims ``stack`` or is in ``names``.

        One stream follows the whole engine, as the contract asks of drivers
        sharing a backend. Returns once ``stop`` is set.
        """
        for _action, record in self._feed(stack, stop):
            if is_owned(record.labels, stack, kind=record.kind) or record.name in names:
                yield record.name

    def engine_events(self, stop: threading.Event) -> Iterator[EngineEvent]:
        """Every change to the engine's objects of any kind from now on (``create``, ``start``, ``die``,
        ``update``, ``destroy``), with the stack each one's labels claim for its kind."""
        for action, record in self._feed("", stop):
            claimed = record.labels.get(STACK, "")
            yield EngineEvent(record.kind, record.name, action, id=record.id,
                              stack=claimed if claimed and is_owned(record.labels, claimed, kind=record.kind) else "")

    def _feed(self, stack: str, stop: threading.Event) -> Iterator[tuple[str, LiveObject]]:
        """(action, record) of each change from now on, until ``stop`` is set (``("events", stack)`` journalled)."""
        with self.engine._call("events", stack):
            feed = self.engine._open_feed()
        stream_opened(stop)
        try:
            while not stop.is_set():
                try:
                    yield feed.get(timeout=_EVENT_POLL)
                except queue.Empty:
                    continue
        finally:
            self.engine._close_feed(feed)


#: One driver class per kind, as ``MemoryEngine`` registers them.
MEMORY_DRIVERS = (MemoryRegistryDriver, MemoryNetworkDriver, MemoryStorageDriver, MemoryRuntimeDriver)
