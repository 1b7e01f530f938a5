"""Log lines that anyone on the network can cause, written at a rate nobody on the network sets.

A client that hangs up in the middle of a request is the client's business, not
an error of the daemon's: it deserves a line, not a traceback, and a burst of
them (a flaky proxy, a scanner, someone trying to fill the disk) must not
drown the lines that matter. ``LogThrottle`` writes the first occurrence at
once and at most one line per interval after that, each saying how many it
held back; the metrics count every one.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

__all__ = ["LogThrottle"]


class LogThrottle:
    """At most one line per ``interval`` seconds on ``logger``; the lines held back are counted in the next one."""

    def __init__(self, logger: logging.Logger, *, interval: float = 60.0, level: int = logging.WARNING,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.level = level
        self._clock = clock
        self._last: float | None = None
        self._held = 0
        self._lock = threading.Lock()

    def note(self, message: str) -> bool:
        """Log ``message`` (one line) unless a line went out less than ``interval`` ago; True when it was written."""
        message = " ".join(message.split())  # one line, whatever the message holds
        with self._lock:
            now = self._clock()
            if self._last is not None and now - self._last < self.interval:
                self._held += 1
                return False
            held, self._held, self._last = self._held, 0, now
        if held:
            message += f" (and {held} more like it since the last such line, not logged)"
        self.logger.log(self.level, "%s", message)
        return True
