"""What ``reconcile logs`` and ``reconcile events`` read: a stack's container output and its history, merged in time.

Why it exists: the command line and the daemon's ``/logs`` and ``/events``
both show the same two things, read through the runtime driver
(``RuntimeDriver.logs`` and ``event_log``) and the state database's sync
history, so the reading and the merging live here once; each front end only
renders. Nothing here runs on a reconcile pass: only when someone asks.
"""
from __future__ import annotations

from datetime import datetime, timezone
import queue
import re
import threading
import time
from typing import Any, Callable, Collection, Iterable, Iterator

from .drivers import RuntimeDriver
from .errors import SpecError
from .values import value

__all__ = ["LogLine", "StackEvent", "engine_event", "engine_events", "merged_events", "parse_since", "read_logs",
           "stack_containers", "sync_event"]

_AGO = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: How often a follow of the sync history looks for new passes (one small read of the state database).
SYNC_POLL = 1.0


@value
class LogLine:
    """One line a container wrote."""

    container: str
    #: Unix time the engine stamped it with.
    time: float
    #: ``stdout`` or ``stderr``.
    stream: str
    #: The line, without its newline, as the container wrote it.
    line: str


@value
class StackEvent:
    """One thing that happened to a stack: an engine event about one of its objects, or one reconcile pass."""

    time: float
    #: ``engine`` or ``reconcile``.
    source: str
    #: The object's kind (container, network, volume) for an engine event; ``apply`` for a pass.
    kind: str = ""
    name: str = ""
    #: The engine's action (``die``, ``stop``...) or the pass's result (``converged``, ``failed``...).
    action: str = ""
    #: ``exit 137``, or the pass's summary, revision and trigger (``replace 1 (rev 3f2a1c9, trigger webhook)``).
    detail: str = ""

    def data(self) -> dict[str, Any]:
        """The API's and ``--output json``'s object: empty fields left out."""
        out: dict[str, Any] = {"time": self.time, "source": self.source}
        out.update({k: v for k, v in (("kind", self.kind), ("name", self.name), ("action", self.action),
                                       ("detail", self.detail)) if v})
        return out


def parse_since(text: str, *, now: float | None = None) -> float:
    """``--since``: a duration ago (``90s``, ``10m``, ``2h``, ``1d``) or an RFC 3339 time, as unix seconds."""
    found = _AGO.match(text.strip())
    if found:
        return (time.time() if now is None else now) - float(found[1]) * _UNITS[found[2]]
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SpecError(f"--since {text}: give a duration ago (10m, 2h) or an RFC 3339 time "
                        "(2026-12-07T10:00:00Z)") from None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def stack_containers(runtime: RuntimeDriver, stack: str, wanted: Collection[str] = ()) -> list[str]:
    """The names of ``stack``'s containers on ``runtime`` (one list call), sorted; ``wanted``: only these."""
    names = sorted(obj.name for obj in runtime.observe(stack, {}))
    if not wanted:
        return names
    missing = [name for name in wanted if name not in names]
    if missing:
        raise SpecError(f"stack {stack} has no container named {', '.join(missing)} "
                        f"(it has {', '.join(names) or 'none'})")
    return [name for name in names if name in wanted]


def read_logs(runtime: RuntimeDriver, containers: Iterable[str], *, follow: bool = False, since: float | None = None,
              tail: int | None = None, stop: threading.Event | None = None) -> Iterator[LogLine]:
    """The containers' lines: all of them in time order, or with ``follow``, as they arrive until ``stop`` is set.

    ``tail`` is per container, as ``docker compose logs --tail`` counts it.
    """
    names = list(containers)
    if not follow:
        lines = [LogLine(name, *entry) for name in names for entry in runtime.logs(name, since=since, tail=tail)]
        yield from sorted(lines, key=lambda line: line.time)
        return
    stop = stop or threading.Event()
    readers = [lambda name=name: (LogLine(name, *entry) for entry in
                                  runtime.logs(name, follow=True, since=since, tail=tail, stop=stop))
               for name in names]
    yield from _interleave(readers, stop)


