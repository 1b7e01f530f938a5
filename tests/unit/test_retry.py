"""The one retry policy and its executor: pauses, the error's hint, the attempt note."""
from __future__ import annotations

import subprocess
import sys

import pytest

from reconciler.errors import TemporaryError
from reconciler.retry import RetryPolicy, call_with_retries


def test_the_pauses_double_from_base_up_to_cap() -> None:
    policy = RetryPolicy(attempts=6, base=1.0, cap=60.0)
    assert [policy.delay(n) for n in range(0, 9)] == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_the_first_pause_takes_the_errors_hint_and_the_others_follow_the_policy(monkeypatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr("time.sleep", pauses.append)

    def fails() -> None:
        raise TemporaryError("busy", delay=10.0)

    with pytest.raises(TemporaryError, match=r"^busy \[attempt 5\]$"):
        call_with_retries(fails, RetryPolicy(attempts=5, base=0.5, cap=3.0))
    assert pauses == [3.0, 1.0, 2.0, 3.0]


def test_a_caller_that_counts_attempts_itself_gets_the_message_unchanged(monkeypatch) -> None:
    monkeypatch.setattr("time.sleep", lambda seconds: None)

    def fails() -> None:
        raise TemporaryError("connection refused")

    with pytest.raises(TemporaryError, match=r"^connection refused$"):
        call_with_retries(fails, RetryPolicy(attempts=3, base=0.01, cap=0.01), note=False)


def test_a_first_try_that_succeeds_does_not_import_tenacity() -> None:
    code = ("import sys; from reconciler.retry import call_with_retries; "
            "assert call_with_retries(lambda: 42) == 42; assert 'tenacity' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_timeout_already_waited_out_is_not_retried_at_once(monkeypatch) -> None:
    from reconciler.errors import EngineTimeout

    pauses: list[float] = []
    monkeypatch.setattr("time.sleep", pauses.append)
    calls: list[int] = []

    def first_refused_then_silent() -> None:  # a restarting engine refuses, then a wedged one never answers
        calls.append(1)
        if len(calls) == 1:
            raise TemporaryError("connection refused")
        raise EngineTimeout("did not answer /info within 10s")

    with pytest.raises(EngineTimeout, match=r"^did not answer /info within 10s \[attempt 2\]$"):
        call_with_retries(first_refused_then_silent, RetryPolicy(attempts=5, base=0.5, cap=3.0))
    assert len(calls) == 2 and pauses == [0.5]  # the refusal is retried, the timeout is not: never multiplied

    def silent() -> None:
        calls.append(1)
        raise EngineTimeout("never answered")

    calls.clear()
    with pytest.raises(EngineTimeout, match=r"^never answered$"):  # a first try that timed out: no note, no retry
        call_with_retries(silent)
    assert calls == [1] and pauses == [0.5]
