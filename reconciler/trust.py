"""Resyncs that trust the engine's events instead of looking: pure rules the loop asks.

Why: at a thousand stacks, a resync sweep every minute that looks at every
stack (even picking its objects out of lists shared by the sweep, and planning
nothing) cost more than the one percent of a core a quiet daemon may use. Yet
the engine reports every change a plan reads as an event (a container's
start, stop, death, update or removal, a network's or volume's removal, a
connect or a mount), and the daemon follows one stream per engine whose every
event wakes a pass of its own. So after a pass that found nothing to do, a
resync of a stack that has heard nothing since, on streams open all that
time, with the same spec and an unwritten record, would find nothing either:
it is trusted, ``TRUSTED_IN_A_ROW`` times at most; the next looks, so a
change no event told (a tag pulled by hand: no image events are followed) is
still found within a few resyncs.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from .model import DesiredState

__all__ = ["TRUSTED_IN_A_ROW", "QuietPass", "after_pass", "trusts"]

#: Resyncs in a row that may trust the engine's events instead of looking: the next one looks.
TRUSTED_IN_A_ROW = 4


@dataclass(frozen=True)
class QuietPass:
    """The start of a pass that found nothing to do: what a later resync must find unchanged to trust events."""

    desired: DesiredState  # the very spec object it applied
    heard: int  # the loop's count of engine events (and looks) when it started
    started: float  # when it started (monotonic)
    record: object  # the stack's ``StateStore.version`` after it
    trusted: int = 0  # resyncs that trusted it since


def after_pass(quiet: QuietPass | None, result: Any, desired: DesiredState | None, *, heard: int, started: float,
               record: Callable[[], object]) -> QuietPass | None:
    """What to keep after a loop's ``Pass`` that started at ``started`` having heard ``heard`` events: one more
    trusted resync, a new quiet start when it found nothing to do, else nothing."""
    if result.trusted:
        return replace(quiet, trusted=quiet.trusted + 1) if quiet is not None else None
    report = result.report
    if (desired is not None and result.ok and result.suspended is None and not result.crash_looping
            and not result.error and report is not None and not report.outcomes and not report.drifted):
        return QuietPass(desired, heard, started, record())
    return None


def trusts(quiet: QuietPass | None, desired: DesiredState, *, heard: int, since: float | None,
           record: Callable[[], object]) -> bool:
    """Whether a resync of ``desired`` may trust the events: since the start of ``quiet`` the stack heard no event
    (``heard`` is the loop's count now) on streams open all that time (``since``: since when they have been,
    None when one is not), its spec is the very same object (no new revision), its record was not written
    (``record()``), it is not a fleet's, it follows no registry tag (the registry tells no events), and fewer than
    ``TRUSTED_IN_A_ROW`` resyncs trusted it since."""
    if (quiet is None or since is None or quiet.desired is not desired or quiet.trusted >= TRUSTED_IN_A_ROW
            or heard != quiet.heard or since > quiet.started or desired.fleet is not None):
        return False
    return not any(image.tracks_tag for image in desired.images.values()) and record() == quiet.record
