"""Waiting for a condition by polling: one loop, one clock, one way to time out.

Why a module of its own: the runtimes wait for a container or a service to
start, the stack lock waits for its holder, tests and benches wait for
whatever they made to show up; each wrote the same deadline loop with its own
small differences (a wall clock here, a last look missing there). Here the
loop is written once: ask, return the answer when it is truthy, give up on
the monotonic clock, and sleep between looks, or wait on the caller's ``stop``
so that a shutdown does not sit out an interval. It imports nothing from the
project, so every layer may use it; callers turn ``PollTimeout`` into their
own error.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, TypeVar

__all__ = ["PollTimeout", "poll_until"]

T = TypeVar("T")


class PollTimeout(Exception):
    """A condition polled by ``poll_until`` was not met in time; the message says what was awaited.

    Not a ``ReconcilerError``: every caller in the library maps it onto its
    own (``PermanentError``, ``LockError``), with the message it gave before.
    """

    def __init__(self, message: str, *, timeout: float) -> None:
        super().__init__(message)
        #: The seconds that were waited.
        self.timeout = timeout


def poll_until(check: Callable[[], T], *, timeout: float, interval: float,
               stop: threading.Event | None = None, describe: str | Callable[[], str] | None = None) -> T:
    """Call ``check`` until it answers something truthy, and return that answer.

    ``check`` is called at once, then every ``interval`` seconds; once
    ``timeout`` seconds (monotonic clock) have passed after a falsy answer,
    ``PollTimeout`` is raised with ``describe`` as its message (a callable is
    asked then, so it can name the last state seen). With a ``stop`` event,
    the pause between calls ends when it is set, and the last (falsy) answer
    is returned: the caller, which set it, knows why. Exceptions from
    ``check`` propagate unchanged.
    """
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer:
            return answer
        if stop is not None and stop.is_set():
            return answer
        if time.monotonic() >= deadline:
            text = describe() if callable(describe) else describe
            raise PollTimeout(text or f"{_name(check)} not met within {timeout:g}s", timeout=timeout)
        if stop is None:
            time.sleep(interval)
        else:
            stop.wait(interval)


def _name(check: Callable) -> str:
    name = getattr(check, "__name__", "")
    return "the condition" if not name or name == "<lambda>" else name
