"""A fixed pool of workers running the passes of many stacks: threads do not grow with stacks.

The daemon used to give every stack a thread of its own, which slept almost
always and woke all at once (a cold start, an engine restart, a resync): a
thousand stacks were six thousand threads and a load average near 500. Here
each stack is a ``StackLoop`` that only keeps its triggers, its backoff and its
resync time; a ``Scheduler`` owns ``workers`` threads and one queue keyed by
stack:

- one pass per stack at a time: a trigger that comes during its pass is kept by
  the loop, and the stack is due again when the pass ends (triggers coalesce);
- a stack is due at its first pending trigger plus the debounce, never before
  its backoff ends, else at its resync: a stack that fails waits out its backoff
  without holding a worker;
- fair across groups (the daemon's sources): due stacks are taken round-robin
  by group, in the order they became due within one, so a source of a thousand
  stacks does not starve a source of one;
- resyncs take one lane: a stack due only for its resync (nothing pending) waits
  in a queue of its own, served by one worker at a time, after every other due
  stack. A sweep of settled stacks is CPU alone (its lists are shared,
  ``settled.py``): eight threads running it at once gain nothing under the
  GIL, cost more (0.58 against 0.51 ms of CPU a pass, 150 stacks in one
  process) and held every worker while a drift or a commit waited behind the
  sweep of its source. A stack in that queue that is triggered meanwhile
  leaves it for its group's;
- while a worker runs a stack's pass, its thread is named ``stack-<key>``, so
  logs and the worker-error counter name the stack as a thread of its own did.

Pure scheduling: the loops do the work (``StackLoop.step``), and every pass
still reads the whole live state again (level-triggered).
"""
from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from collections import deque
from typing import Callable

from .following import unexpected
from .loop import StackLoop

__all__ = ["RESYNC_LANE", "Scheduler", "default_workers"]

#: Resync passes (of stacks with nothing else pending) running at once.
RESYNC_LANE = 1


def default_workers() -> int:
    """Workers for a machine: passes mostly wait on the engine, so a few per core (at least 4, at most 32)."""
    return max(4, min(32, 4 * (os.cpu_count() or 1)))


