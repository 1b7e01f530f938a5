"""Storms: one message per stack and event per interval, with a count, instead of one per pass.

A crash loop or a flapping engine makes a pass fail every few seconds; a chat
channel wants to hear it once, at once, and then how often it went on. So the
first notice of a (stack, event) goes out at once and opens a window of
``interval`` seconds; the notices that come within it are held and counted;
when the window ends with some held, the last of them goes out as a summary
("failed 7 times in 5 min") and a new window opens, so a storm that goes on
gives one message per interval. A window that ends with nothing held closes:
the next notice goes out at once again.

Pure but for the clock (injected: tests use a fake one) and thread-safe: the
plugin's hooks offer notices from the loops' threads, its one sender thread
asks what is ``due``. No timer or thread per stack: the sender sleeps until
``next_due``.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from .message import Notice

__all__ = ["DEFAULT_INTERVAL", "Storms"]

#: Seconds of a storm window (``interval:`` in the notify file).
DEFAULT_INTERVAL = 300.0


@dataclass
class _Window:
    opened: float
    interval: float
    count: int = 1  # notices in this window, the one sent at its opening included
    held: Notice | None = None  # the last notice held back (None: nothing held)


class Storms:
    """Which notices go out now, and which summaries are due; ``clock`` is monotonic seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._windows: dict[tuple[str, str], _Window] = {}
        self._lock = threading.Lock()

    def offer(self, notice: Notice, interval: float = DEFAULT_INTERVAL) -> Notice | None:
        """``notice`` when it goes out now; None when it is held in its (stack, event) window and counted.
        An event that is not ``throttled`` always goes out now, and opens no window."""
        if not notice.event.throttled:
            return notice
        key = (notice.stack, notice.event.value)
        now = self.clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or (window.held is None and now >= window.opened + window.interval):
                self._windows[key] = _Window(now, interval)
                return notice
            window.count += 1
            window.held = notice
            return None

    def due(self) -> list[Notice]:
        """The summaries of the windows that ended with notices held; those that ended empty are closed."""
        now = self.clock()
        out: list[Notice] = []
        with self._lock:
            for key, window in list(self._windows.items()):
                if now < window.opened + window.interval:
                    continue
                if window.held is None:
                    del self._windows[key]
                    continue
                out.append(window.held.summary(window.count, window.interval))
                self._windows[key] = _Window(now, window.interval, count=0)  # the storm may go on
        return out

    def next_due(self) -> float | None:
        """When (clock seconds) the next window ends; None when none is open."""
        with self._lock:
            return min((w.opened + w.interval for w in self._windows.values()), default=None)

    def flush(self) -> list[Notice]:
        """Every held notice's summary now, windows closed (the process is ending)."""
        with self._lock:
            out = [w.held.summary(w.count, w.interval) for w in self._windows.values() if w.held is not None]
            self._windows.clear()
        return out
