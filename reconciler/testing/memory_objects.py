"""The objects, journal and faults of a ``MemoryEngine``: the engine side of the seam, without its drivers.

Why a module of its own: what the in-memory engine *holds* (records by kind,
the registry and image archives, every call journaled, injected faults, the
delays that make calls overlap, the feeds of its event streams) is one
concern; the drivers that wrap it, one per role, are another
(``memory_drivers.py``); ``memory.py`` joins them into ``MemoryEngine``, the
plugin a test registers. The drivers reach this state only through the
journaling ``_call`` and the event-publishing ``_store`` and ``_drop``.
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
from typing import Any, Iterator, Mapping

from ..model import Kind, LiveObject, Snapshot

__all__ = ["EngineObjects", "digest"]


@dataclasses.dataclass
class _Fault:
    call: tuple  # a journal entry, or its first items
    error: BaseException
    times: int | None  # None: every matching call


#: The first item of every journal entry.
_VERBS = frozenset({"observe", "events", "pull", "build", "push", "create-network", "delete-network",
                    "create-volume", "delete-volume", "update-network", "update-volume", "create", "start", "wait",
                    "delete", "rename", "stop", "logs", "snapshot", "restore", "list-snapshots",
                    "delete-snapshot"})
# Calls that keep the engine busy, as opposed to waiting on its clock: a container's
# removal (a stop first) and ``wait`` are the ones ``RuntimeDriver`` says wait, and
# observing and following events are reads. ``peak["work"]`` counts these together.
_WORK = _VERBS - {"observe", "events", "wait", "delete", "rename", "stop", "logs", "list-snapshots"}


class EngineObjects:
    """What a ``MemoryEngine`` holds and how a call on it is journaled (see ``MemoryEngine``)."""

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
        #: What each container wrote, by name: (unix time, stream, line), oldest first (see ``write``).
        self.output: dict[str, list[tuple[float, str, str]]] = {}
        #: What each volume holds, by volume name: file path → content (tests set and read it).
        self.volume_content: dict[str, dict[str, bytes]] = {}
        #: Each volume's snapshots, oldest first, with the content each holds (the storage driver's).
        self.snapshots: dict[str, list[tuple[Snapshot, dict[str, bytes]]]] = {}
        #: Every driver call, in the order made (see ``MemoryEngine``).
        self.calls: list[tuple] = []
        #: What the runtime driver's ``engine_id`` answers (the stack lock's key); None: it cannot say.
        self.id: str | None = f"memory-{uuid.uuid4().hex[:12]}"
        #: Seconds each call of a verb takes (see ``MemoryEngine``).
        self.delays: dict[str, float] = dict(delays or {})
        #: The most calls of each verb that were in progress at once; ``"work"``: of every
        #: call that keeps the engine busy (all but ``observe``, ``events``, ``wait`` and a
        #: container's ``delete``), which is what ``ApplyOptions.workers`` bounds.
        self.peak: Counter[str] = Counter()
        self._running: Counter[str] = Counter()
        self._faults: list[_Fault] = []
        self._feeds: list[queue.SimpleQueue] = []  # one per open event stream
        self._lock = threading.RLock()  # apply calls drivers from worker threads

    def of(self, kind: Kind) -> dict[str, LiveObject]:
        """The records of one kind, by name."""
        return {Kind.IMAGE: self.images, Kind.NETWORK: self.networks,
                Kind.VOLUME: self.volumes, Kind.CONTAINER: self.containers}[kind]

    def add(self, *objects: LiveObject) -> None:
        """Put objects in the engine as made by hand or by another tool; not journaled."""
        with self._lock:
            for obj in objects:
                self._store(obj)

    def write(self, name: str, line: str, *, stream: str = "stdout", at: float | None = None) -> None:
        """Have the container ``name`` write ``line`` (at unix time ``at``, default now): what its ``logs`` show."""
        with self._lock:
            self.output.setdefault(name, []).append((time.time() if at is None else at, stream, line))

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
        return self._new_image(self.registry, ref)

    def replace_archive(self, path: str) -> str:
        """Make the image archive at ``path`` hold a new image (a file replaced by hand); return its id.

        The registry driver's ``observe`` then reports the local image's
        ``content`` as changed, for specs that load that archive.
        """
        return self._new_image(self.archives, path)

    def _new_image(self, sources: dict[str, str], source: str) -> str:
        """A new image id for ``source`` (a tag, an archive) in ``sources``, as if someone replaced it."""
        with self._lock:
            sources[source] = digest(f"{source}@{uuid.uuid4().hex}")
            return sources[source]

    def archive_image_id(self, path: str) -> str:
        """The id of the image the archive at ``path`` holds now."""
        with self._lock:
            return self.archives.get(path) or digest(path)

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
        """Write ``record`` and tell every event stream what happened (with the engine held)."""
        old = self.of(record.kind).get(record.name)
        self.of(record.kind)[record.name] = record
        if old is None or old.id != record.id:
            action = "create"
        elif old.state != record.state and "running" in (old.state, record.state):
            action = "start" if record.state == "running" else "die"
        else:
            action = "update"
        self._publish(action, record)

    def _drop(self, kind: Kind, name: str) -> None:
        """Delete the record ``name`` of ``kind`` and tell every event stream (with the engine held)."""
        self._publish("destroy", self.of(kind).pop(name))

    def _publish(self, action: str, record: LiveObject) -> None:
        for feed in self._feeds:
            feed.put((action, record))

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


def digest(text: str) -> str:
    """A ``sha256:`` id derived from ``text``, as the engine's ids look."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
