"""One read of the backend for every pass that needs it at the same moment, never an older one.

Why it exists: a daemon's passes of many stacks run together, and each pass
used to list every kind with its own label filter, so 1,000 stacks resyncing
made 4,000 list calls. A driver that lists its whole kind once instead, and
picks each stack's objects out of that answer, can share the answer between
the passes of that moment: ``fresh_read``.

Fresh by construction: a pass takes only an answer whose request *started* at
or after the pass started observing (``DriverContext.fresh_after``, set by the
core where it clears ``pass_cache``). So it sees its own previous pass's
writes, and the change whose event woke it: the engine reports an event after
the change. A pass never waits for an answer older than that: when the read in
flight started too early, it waits for that one to end, then the first such
waiter reads once more for all who wait. At most one read per key is in
flight. A failed read is not remembered: its waiters get its error, the next
pass reads again.

Without ``DriverContext.engine_shared`` (the CLI: one run, one stack) it is a
read once per observe pass, shared by the drivers observed together.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Callable, TypeVar

from .contract import DriverContext

__all__ = ["FreshReads", "fresh_read", "fresh_reads"]

T = TypeVar("T")
_READS_KEY = "reconciler.fresh_reads"  # in DriverContext.engine_shared: the reconciler's FreshReads
_LOCK = threading.Lock()  # held for moments only: to make a context's FreshReads or a per-pass lock


class _Flight:
    """One read in progress: when its request started, and its answer once it ends."""

    def __init__(self) -> None:
        self.started = time.monotonic()  # taken before the request is sent: its answer is at least this fresh
        self.answer: Future = Future()


class FreshReads:
    """The newest answer of each key's read, and the read in flight, for every pass that shares them.

    ``read(key, fetch, after)`` is the single flight ``fresh_read`` describes;
    it also serves what must be opened once and again only after a failure
    (a shared engine connection: ``after`` is when it last failed).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: dict[str, tuple[float, object]] = {}  # key → (when its request started, its answer)
        self._flying: dict[str, _Flight] = {}

    def read(self, key: str, fetch: Callable[[], T], *, after: float) -> T:
        """The answer of a ``fetch()`` of ``key`` whose request started at or after ``after`` (monotonic time)."""
        while True:
            with self._lock:
                done = self._done.get(key)
                if done is not None and done[0] >= after:
                    return done[1]  # type: ignore[return-value]
                flight = self._flying.get(key)
                mine = flight is None
                if mine:
                    flight = self._flying[key] = _Flight()
            if mine:
                return self._fly(key, flight, fetch)
            try:
                answer = flight.answer.result()
            except Exception:
                if flight.started >= after:
                    raise  # the read this pass would have made failed: its error is the pass's
                continue  # an older read failed: read again
            if flight.started >= after:
                return answer
            # Too old for this pass: the first waiter to get here reads again, the others wait for it.

    def _fly(self, key: str, flight: _Flight, fetch: Callable[[], T]) -> T:
        try:
            answer = fetch()
        except BaseException as exc:
            with self._lock:
                del self._flying[key]
            flight.answer.set_exception(exc)
            raise
        with self._lock:
            del self._flying[key]
            done = self._done.get(key)
            if done is None or done[0] <= flight.started:
                self._done[key] = (flight.started, answer)
        flight.answer.set_result(answer)
        return answer


def fresh_reads(context: DriverContext) -> FreshReads:
    """The ``FreshReads`` every context sharing ``context.engine_shared`` shares (which must not be None)."""
    shared = context.engine_shared
    assert shared is not None, "a context without engine_shared has no shared reads"
    with _LOCK:
        found = shared.get(_READS_KEY)
        if found is None:
            found = shared[_READS_KEY] = FreshReads()
    return found


def fresh_read(context: DriverContext, key: str, fetch: Callable[[], T]) -> T:
    """``fetch()``'s answer for ``key``, shared by every pass that needs it at the same moment; never a stale one.

    With ``context.engine_shared`` (the daemon) and ``context.fresh_after``
    (a pass of a burst): the answer of a fetch of ``key`` whose request
    started at or after ``context.fresh_after``: a finished one if there is one, else
    the one in flight if it started late enough, else a new one, with at most
    one fetch of ``key`` in flight. Otherwise: ``fetch()`` once per
    observe pass for every driver of the run (the core clears
    ``context.pass_cache`` when a pass starts). A failed fetch is not
    remembered either way. ``key`` names what ``fetch`` answers: two fetches
    under one key must answer the same question (a stack's filtered list has
    the stack in its key; a whole kind's list does not).
    """
    if context.engine_shared is not None and context.fresh_after is not None:
        return fresh_reads(context).read(key, fetch, after=context.fresh_after)
    with _LOCK:
        lock = context.shared.setdefault(f"reconciler.fresh_read.lock.{key}", threading.Lock())
    with lock:
        if key not in context.pass_cache:
            context.pass_cache[key] = fetch()
        return context.pass_cache[key]
