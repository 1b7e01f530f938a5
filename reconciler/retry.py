"""Retrying temporary failures with bounded exponential backoff (tenacity).

The first attempt runs without tenacity: a converged pass never fails, and
importing tenacity would cost it more than its engine calls do.
"""
from __future__ import annotations

import time
from typing import Callable, TypeVar

from .errors import TemporaryError
from .values import value

__all__ = ["RetryPolicy", "call_with_retries"]

T = TypeVar("T")


@value
class RetryPolicy:
    attempts: int = 4
    base: float = 0.5
    cap: float = 8.0


def call_with_retries(fn: Callable[[], T], policy: RetryPolicy = RetryPolicy()) -> T:
    """``fn()``, retried on ``TemporaryError`` up to ``policy.attempts`` times in all.

    When retries run out, the last error's message ends with ``[attempt N]``,
    so a user sees that a temporary failure was retried, whichever driver raised it.
    """
    try:
        return fn()
    except TemporaryError as first:
        if policy.attempts <= 1:
            raise
        time.sleep(min(first.delay or policy.base, policy.cap))
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts - 1),
        wait=wait_exponential(multiplier=policy.base * 2, max=policy.cap),
        retry=retry_if_exception_type(TemporaryError),
        reraise=True,
    )
    try:
        return retrying(fn)
    except TemporaryError as last:
        made = 1 + retrying.statistics.get("attempt_number", policy.attempts - 1)
        last.args = (f"{last.args[0] if last.args else last} [attempt {made}]", *last.args[1:])
        raise
