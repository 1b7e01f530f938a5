"""What an apply is asked to do and what it did: plain data, cheap to import.

Kept apart from the executor (``reconciler.apply``) so that a converged pass,
which executes nothing, never imports it.
"""
from __future__ import annotations

import enum
import threading
from dataclasses import field
from typing import Mapping

from .errors import TemporaryError
from .plan import Change
from .retry import RetryPolicy
from .values import value

__all__ = ["ApplyOptions", "ApplyReport", "Outcome", "Status"]


class Status(enum.StrEnum):
    """How one change ended."""

    OK = "ok"
    FAILED = "failed"  # its driver raised (see ``Outcome.exception``)
    SKIPPED = "skipped"  # something it depends on failed, so it was never tried



@value
class Outcome:
    """What happened to one change: given to ``reconciler_after_change`` and kept in the report."""

    #: The change, as planned.
    change: Change
    #: How it ended.
    status: Status
    #: Why it failed or was skipped, for people (secrets redacted by the drivers).
    error: str = ""
    #: Seconds from its first step's start to its last step's end.
    seconds: float = 0.0
    #: The exception that failed it (None when ok or skipped), so hooks and
    #: notifications can tell a temporary failure from a permanent one.
    exception: BaseException | None = field(default=None, compare=False, repr=False)
    #: What an ok change did instead of what was planned (a replacement found unneeded at apply), for people.
    note: str = ""

    @property
    def temporary(self) -> bool:
        """Whether the failure was temporary (the engine unreachable, a 5xx): a later pass may succeed."""
        return isinstance(self.exception, TemporaryError)


@value
class ApplyReport:
    """Everything one apply did: given to ``reconciler_apply_finished`` and rendered by the CLI."""

    #: The stack applied.
    stack: str
    #: One outcome per change of the plan, in plan order.
    outcomes: tuple[Outcome, ...]
    #: Wall-clock seconds of the apply.
    seconds: float
    #: Backend calls by drivers (``read``, ``write``), so a converged pass can be shown to write nothing.
    stats: Mapping[str, int] = field(default_factory=dict)
    #: The git revision of the spec ("" outside a repository).
    revision: str = ""
    #: Containers with ``filesystem: report`` whose writable layer changed (``Plan.drifted``): the metrics' gauge.
    drifted: tuple[str, ...] = ()
    #: What the pass did before its plan, for people: a restore an interrupted pass left ``restoring``, finished.
    notes: tuple[str, ...] = ()
    #: What started the pass (``ApplyRequest.trigger``: a loop's ``Trigger`` value, or ``manual`` for the CLI).
    trigger: str = "manual"
    #: A resync that found its stack as its last empty plan left it, and ended after observing (``settled.py``).
    settled: bool = False

    @property
    def ok(self) -> bool:
        return all(o.status is Status.OK for o in self.outcomes)

    def count(self, status: Status | str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


@value
class ApplyOptions:
    """How an apply runs its steps.

    Steps that make the engine work (pulls, builds, creates, starts) and steps
    that mostly wait (stopping and removing containers, waiting for a
    dependency's condition) run in separate lanes, each with its own bound:
    waiting holds no worker, so thirty slow stops take one grace period.
    """

    #: How many engine-heavy steps run at once; more do not go faster on a small machine.
    workers: int = 4
    workers: int = 4
    #: Seconds to wait for a dependency's condition (started, healthy, completed).
    wait_timeout: float = 120.0
    #: Retries of temporary failures.
    retry: RetryPolicy = RetryPolicy()
    #: How many waiting steps (stops, removals, dependency conditions) run at once.
    waiters: int = 64
    #: Put the old container back when its replacement fails (``--no-rollback`` keeps the failed state).
    rollback: bool = True
    #: With rollback: restore the volumes a release snapshotted (``update.snapshot``) when it fails
    #: (``--no-restore`` keeps the data as the new container left it).
    restore: bool = True
    #: Set (by ``reconcile apply`` on SIGTERM or SIGINT): the steps in flight finish (a roll completes or
    #: puts the old container back), no other step starts, and those not started are skipped.
    stop: threading.Event | None = field(default=None, compare=False, repr=False)