def engine_event(record: dict[str, Any]) -> StackEvent:
    """A ``RuntimeDriver.event_log`` record as a ``StackEvent``."""
    attributes = record.get("attributes") or {}
    detail = f"exit {attributes['exitCode']}" if "exitCode" in attributes else ""
    return StackEvent(float(record.get("time") or 0), "engine", str(record.get("type", "")),
                      str(record.get("name", "")), str(record.get("action", "")), detail)


def engine_events(runtime: RuntimeDriver, stack: str, *, names: Collection[str] = (), since: float | None = None,
                  follow: bool = False, stop: threading.Event | None = None) -> Iterator[StackEvent]:
    """The runtime's events about ``stack`` as ``StackEvent``s; none from a runtime that cannot show them.

    A runtime without ``event_log`` still has its reconcile passes to show,
    so its refusal (the contract's default) ends only this half.
    """
    if type(runtime).event_log is RuntimeDriver.event_log:
        return
    for record in runtime.event_log(stack, names=names, since=since, follow=follow, stop=stop):
        yield engine_event(record)


def sync_event(sync: Any) -> StackEvent:
    """A row of the sync history (``state.Sync``) as a ``StackEvent``, at the time the pass ended."""
    started = datetime.fromisoformat(sync.started_at.replace("Z", "+00:00")) if sync.started_at else None
    when = (started.timestamp() if started else 0.0) + float(sync.seconds or 0)
    said = [f"rev {sync.revision[:7]}"] if sync.revision else []
    trigger = getattr(sync, "trigger", "")
    said += [f"trigger {trigger}"] if trigger else []
    detail = (sync.summary or "no changes") + (f" ({', '.join(said)})" if said else "")
    return StackEvent(when, "reconcile", "apply", sync.stack, str(sync.result), detail)


def merged_events(engine: Callable[[threading.Event], Iterable[StackEvent]],
                  passes: Callable[[float | None], list[StackEvent]], *, since: float | None = None,
                  follow: bool = False, stop: threading.Event | None = None) -> Iterator[StackEvent]:
    """The engine's events and the reconcile passes since ``since``, merged in time order.

    ``engine(stop)`` yields the engine's (followed when ``follow``);
    ``passes(after)`` returns the passes that ended after ``after`` (None: all).
    Without ``follow`` both are read whole and sorted; with it, what happened
    so far comes first, in order, then each new event as it arrives.
    """
    stop = stop or threading.Event()
    if not follow:
        events = [*engine(stop), *passes(since)]
        yield from sorted((e for e in events if since is None or e.time >= since), key=lambda e: e.time)
        return
    seen = [e for e in passes(since) if since is None or e.time >= since]
    yield from sorted(seen, key=lambda e: e.time)
    last = max((e.time for e in seen), default=since if since is not None else time.time())

    def new_passes() -> Iterator[StackEvent]:
        nonlocal last
        while not stop.wait(SYNC_POLL):
            for event in sorted(passes(last), key=lambda e: e.time):
                if event.time > last:
                    last = event.time
                    yield event

    yield from _interleave([lambda: engine(stop), new_passes], stop)


_DONE = object()


def _interleave(readers: list[Callable[[], Iterable[Any]]], stop: threading.Event) -> Iterator[Any]:
    """Each reader's items as they arrive, from one thread per reader, until all end or ``stop`` is set.

    A reader that fails ends the whole: its exception is raised here once the
    others are told to stop.
    """
    arrived: queue.Queue = queue.Queue(maxsize=1000)  # a slow reader of the output slows the readers down

    def pump(reader: Callable[[], Iterable[Any]]) -> None:
        try:
            for item in reader():
                while not stop.is_set():
                    try:
                        arrived.put(item, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            arrived.put((_DONE, exc))
            return
        arrived.put((_DONE, None))

    for reader in readers:
        threading.Thread(target=pump, args=(reader,), daemon=True, name="logs-reader").start()
    running = len(readers)
    try:
        while running and not stop.is_set():
            try:
                item = arrived.get(timeout=0.25)
            except queue.Empty:
                continue
            if isinstance(item, tuple) and len(item) == 2 and item[0] is _DONE:
                running -= 1
                if item[1] is not None:
                    raise item[1]
                continue
            yield item
    finally:
        stop.set()
