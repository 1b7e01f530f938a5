"""One retry vocabulary: a ``RetryPolicy`` says how often and how long to wait, one executor runs it.

Every backoff in the project asks a policy for its pauses (``delay(n)``):
the apply's and the observe's retries and the fleet's target retries through
``call_with_retries``, the notify plugin's deliveries, and the watch loop's and
the daemon's pauses after failed passes. A rule for waiting lives here once.

The first attempt runs without tenacity: a converged pass never fails, and
importing tenacity would cost it more than its engine calls do.
"""
from __future__ import annotations

import time
from typing import Callable, TypeVar

from .errors import TemporaryError
from .values import value

__all__ = ["READ_RETRY", "RetryPolicy", "call_with_retries"]

T = TypeVar("T")


@value
class RetryPolicy:
    """Bounded exponential backoff: ``attempts`` tries in all, pauses of ``base``, 2·base, 4·base… at most ``cap``.

    A loop that never gives up (watch, daemon) uses only the pauses.
    """

    attempts: int = 4
    base: float = 0.5
    cap: float = 8.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failures in a row: 0 after none, ``base`` after one, doubled since."""
        if failures <= 0:
            return 0.0
        return min(self.cap, self.base * 2 ** (failures - 1))


#: Reading an engine (observing a stack, asking who it is, finding objects to adopt): an engine that is
#: restarting answers a moment later.
READ_RETRY = RetryPolicy(attempts=3, base=0.5, cap=4.0)


def call_with_retries(fn: Callable[[], T], policy: RetryPolicy = RetryPolicy(), *, note: bool = True) -> T:
    """``fn()``, retried on ``TemporaryError`` up to ``policy.attempts`` times in all.

    An error whose ``retry_now`` is false (a timeout already waited out) ends
    the call at once: the wait stays bounded by the timeout, not multiplied.

    The first pause honours the error's ``delay`` hint (a registry's
    Retry-After), capped; later pauses follow the policy. When retries run
    out and ``note`` is set, the last error's message ends with ``[attempt N]``,
    so a user sees that a temporary failure was retried, whichever driver
    raised it; a caller that reports its attempts itself passes ``note=False``.
    """
    try:
        return fn()
    except TemporaryError as first:
        if policy.attempts <= 1 or not first.retry_now:
            raise
        time.sleep(min(first.delay or policy.delay(1), policy.cap))
    from tenacity import Retrying, retry_if_exception, stop_after_attempt

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts - 1),
        wait=lambda state: policy.delay(state.attempt_number + 1),  # tenacity's first try is our second
        retry=retry_if_exception(lambda exc: isinstance(exc, TemporaryError) and exc.retry_now),
        reraise=True,
    )
    try:
        return retrying(fn)
    except TemporaryError as last:
        if note:
            made = 1 + retrying.statistics.get("attempt_number", policy.attempts - 1)
            last.args = (f"{last.args[0] if last.args else last} [attempt {made}]", *last.args[1:])
        raise
