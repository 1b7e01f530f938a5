"""One event stream per engine, demultiplexed to the stacks that follow it; and a pass's echoes told from drift.

Why it exists: a follower thread per stack and per event source, each with its
own engine connection, made ~3 threads and descriptors per stack (5,905
threads at 1,000 stacks). ``EventHub`` opens one stream per backend instead
(per driver class and engine URL, among drivers with ``engine_events``) and
hands each event to the stack workers it concerns: by the stack the object's
labels claim, by the stack of the container a network connect or a volume
mount is about, else by name. A driver with only ``events(stack, names,
stop)`` (a third-party one) keeps a follower thread per stack: it works, but
does not scale to hundreds of stacks.

And a pass's own writes (create, start, connect) come back as events that
would wake its stack for a second pass: ``is_echo`` tells, from the pass's
outcomes alone, which events it caused itself, so the scheduler can drop
them. A container that dies after the pass started it is never an echo:
crash-loop detection depends on that event.

No thread here dies of an exception: each stream loop catches everything,
reports it (``following.unexpected``, then ``on_error``), backs off and opens its
stream again; only the ``stop`` given to ``start`` ends them.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Collection, Iterable, Sequence

from .drivers import ObjectDriver
from .errors import ReconcilerError
from .following import unexpected
from .model import EngineEvent, Kind
from .ownership import aside_name
from .plan import Action, Change
from .report import Outcome, Status
from .retry import RetryPolicy

__all__ = ["EventHub", "is_echo"]

#: ``deliver(key, event)``; ``deliver(key, None)``: a stream (re)opened, so look (changes before it were told no one).
Deliver = Callable[[str, "EngineEvent | None"], None]


class EventHub:
    """Follows every engine the stack workers need, one stream each, and delivers each event to its workers.

    ``follow(key, stack, names, sources)`` after each load of a stack (a copy
    of its object names; cheap and idempotent), ``forget(key)`` when its
    worker goes; ``start(stop)`` starts the streams (a stream is also started
    on the first ``follow`` that needs it after that). ``deliver`` runs on the
    stream's thread: it should only queue a trigger.
    """

    def __init__(self, deliver: Deliver, *, on_error: Callable[[str], None] | None = None,
                 backoff: RetryPolicy = RetryPolicy(base=1.0, cap=60.0)) -> None:
        self._deliver = deliver
        self._on_error = on_error
        self._backoff = backoff
        self._lock = threading.Lock()
        self._stop: threading.Event | None = None
        self._keys: dict[str, _Key] = {}
        self._by_stack: dict[str, set[str]] = {}
        self._by_name: dict[str, set[str]] = {}
        self._streams: dict[tuple, _Stream] = {}  # (driver class, engine URL) → the one stream of that backend
        self._containers: dict[str, str] = {}  # container id → the stack its labels claim

    # -- what the scheduler calls ----------------------------------------------------------------

    def follow(self, key: str, stack: str, names: Collection[str], sources: Iterable[ObjectDriver]) -> None:
        """Deliver to ``key`` the events about ``stack`` and ``names``, from ``sources``' backends (O(names))."""
        names = set(names)
        with self._lock:
            entry = self._keys.get(key)
            if entry is None:
                entry = self._keys[key] = _Key(stack)
                self._by_stack.setdefault(stack, set()).add(key)
            elif entry.stack != stack:
                self._unindex(self._by_stack, entry.stack, key)
                self._by_stack.setdefault(stack, set()).add(key)
                entry.stack = stack
                self._stop_fallbacks(entry, set(entry.fallbacks))  # they follow the old stack: start again
            for name in entry.names - names:
                self._unindex(self._by_name, name, key)
            for name in names - entry.names:
                self._by_name.setdefault(name, set()).add(key)
            entry.names -= entry.names - names  # in place: the fallback followers read this very set
            entry.names |= names
            self._attach(key, entry, list(sources))

    def forget(self, key: str) -> None:
        """Stop delivering to ``key``; a stream nobody follows any more is closed."""
        with self._lock:
            entry = self._keys.pop(key, None)
            if entry is None:
                return
            self._unindex(self._by_stack, entry.stack, key)
            for name in entry.names:
                self._unindex(self._by_name, name, key)
            self._detach(key, entry.streams)
            self._stop_fallbacks(entry, set(entry.fallbacks))

    def known(self, container_id: str, stack: str) -> None:
        """Tell the hub that ``container_id`` is ``stack``'s (its network and volume events go to that stack)."""
        with self._lock:
            self._containers[container_id] = stack

    def start(self, stop: threading.Event) -> None:
        """Start the streams followed so far, and any later ``follow`` needs; all end once ``stop`` is set."""
        with self._lock:
            if self._stop is not None:
                return
            self._stop = stop
            for stream in self._streams.values():
                self._run(stream)
            for entry in self._keys.values():
                for follower in entry.fallbacks.values():
                    self._run(follower)
        threading.Thread(target=self._close_on, args=(stop,), daemon=True, name="events-hub").start()

    def unbroken_since(self, key: str) -> float | None:
        """Since when (monotonic) every stream ``key`` hears from has been open without a break; None when one is
        not open now, has never said it is (``stream_opened``), or ``key`` follows none."""
        with self._lock:
            entry = self._keys.get(key)
            if entry is None:
                return None
            streams = [self._streams.get(ident) for ident in entry.streams] + list(entry.fallbacks.values())
        opened = [stream.opened_at if stream is not None else None for stream in streams]
        if not opened or None in opened:
            return None
        return max(opened)  # type: ignore[type-var]

    def streams(self) -> int:
        """How many event streams run now: one per backend, plus one per key for ``events``-only drivers."""
        with self._lock:
            followers = [f for entry in self._keys.values() for f in entry.fallbacks.values()]
            return sum(1 for s in [*self._streams.values(), *followers] if s.thread is not None and s.thread.is_alive())

    # -- keys, streams and followers (with the lock held) ----------------------------------------

    def _attach(self, key: str, entry: _Key, sources: list[ObjectDriver]) -> None:
        shared, own = {}, {}
        for driver in sources:
            ident = (type(driver), getattr(getattr(driver, "context", None), "engine_url", None))
            if _overrides(driver, "engine_events"):
                shared.setdefault(ident, driver)
            elif _overrides(driver, "events"):
                own.setdefault(ident, driver)
        self._detach(key, entry.streams - set(shared))
        for ident, driver in shared.items():
            stream = self._streams.get(ident)
            if stream is None:
                stream = self._streams[ident] = _Stream(driver, f"events-{ident[0].__name__}")
                self._run(stream)
            stream.keys.add(key)
            entry.streams.add(ident)
        self._stop_fallbacks(entry, set(entry.fallbacks) - set(own))
        for ident, driver in own.items():
            if ident not in entry.fallbacks:
                follower = entry.fallbacks[ident] = _Stream(driver, f"events-{key}-{ident[0].__name__}", {key})
                follower.stack, follower.names = entry.stack, entry.names
                self._run(follower)

    def _detach(self, key: str, idents: set[tuple]) -> None:
        for ident in list(idents):
            stream = self._streams.get(ident)
            idents.discard(ident)
            if stream is not None:
                stream.keys.discard(key)
                if not stream.keys:  # nobody follows this backend any more
                    stream.stop.set()
                    del self._streams[ident]

    @staticmethod
    def _stop_fallbacks(entry: _Key, idents: set[tuple]) -> None:
        for ident in idents:
            entry.fallbacks.pop(ident).stop.set()

    @staticmethod
    def _unindex(index: dict[str, set[str]], at: str, key: str) -> None:
        keys = index.get(at)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del index[at]

    def _run(self, stream: _Stream) -> None:
        """Start ``stream``'s thread, once the hub has started (and unless it is stopping)."""
        if self._stop is None or self._stop.is_set() or stream.thread is not None:
            return
        target = self._follow_engine if stream.stack is None else self._follow_stack
        stream.thread = threading.Thread(target=target, args=(stream,), daemon=True, name=stream.name)
        stream.thread.start()

    def _close_on(self, stop: threading.Event) -> None:
        stop.wait()
        with self._lock:
            for stream in [*self._streams.values(), *(f for e in self._keys.values() for f in e.fallbacks.values())]:
                stream.stop.set()

    # -- the stream threads ----------------------------------------------------------------------

    def _follow_engine(self, stream: _Stream) -> None:
        """One backend's stream, opened again after a backoff whenever it breaks; each event routed."""
        self._keep_open(stream, lambda signal: stream.driver.engine_events(signal),
                        lambda event: self._route(stream, event))

    def _follow_stack(self, stream: _Stream) -> None:
        """The fallback: a driver's ``events`` for one key's stack, each name delivered as an event of no action."""
        [key] = stream.keys
        driver = stream.driver
        self._keep_open(stream, lambda signal: driver.events(stream.stack or "", stream.names, signal),
                        lambda name: self._send(key, EngineEvent(driver.kind, name, "", stack=stream.stack or "")))

    def _keep_open(self, stream: _Stream, open_: Callable, handle: Callable) -> None:
        failures = 0
        while not stream.stop.is_set():
            announced = threading.Event()
            signal = _Signal(stream.stop, lambda: (announced.set(), self._opened(stream), self._look(stream)))
            try:
                for item in open_(signal):
                    failures = 0
                    handle(item)
            except ReconcilerError:  # the stream broke (the engine restarted): open it again
                failures += 1
            except Exception as exc:  # a driver's bug: reported, then the stream is opened again
                failures += 1
                unexpected(exc, self._on_error)
            finally:
                stream.opened_at = None  # closed: what happens now is told no one
            if stream.stop.wait(self._backoff.delay(failures) or self._backoff.base):
                return
            if not announced.is_set():  # it never says when it is open: look, events may have been missed
                self._look(stream)

    @staticmethod
    def _opened(stream: _Stream) -> None:
        stream.opened_at = time.monotonic()

    def _route(self, stream: _Stream, event: EngineEvent) -> None:
        with self._lock:
            if event.kind is Kind.CONTAINER and event.id:
                if event.action == "destroy":
                    self._containers.pop(event.id, None)
                elif event.stack:
                    self._containers[event.id] = event.stack
            keys = self._targets(event) & stream.keys
        for key in sorted(keys):
            self._send(key, event)

    def _targets(self, event: EngineEvent) -> set[str]:
        """The keys an event concerns (with the lock held); the caller keeps those on the event's stream."""
        if event.stack:
            return self._by_stack.get(event.stack, set()) | self._by_name.get(event.name, set())
        if event.container and event.container in self._containers:
            return set(self._by_stack.get(self._containers[event.container], ()))
        return self._by_name.get(event.name, set()) | self._by_name.get(event.old_name, set())

    def _look(self, stream: _Stream) -> None:
        with self._lock:
            keys = sorted(stream.keys)
        for key in keys:
            self._send(key, None)

    def _send(self, key: str, event: EngineEvent | None) -> None:
        try:
            self._deliver(key, event)
        except Exception as exc:  # the receiver's bug must not end the stream every other stack hears from
            unexpected(exc, self._on_error)


