"""What an apply is asked to do and what it did: plain data, cheap to import.

Kept apart from the executor (``reconciler.apply``) so that a converged pass,
which executes nothing, never imports it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .plan import Change
from .retry import RetryPolicy

__all__ = ["FAILED", "OK", "SKIPPED", "ApplyOptions", "ApplyReport", "Outcome"]

OK, FAILED, SKIPPED = "ok", "failed", "skipped"


@dataclass(frozen=True)
class Outcome:
    change: Change
    status: str
    error: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class ApplyReport:
    stack: str
    outcomes: tuple[Outcome, ...]
    seconds: float
    stats: Mapping[str, int] = field(default_factory=dict)
    revision: str = ""

    @property
    def ok(self) -> bool:
        return all(o.status == OK for o in self.outcomes)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


@dataclass(frozen=True)
class ApplyOptions:
    """How an apply runs its steps.

    ``workers`` bounds the steps that make the engine work at once (pulls,
    builds, creates, starts); more do not go faster on a small machine, the
    engine is the bottleneck. ``waiters`` bounds, separately, the steps that
    mostly wait (stopping and removing containers, waiting for a dependency to
    be started, healthy or completed): they hold no worker, so thirty slow
    stops take one grace period. ``wait_timeout`` is how long one dependency
    condition may take; ``retry`` governs temporary engine errors.
    """

    workers: int = 4
    wait_timeout: float = 120.0
    retry: RetryPolicy = RetryPolicy()
    waiters: int = 64
