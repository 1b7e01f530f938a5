"""Replacing a running container without leaving a hole, and going back when the new one fails.

The old container is never removed before its successor runs:

1. the old container is renamed aside (``<name>-old-<id>``), so its name is free
   (a pass that was interrupted may have left it there: ``ownership.set_aside_for``);
2. the new one is created under the name: if the engine refuses its config,
   the old one gets its name back, untouched, still running;
3. ``start-first``: the new one starts beside the old one and must become
   ready (healthy, or running for ``min_ready``) before the old one is
   drained (taken out of name resolution) and stopped;
   ``stop-first`` (a fixed host port cannot be held twice): the old one
   stops, then the new one starts and must become ready;
4. only then is the old container removed.

A new container that fails to start or to become ready is removed and the old
one is put back (its name, and running if it was), unless rollback is turned
off for debugging. Everything the new container needs (its image, networks
and volumes) was made by earlier steps, before step 1.

A release with data (``update.snapshot``, ``reconciler.releasedata``) snapshots
its volumes while nothing writes them: ``stop-first``, after the old container
stopped and before the new one starts; ``start-first``, before step 1, with
the old container paused for the snapshot and resumed whatever happens; a
container not running, before step 1. A failed snapshot fails the change with
the old container running under its name. When the new container fails, the
rollback restores the volumes from their snapshots (unless ``--no-restore``
or ``restore: never``) after the new container is removed and the old one
stopped, and before the old one gets its name back and starts.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from .drivers import RuntimeDriver
from .errors import PermanentError, ReconcilerError, RolledBack
from .model import Kind, LiveObject
from .ownership import aside_name as _aside
from .plan import Change, Reason
from .releasedata import ReleaseData
from .retry import RetryPolicy, call_with_retries

__all__ = ["aside_name", "roll"]


def aside_name(change: Change) -> str:
    """Where the old container waits while its successor starts."""
    return _aside(change.name, change.live_id)


def roll(
    change: Change,
    runtime: RuntimeDriver,
    *,
    create: Callable[[], None],
    removed: Callable[[], None],
    work: threading.Semaphore,
    retry: RetryPolicy,
    rollback: bool = True,
    data: ReleaseData | None = None,
    restore: bool = True,
) -> None:
    """Replace ``change``'s container as its ``rollout`` says; raise when the new one could not take over.

    ``create`` makes the new container (recording it); ``removed`` records the
    old one's removal; ``work`` bounds engine-heavy calls across the apply.
    ``data``: the volumes to snapshot first, and to restore on a rollback when
    ``restore`` (``ApplyOptions.restore``) and the container's ``restore:`` allow it.
    """
    rollout = change.rollout
    assert rollout is not None
    calls = _Calls(retry, work)
    if rollout.delay:
        time.sleep(rollout.delay)
    old = change.live_id
    running = change.live_state in ("running", "restarting")
    stop_first = rollout.order == "stop-first" and running
    if data is not None and not stop_first:  # nothing has happened yet: a failure leaves the old one as it is
        data.snapshot_first(lambda: data.take_paused(runtime, old) if running else data.take())
    if change.reason is not Reason.INTERRUPTED:  # else an interrupted pass left it aside already
        calls.wait(lambda: runtime.rename(old, aside_name(change)))
    try:
        calls.work(create)
    except ReconcilerError:
        calls.wait(lambda: runtime.rename(old, change.name))  # the old one never stopped
        raise
    if stop_first:
        calls.wait(lambda: runtime.stop(old))
        if data is not None:
            try:
                data.snapshot_first(data.take)
            except ReconcilerError as exc:
                _put_back(change, runtime, calls, running, exc)
                raise
    try:
        calls.work(lambda: runtime.start(change.name))
        runtime.ready(change.name, healthcheck=rollout.healthcheck, min_ready=rollout.min_ready,
                      timeout=rollout.timeout)
    except ReconcilerError as exc:
        if not rollback:
            raise PermanentError(f"{exc} (not rolled back: the old container waits as {aside_name(change)})") from exc
        restores = data is not None and data.restores(restore)
        _put_back(change, runtime, calls, running, exc, data=data if restores else None, stop=not stop_first)
        said = f"; {data.outcome(restored=restores)}" if data is not None and data.taken else ""
        raise RolledBack(f"the new container failed, so the old one was put back: {exc}{said}") from exc
    if rollout.order == "start-first" and running:
        calls.wait(lambda: runtime.drain(old))  # its successor is ready: no new request goes to it
    calls.wait(lambda: runtime.delete(LiveObject(Kind.CONTAINER, aside_name(change), old, state="running")))
    removed()


def _put_back(change: Change, runtime: RuntimeDriver, calls: _Calls, running: bool, failure: ReconcilerError,
              *, data: ReleaseData | None = None, stop: bool = True) -> None:
    """Remove the failed new container, restore ``data`` (the old container stopped first, unless ``stop`` is
    false: it stopped already), and give the old one its name (and its running state) back; raise, naming
    ``failure``, when that fails."""
    try:
        calls.wait(lambda: runtime.delete(LiveObject(Kind.CONTAINER, change.name, change.name, state="running")))
        if data is not None:
            if running and stop:  # start-first: it ran on the live volume, whose content is about to be replaced
                calls.wait(lambda: runtime.stop(change.live_id))
            data.restore()
        calls.wait(lambda: runtime.rename(change.live_id, change.name))
        if running:
            calls.work(lambda: runtime.start(change.name))
    except ReconcilerError as again:
        raise PermanentError(f"{failure}; putting the old container back failed too: {again}") from failure


class _Calls:
    """Driver calls with retries; engine-heavy ones hold a worker slot while they run."""

    def __init__(self, retry: RetryPolicy, work: threading.Semaphore) -> None:
        self.retry = retry
        self.slots = work

    def wait(self, call: Callable[[], object]) -> None:
        call_with_retries(call, self.retry)

    def work(self, call: Callable[[], object]) -> None:
        with self.slots:
            call_with_retries(call, self.retry)