@dataclass(eq=False)
class _Key:
    """What one key follows: its stack, its names (one set, updated in place), and the streams it is on."""

    stack: str
    names: set[str] = field(default_factory=set)
    streams: set[tuple] = field(default_factory=set)
    fallbacks: dict[tuple, _Stream] = field(default_factory=dict)


@dataclass(eq=False)
class _Stream:
    """One followed stream: a backend's (``stack`` None) or one key's fallback follower."""

    driver: ObjectDriver
    name: str
    keys: set[str] = field(default_factory=set)
    stack: str | None = None
    names: set[str] = field(default_factory=set)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    #: When (monotonic) the stream last said it was open (``stream_opened``); None while it is not.
    opened_at: float | None = None


class _Signal:
    """The ``stop`` a driver's stream is given: the stream's own (``is_set``, ``wait``), plus ``opened()``
    for ``drivers.stream_opened``."""

    def __init__(self, stop: threading.Event, opened: Callable[[], object]) -> None:
        self._stop, self.opened = stop, opened

    def __getattr__(self, name: str):
        return getattr(self._stop, name)


def _overrides(driver: ObjectDriver, method: str) -> bool:
    return getattr(type(driver), method, None) is not getattr(ObjectDriver, method)


# -- echoes ------------------------------------------------------------------------------------

