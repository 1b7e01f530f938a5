"""``poll_until``: the one wait loop of the library, the runtimes, the stack lock, tests and benches."""
from __future__ import annotations

import threading
import time

import pytest

from reconciler.waiting import PollTimeout, poll_until


def test_it_returns_the_first_truthy_answer():
    answers = iter([None, 0, "", "ready", "later"])
    assert poll_until(lambda: next(answers), timeout=5, interval=0) == "ready"


def test_it_asks_once_more_before_giving_up_and_names_what_it_awaited():
    calls = []

    def never():
        calls.append(1)
        return False

    with pytest.raises(PollTimeout, match="never not met within 0.05s") as caught:
        poll_until(never, timeout=0.05, interval=0.01)
    assert caught.value.timeout == 0.05
    assert len(calls) >= 2


def test_describe_is_asked_when_it_times_out():
    seen = {"state": "created"}
    with pytest.raises(PollTimeout, match="^still created$"):
        poll_until(lambda: False, timeout=0, interval=0, describe=lambda: f"still {seen['state']}")
    with pytest.raises(PollTimeout, match="^the condition not met within 0s$"):
        poll_until(lambda: False, timeout=0, interval=0)


def test_a_set_stop_ends_the_wait_with_the_last_answer():
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()
    assert poll_until(lambda: [], timeout=30, interval=10, stop=stop) == []
    assert time.monotonic() - started < 5


def test_errors_of_the_check_are_not_swallowed():
    def broken():
        raise KeyError("gone")

    with pytest.raises(KeyError):
        poll_until(broken, timeout=1, interval=0)
