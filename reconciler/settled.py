"""Resync passes that need no plan: the stack's spec, live objects and record are as its last empty plan found them.

Why: at a thousand stacks a resync sweep is a thousand passes a minute. The
sweep's lists are shared (one list call per kind for all of them), so
observing one stack is cheap; what costs is everything after: the lock file,
the record's reads, the plan, the driver option checks and the plugins'
vetoes, a few milliseconds a pass. The planner reads nothing but the spec, the
live state, the record and the request (no clock), so a pass whose spec is the
same object, whose live objects read the same, whose record has not been
written since and whose request asks the same would plan nothing again: it
ends after observing (``settled``). A drift the engine's events did not tell
is still seen at the next resync (the live objects differ); a record another
process wrote is seen through SQLite's ``data_version``. What neither covers
(a policy file edited, a plugin that would now veto) is looked at by the full
pass every ``FULL_EVERY``-th resync runs anyway.

What the fingerprint leaves out: a container's ``Status`` text ("Up 5
minutes", which changes every minute; the planner reads the state, health
and exit code, kept) and an object's ``info`` (shown by ``status``, never
planned from). A stack whose containers watch their writable layer
(``filesystem:``), or a pass that adopts or destroys, always plans.
"""
from __future__ import annotations

import dataclasses
import hashlib
import threading
from typing import Any

from .hashing import canonical_json
from .model import DesiredState, Kind, LiveState
from .plan import Plan
from .report import ApplyReport
from .values import compared_fields

__all__ = ["FULL_EVERY", "SettledPasses", "live_fingerprint"]

#: Every this many resyncs of a settled stack, one plans in full all the same.
FULL_EVERY = 10
#: Keys of a live object's ``details`` that change with time alone, and that no plan reads.
VOLATILE_DETAILS = frozenset({"status"})


@dataclasses.dataclass
class _Memo:
    desired: DesiredState  # the very object (a daemon keeps one per revision)
    request: Any  # the request, without what changes from pass to pass
    live: str  # ``live_fingerprint`` of what that pass observed
    record: Any  # ``StateStore.version()`` after that pass
    quiet: int = 0  # settled passes since


class SettledPasses:
    """Per stack, what its last empty plan was made from; thread-safe (passes of many stacks run at once)."""

    def __init__(self) -> None:
        self._memos: dict[str, _Memo] = {}
        self._lock = threading.Lock()

    @staticmethod
    def eligible(desired: DesiredState, request: Any) -> bool:
        """Whether a pass may end after observing: a resync of a sweep that neither adopts nor destroys, of a stack
        none of whose containers watches its writable layer."""
        return (request.snapshot_at is not None and not (request.adopt or request.adopt_compose or request.destroy)
                and request.saved is None and not any(c.filesystem.watched for c in desired.containers.values()))

    def settled(self, desired: DesiredState, request: Any, live: LiveState, record: Any) -> bool:
        """Whether this pass would plan nothing: the same spec, request, record and live objects as the last pass
        whose plan was empty (and not the ``FULL_EVERY``-th in a row)."""
        with self._lock:
            memo = self._memos.get(desired.stack)
            if (memo is None or memo.desired is not desired or memo.request != _asked(request)
                    or memo.record != record or memo.quiet >= FULL_EVERY - 1):
                return False
        if live_fingerprint(live) != memo.live:
            return False
        with self._lock:
            memo.quiet += 1
        return True

    def remember(self, desired: DesiredState, request: Any, live: LiveState, plan: Plan | None,
                 report: ApplyReport | None, record: Any) -> None:
        """After a full pass: what it planned from when its plan was empty and it converged; else nothing."""
        empty = (plan is not None and report is not None and plan.empty and not plan.refusals and not plan.drifted
                 and report.ok and not (request.adopt or request.adopt_compose or request.destroy))
        with self._lock:
            if empty:
                self._memos[desired.stack] = _Memo(desired, _asked(request), live_fingerprint(live), record)
            else:
                self._memos.pop(desired.stack, None)

    def forget(self, stack: str) -> None:
        with self._lock:
            self._memos.pop(stack, None)


def _asked(request: Any) -> tuple:
    """The request without what differs from pass to pass (its trigger, its sweep), as a tuple of its fields."""
    return tuple(getattr(request, name) for name in compared_fields(type(request))
                 if name not in ("trigger", "snapshot_at"))


def live_fingerprint(live: LiveState) -> str:
    """A digest of everything a plan reads of ``live``: each object's name, id, labels, state, health, exit code,
    image, content and details (without ``VOLATILE_DETAILS``)."""
    objects = []
    for kind in Kind:
        for name, obj in sorted(live.of(kind).items()):
            details = {key: value for key, value in obj.details.items() if key not in VOLATILE_DETAILS}
            objects.append([kind.value, name, obj.id, obj.owned, obj.state, obj.health, obj.exit_code, obj.image_id,
                            dict(obj.labels), details, obj.content])
    return hashlib.sha256(canonical_json(objects).encode()).hexdigest()