#: Which events about a container a pass's change causes itself, by the container they are about:
#:
#: =============================  ===========================================================  ==========
#: the change (kind container)    the container the event is about                             its echoes
#: =============================  ===========================================================  ==========
#: create, start                  the change's name (start: or its id)                         _UP
#: replace, update                the change's name, a new container                           _UP
#: replace, update                the old one: its id, or its aside name (``ownership``)       _UP | _DOWN
#: delete                         the change's name or id                                      _DOWN
#: =============================  ===========================================================  ==========
#:
#: ``die`` and ``oom`` of a container the pass created or started are never echoes (a crash is
#: drift, and crash loops are told by it), nor is ``destroy`` of one it only created: neither is in
#: ``_UP``. Networks and volumes: their own ``create`` and ``destroy`` (``_OWN``); any network
#: connect/disconnect and volume mount/unmount (``_BY_CONTAINERS``) when the pass changed a container
#: of the stack (a container's start connects and mounts), and a volume's ``create`` then too (the
#: engine reports one for each named volume a container is created with, even one that exists).
#: Nothing else is an echo.
_UP = frozenset({"create", "start", "unpause", "rename", "attach", "update", "connect"})
_DOWN = frozenset({"kill", "stop", "die", "destroy", "remove", "rename", "disconnect"})
_OWN = frozenset({"create", "destroy"})
_BY_CONTAINERS = {Kind.NETWORK: frozenset({"connect", "disconnect"}),
                  Kind.VOLUME: frozenset({"mount", "unmount", "create"})}


