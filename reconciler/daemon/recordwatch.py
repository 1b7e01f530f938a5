"""The daemon's watch on its record: suspensions and holds made on this host reach the loops within a second.

``reconcile suspend``, ``resume``, ``rollback`` and ``release`` write the
state database and take no lock beside a running daemon, so the daemon reads
the record's suspensions once a second (one small read) and gives a pass to
each stack whose suspension changed there; the API's in-memory copy
(``Daemon.on_record``) is told what it read, and the record's previews. Its own thread, ``record``:
no exception ends it.
"""
from __future__ import annotations

import threading
import time
from typing import Any

from ..following import unexpected
from ..loop import Trigger

__all__ = ["RECORD_POLL", "watch_record"]

RECORD_POLL = 1.0  # seconds between reads of the record's suspensions (``reconcile suspend`` on this host)


def watch_record(daemon: Any, stop: threading.Event) -> None:
    """Each second, which stacks the record says are suspended: one that ``reconcile suspend`` or ``resume``
    changed on this host (not through the API, which triggers its pass itself) gets a pass now, not at
    its next resync. One small read a second; only ``stop`` ends it.

    ``daemon`` is the runner's ``Daemon`` (typed ``Any``: the runner imports this module).
    """
    seen: dict[str, str] | None = None
    failures = 0
    while True:
        try:
            read_at = time.monotonic()
            now = daemon.reconciler.state.suspended()
            if daemon.on_record is not None:
                state = daemon.reconciler.state  # the API's copy: suspensions, holds and previews
                daemon.on_record(now, state.holds(), state.previews(), read_at=read_at)
            changed = set() if seen is None else {s for s in set(now) | set(seen) if now.get(s) != seen.get(s)}
            for worker in daemon.workers if changed else ():  # each second: nothing per stack when nothing changed
                # A pass already run as the record says now (the API's own) needs no other.
                ran_suspended = worker.last is not None and worker.last.suspended is not None
                if worker.stack in changed and ran_suspended != (worker.stack in now):
                    worker.loop.trigger(Trigger.RECORD)
            seen, failures = now, 0
        except Exception as exc:  # a record that cannot be read now may be read later
            failures += 1
            unexpected(exc, daemon.metrics.worker_error)
        if stop.wait(RECORD_POLL if not failures else RECORD_POLL + min(failures, 60)):
            return
