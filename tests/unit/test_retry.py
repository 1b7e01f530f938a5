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
