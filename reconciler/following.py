"""Threads that must never die: one stack's own engine event followers, and the one way every daemon thread
reports an exception nobody expected. A loop here is a ``loop.StackLoop``, below which this module sits.

``reconcile watch`` follows its one stack's events with a thread per event
source (``follow_events``); the daemon follows every stack through one
``events.EventHub`` stream per engine instead. Both, the scheduler's workers
and the pollers report what they catch through ``unexpected``: one log line
naming the thread, then ``on_error(thread name)`` (the daemon's metrics).
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable

from .errors import ReconcilerError
from .redact import redact

__all__ = ["follow_events", "unexpected"]

log = logging.getLogger("reconciler.loop")

#: What a follower of ``ObjectDriver.events`` (names only) tells its loop: something of the stack changed.
EVENT = object()


def follow_events(loop: Any, sources: Iterable, stack: str, stop: threading.Event) -> list[threading.Thread]:
    """One thread per event source (a driver with ``events``): each event triggers a pass.

    A stream that says it is open (``drivers.stream_opened``) asks for a look:
    whatever changed between the last pass's read of the live state and the
    stream was reported to no one. A stream that breaks (the engine
    restarted) is opened again after a capped backoff.
    """
    threads = []
    for source in sources:
        thread = threading.Thread(target=_follow, args=(loop, source, stack, stop), daemon=True,
                                  name=f"events-{stack}-{type(source).__name__}")
        thread.start()
        threads.append(thread)
    return threads


def _follow(loop: Any, source, stack: str, stop: threading.Event) -> None:
    announces = False

    def opened() -> None:
        nonlocal announces
        announces = True
        loop.engine_event(None)  # a look

    following = _Following(stop, opened)
    failures = 0
    while not stop.is_set():
        try:
            for _name in source.events(stack, loop.names, following):
                failures = 0
                loop.engine_event(EVENT)
        except ReconcilerError:
            failures += 1
        except Exception as exc:  # a driver's bug: the stream is opened again after a backoff
            failures += 1
            unexpected(exc, loop.on_error)
        if stop.wait(loop._backoff(failures) or loop.options.backoff_base):
            return
        if not announces:  # it never says when it is open: look now, a reconnect may have missed events
            loop.engine_event(EVENT)


def unexpected(exc: BaseException, on_error: Callable[[str], None] | None = None) -> str:
    """Report an exception nobody expected, caught so that the thread it reached goes on; return its text.

    One log line naming the thread (secrets redacted, the traceback only at
    debug level), then ``on_error(thread name)`` counts it (the daemon's
    metrics). A failing ``on_error`` is logged too, never raised.
    """
    lines = str(exc).strip().splitlines()
    text = redact(f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__)
    thread = threading.current_thread().name
    log.error("%s: %s (carrying on after a backoff)", thread, text, exc_info=log.isEnabledFor(logging.DEBUG))
    if on_error is not None:
        try:
            on_error(thread)
        except Exception as failed:  # counting must not end the thread it reports on
            log.error("%s: counting an error failed: %s", thread, redact(repr(failed)))
    return text


class _Following:
    """The ``stop`` an event source is given: the loop's (``is_set``, ``wait``...), plus ``opened()`` for
    ``drivers.stream_opened``."""

    def __init__(self, stop: threading.Event, opened: Callable[[], None]) -> None:
        self._stop, self.opened = stop, opened

    def __getattr__(self, name: str):
        return getattr(self._stop, name)
