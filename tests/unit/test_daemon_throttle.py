"""LogThrottle: a burst of lines anyone can cause is one line, then one per interval saying how many it held back."""
from __future__ import annotations

import logging

from reconciler.daemon.throttle import LogThrottle


def test_one_line_per_interval_and_the_next_one_counts_those_held_back(caplog):
    now = [100.0]
    throttle = LogThrottle(logging.getLogger("test.throttle"), interval=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.throttle"):
        written = [throttle.note("client went away\nmid-body") for _ in range(5)]
        now[0] += 61
        written.append(throttle.note("client went away"))
        now[0] += 61
        written.append(throttle.note("client went away"))
    assert written == [True, False, False, False, False, True, True]
    assert [r.getMessage() for r in caplog.records] == [
        "client went away mid-body",
        "client went away (and 4 more like it since the last such line, not logged)",
        "client went away"]