class Scheduler:
    """Runs the passes of every loop added, at most ``workers`` at a time, until ``run``'s ``stop`` is set."""

    def __init__(self, workers: int | None = None, *, on_error: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.workers = workers or default_workers()
        self.on_error = on_error
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._loops: dict[str, tuple[StackLoop, str]] = {}  # key → (loop, group)
        self._heap: list[tuple[float, int, str]] = []  # (due, order, key); stale entries are skipped
        self._due: dict[str, float] = {}  # key → the due time of its live heap entry
        self._ready: dict[str, deque[str]] = {}  # group → keys due now, oldest first
        self._resyncs: deque[str] = deque()  # keys due only for their resync, oldest first (the lane)
        self._queued: set[str] = set()  # keys in a ready queue or the lane
        self._running: set[str] = set()
        self._in_lane: set[str] = set()  # keys whose resync runs in the lane now
        self._turn: deque[str] = deque()  # groups with a stack due, in the order they take turns
        self._turning: set[str] = set()  # the groups in ``_turn``
        self._order = itertools.count()
        self._stopping = False
        #: Passes run (a pass that found nothing due is not one).
        self.passes = 0

    # -- stacks ----------------------------------------------------------------------------

    def add(self, key: str, loop: StackLoop, group: str = "") -> None:
        """Serve ``loop`` under ``key`` (one key, one stack); ``group``: whose turn it shares (a source)."""
        loop.on_trigger = lambda: self.poke(key)
        with self._cond:
            self._loops[key] = (loop, group)
            if group not in self._ready:
                self._ready[group] = deque()
            self._schedule(key)
            self._cond.notify()

    def remove(self, key: str, *, wait: float = 0.0) -> bool:
        """Stop serving ``key``; a pass in flight finishes, and is waited for up to ``wait`` seconds.

        False when that pass was still running after ``wait`` (true when none ran, or it ended).
        """
        with self._cond:
            entry = self._loops.pop(key, None)
            self._due.pop(key, None)
            if key in self._queued:
                self._queued.discard(key)
                (self._resyncs if key in self._resyncs else self._ready[entry[1]]).remove(key)
            if entry is not None:
                entry[0].on_trigger = None
            until = time.monotonic() + wait
            while key in self._running and time.monotonic() < until:  # a pass's end notifies one waiter: look often
                self._cond.wait(timeout=0.05)
            return key not in self._running

    def poke(self, key: str) -> None:
        """``key``'s loop was triggered: it may be due sooner (thread-safe, cheap)."""
        with self._cond:
            if key not in self._loops or key in self._running:
                return
            if key not in self._queued:
                self._schedule(key)
                self._cond.notify()
            elif key in self._resyncs:  # waiting in the lane, and now triggered: it takes its group's turn
                self._resyncs.remove(key)
                self._make_ready(key, self._loops[key][1])
                self._cond.notify()

    def _schedule(self, key: str) -> None:
        """(Re)file ``key`` at its loop's due time. Holds ``_cond``."""
        due = self._loops[key][0].due()
        if self._due.get(key) != due:
            self._due[key] = due
            heapq.heappush(self._heap, (due, next(self._order), key))

    # -- workers ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Run the workers until ``stop`` is set (set it, then ``wake``); passes in flight finish."""
        threads = [threading.Thread(target=self._work, args=(stop,), name=f"pass-{n}", daemon=True)
                   for n in range(self.workers)]
        for thread in threads:
            thread.start()
        while not stop.wait(0.5):  # short waits: a signal's Python handler runs in this (main) thread
            pass
        self.wake()
        for thread in threads:
            thread.join(timeout=120)  # a pass in flight finishes

    def wake(self) -> None:
        """End the workers' waits now (after setting ``stop``)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def _work(self, stop: threading.Event) -> None:
        thread = threading.current_thread()
        idle = thread.name
        while not stop.is_set():
            key = self._take(stop)
            if key is None:
                continue
            ran = False
            try:
                loop = self._loops.get(key, (None,))[0]
                if loop is not None:
                    thread.name = f"stack-{key}"
                    ran = loop.step() is not None
            except Exception as exc:  # ``step`` never raises; a bug here must not end the worker either
                unexpected(exc, self.on_error)
            finally:
                thread.name = idle
                with self._cond:
                    self.passes += ran
                    self._running.discard(key)
                    self._in_lane.discard(key)
                    if key in self._loops:
                        self._due.pop(key, None)
                        self._schedule(key)
                    self._cond.notify()

    def _take(self, stop: threading.Event) -> str | None:
        """The next due stack, marked running; None when stopping."""
        with self._cond:
            while not (stop.is_set() or self._stopping):
                now = self._clock()
                self._promote(now)
                key = self._next_ready()
                if key is not None:
                    self._running.add(key)
                    return key
                wait = self._heap[0][0] - now if self._heap else 1.0
                self._cond.wait(timeout=min(max(wait, 0.001), 1.0))
        return None

    def _promote(self, now: float) -> None:
        """Move the stacks due by ``now`` to their group's ready queue. Holds ``_cond``."""
        while self._heap and self._heap[0][0] <= now:
            due, _, key = heapq.heappop(self._heap)
            if self._due.get(key) != due or key in self._running or key in self._queued:
                continue  # stale: filed again since, or running (filed again when its pass ends)
            del self._due[key]
            loop, group = self._loops[key]
            if loop.resync_only():
                self._resyncs.append(key)
            else:
                self._make_ready(key, group)
            self._queued.add(key)

    def _make_ready(self, key: str, group: str) -> None:
        """Queue ``key`` in its group's ready queue, the group taking its turn after the others due. Holds ``_cond``."""
        self._ready[group].append(key)
        if group not in self._turning:
            self._turning.add(group)
            self._turn.append(group)

    def _next_ready(self) -> str | None:
        """The next group's oldest due stack, groups taking turns; else the lane's oldest resync when the lane has
        room. Holds ``_cond``."""
        while self._turn:  # only groups with a stack due take turns: O(1) a take, whatever the number of sources
            group = self._turn.popleft()
            ready = self._ready[group]
            if not ready:  # emptied by ``remove``
                self._turning.discard(group)
                continue
            key = ready.popleft()
            self._queued.discard(key)
            if ready:
                self._turn.append(group)
            else:
                self._turning.discard(group)
            return key
        if self._resyncs and len(self._in_lane) < RESYNC_LANE:
            key = self._resyncs.popleft()
            self._queued.discard(key)
            self._in_lane.add(key)
            return key
        return None

    # -- what is going on ------------------------------------------------------------------

    def busy(self) -> int:
        """Passes running now."""
        with self._cond:
            return len(self._running)

    def waiting(self) -> int:
        """Stacks due and waiting for a worker."""
        with self._cond:
            return len(self._queued)
