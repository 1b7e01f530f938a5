"""How a test waits for what it started (a container, a daemon's log line, a listening port). Not a test module.

Tests used to write their own deadline loops (the same ``_wait`` was copied
into the watch tests and the loop bench); they all wait through the library's
``reconciler.waiting.poll_until`` now, in one of two shapes: ``wait_until``
when not getting there fails the test, ``seconds_until`` when the test
measures how long it took (or carries on either way).
"""
from __future__ import annotations

import time
from typing import Callable, TypeVar

from reconciler.waiting import PollTimeout, poll_until

__all__ = ["seconds_until", "wait_until"]

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float, what: str | Callable[[], str] = "the condition", *,
               step: float = 0.5) -> T:
    """``check()``'s first truthy answer; ``AssertionError`` naming ``what`` after ``timeout`` seconds.

    ``what`` may be a callable, asked when time is up (to show a log, or the last state seen).
    """
    try:
        return poll_until(check, timeout=timeout, interval=step)
    except PollTimeout:
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what() if callable(what) else what}") from None


def seconds_until(check: Callable[[], object], timeout: float, *, step: float = 0.05) -> float | None:
    """Seconds until ``check()`` held, or None once ``timeout`` seconds passed without it."""
    start = time.monotonic()
    try:
        poll_until(check, timeout=timeout, interval=step)
    except PollTimeout:
        return None
    return time.monotonic() - start
