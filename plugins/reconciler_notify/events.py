"""Which event a pass is: the names people subscribe to, and the mapping from what the core reports.

A chat channel wants "shop: failed", not a report to read, so each thing the
plugin hears is first given one event name. The mapping is pure and small
(docs/notify.md, "Events"):

- an ``ApplyReport`` with a failed change whose exception is ``RolledBack``: ``rolled-back``;
  with any other failed change: ``failed``; with changes, all ok, after a pass the engine or the
  resync timer woke (``engine``, ``resync``): ``drift-repaired``; any other trigger (a commit, a file,
  the API, a retry, the CLI's ``manual``): ``applied``; with no change: nothing;
- a loop's pass (``reconciler_pass_finished``) with crash-looping containers: ``crash-looping``; one
  whose suspended stack held a non-empty plan: ``suspended``; one that failed before applying anything
  (the spec does not load, the engine is unreachable): ``failed``;
- an ``ImageEvent``: ``image.updated``, ``image.quarantined``, ``image.released``;
- a preview stack that came up or went away (``reconciler_preview_changed``): ``preview.up``, ``preview.down``.
  Each is one message: a preview's changes are rare and each matters, so they are never a storm (``throttled``).
"""
from __future__ import annotations

import enum
import threading
from typing import Iterable

from reconciler.sdk import ApplyReport, Plan, RolledBack, Status

__all__ = ["DRIFT_TRIGGERS", "GROUPS", "Event", "HeldDrift", "classify_report", "parse_events"]


class Event(enum.StrEnum):
    """What a notification is about: the names a target's ``events:`` lists."""

    APPLIED = "applied"
    FAILED = "failed"
    ROLLED_BACK = "rolled-back"
    DRIFT_REPAIRED = "drift-repaired"
    CRASH_LOOPING = "crash-looping"
    SUSPENDED = "suspended"
    IMAGE_UPDATED = "image.updated"
    IMAGE_QUARANTINED = "image.quarantined"
    IMAGE_RELEASED = "image.released"
    PREVIEW_UP = "preview.up"
    PREVIEW_DOWN = "preview.down"

    @property
    def words(self) -> str:
        """The event for people, in a title (``shop: rolled back``)."""
        return self.value.replace("-", " ").replace(".", " ")

    @property
    def throttled(self) -> bool:
        """Whether a storm of this event becomes one message per interval (``storm``); a preview's coming up or
        going away is told each time."""
        return not self.value.startswith("preview.")


#: Triggers whose pass repairs what moved under the stack (the spec did not change): the loop's values.
DRIFT_TRIGGERS = frozenset({"engine", "resync"})
#: Names a target may list for several events at once.
GROUPS: dict[str, frozenset[Event]] = {
    "all": frozenset(Event),
    "image": frozenset(e for e in Event if e.value.startswith("image.")),
    "preview": frozenset(e for e in Event if e.value.startswith("preview.")),
}


def classify_report(report: ApplyReport) -> Event | None:
    """The event one apply is, from its outcomes and its trigger; None when it changed nothing."""
    if not report.outcomes:
        return None
    failed = [o for o in report.outcomes if o.status is Status.FAILED]
    if any(isinstance(o.exception, RolledBack) for o in failed):
        return Event.ROLLED_BACK
    if failed or not report.ok:
        return Event.FAILED
    return Event.DRIFT_REPAIRED if report.trigger in DRIFT_TRIGGERS else Event.APPLIED


def parse_events(names: Iterable[str]) -> frozenset[Event]:
    """The events ``names`` subscribe to (event names or ``all``, ``image``, ``preview``).

    Raises ``ValueError`` naming the first unknown name and the known ones.
    """
    events: set[Event] = set()
    for name in names:
        name = str(name).strip().lower()
        if name in GROUPS:
            events |= GROUPS[name]
            continue
        try:
            events.add(Event(name.replace("_", "-").replace(" ", "-")))
        except ValueError:
            known = ", ".join([*GROUPS, *(e.value for e in Event)])
            raise ValueError(f"unknown event {name!r} (known: {known})") from None
    return frozenset(events)


class HeldDrift:
    """Whether a suspended stack's held plan is news: a suspension is told when its drift appears or changes,
    not on every resync that finds the same drift held again (thread-safe: loops call it from their threads)."""

    def __init__(self) -> None:
        self._told: dict[str, frozenset[str]] = {}
        self._lock = threading.Lock()

    def news(self, stack: str, held: Plan | None) -> bool:
        """True when ``held`` (the plan a suspended stack did not apply) differs from the last one told."""
        changes = frozenset(c.id for c in held.changes) if held is not None else frozenset()
        with self._lock:
            if not changes:
                self._told.pop(stack, None)
                return False
            if self._told.get(stack) == changes:
                return False
            self._told[stack] = changes
            return True