def is_echo(event: EngineEvent, outcomes: Sequence[Outcome]) -> bool:
    """Whether ``event`` is what the pass's own changes (its report's outcomes, ok or failed) produce.

    Pure: the scheduler drops such events when they arrive during the pass
    (or a short grace after it), so a pass does not wake its own stack again.
    """
    tried = [o.change for o in outcomes if o.status is not Status.SKIPPED]
    if event.kind in _BY_CONTAINERS and event.action in _BY_CONTAINERS[event.kind] and any(
            change.kind is Kind.CONTAINER for change in tried):
        return True
    if event.kind is Kind.CONTAINER:
        return any(event.action in _container_echoes(event, change) for change in tried
                   if change.kind is Kind.CONTAINER)
    return any(change.kind is event.kind and change.name == event.name and event.action in _OWN
               for change in tried if change.kind in (Kind.NETWORK, Kind.VOLUME))


def _container_echoes(event: EngineEvent, change: Change) -> frozenset[str]:
    """The actions of ``event``'s container that ``change`` causes itself (the table above)."""
    by_id = bool(event.id) and event.id == change.live_id
    if change.action is Action.DELETE:
        return _DOWN if by_id or event.name == change.name else frozenset()
    if change.action in (Action.REPLACE, Action.UPDATE) and change.live_id and (
            by_id or event.name == aside_name(change.name, change.live_id)):
        return _UP | _DOWN
    if event.name == change.name or (change.action is Action.START and by_id):
        return _UP
    return frozenset()
