"""POSTing one body to several URLs: concurrently, retried, bounded, never raising.

Each URL gets its own daemon thread, so one slow receiver delays no other and
an abandoned request cannot keep the process alive. A delivery is retried on
a connection error, a timeout or a 5xx, with a short exponential backoff; a
4xx is the receiver's final word. Redirects are never followed: a 3xx would
carry the body and its signature to a place nobody configured, so it counts
as a failure. Everything is bounded by one deadline, ``timeout × attempts``
plus the pauses between them.

Only ``display_url`` forms (scheme, host, port) reach messages: webhook
paths often embed tokens.
"""
from __future__ import annotations

import http.client
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Sequence

from reconciler.sdk import RetryPolicy

from .config import display_url

__all__ = ["RETRY", "Delivery", "deliver_all", "deliver_one", "make_opener", "time_budget"]

#: Three attempts in all, 0.2 s before the second and 0.4 s before the third.
RETRY = RetryPolicy(attempts=3, base=0.2)


@dataclass(frozen=True)
class Delivery:
    """What happened to one URL: ``target`` is its display form, never the full URL."""

    target: str
    ok: bool
    attempts: int
    status: int | None = None
    error: str = ""


def make_opener() -> urllib.request.OpenerDirector:
    """An opener for http(s) only, honouring proxy settings, with no redirect handler.

    Without ``HTTPRedirectHandler`` a 3xx reaches the default error handler
    and is raised as an ``HTTPError`` like any other non-2xx answer.
    """
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(context=ssl.create_default_context()),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def time_budget(timeout: float, retry: RetryPolicy = RETRY) -> float:
    """The longest a delivery may take: every attempt's timeout plus every pause."""
    return timeout * retry.attempts + sum(retry.delay(failures) for failures in range(1, retry.attempts))


def deliver_all(
    body: bytes,
    headers: dict[str, str],
    urls: Sequence[str],
    *,
    timeout: float,
    retry: RetryPolicy = RETRY,
) -> list[Delivery]:
    """POST ``body`` to every URL at once; one ``Delivery`` per URL, in order."""
    deadline = time.monotonic() + time_budget(timeout, retry)
    opener = make_opener()
    results: list[Delivery | None] = [None] * len(urls)

    def run(index: int, url: str) -> None:
        try:
            results[index] = deliver_one(opener, url, body, headers, timeout=timeout, retry=retry,
                                         deadline=deadline)
        except Exception as exc:  # a bug here must still leave a result, not a dead thread
            results[index] = Delivery(display_url(url), False, 0, error=f"unexpected {type(exc).__name__}")

    threads = [threading.Thread(target=run, args=(i, url), name=f"reconciler-notify-{i}", daemon=True)
               for i, url in enumerate(urls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + 0.1)
    gave_up = "gave up: no answer within the time budget"
    return [result or Delivery(display_url(url), False, retry.attempts, error=gave_up)
            for url, result in zip(urls, results)]


def deliver_one(
    opener: urllib.request.OpenerDirector,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    retry: RetryPolicy = RETRY,
    deadline: float | None = None,
) -> Delivery:
    """POST ``body`` to ``url`` until it is accepted, refused, or the attempts or time run out."""
    if deadline is None:
        deadline = time.monotonic() + time_budget(timeout, retry)
    target = display_url(url)
    status: int | None = None
    error = "no attempt made"
    for attempt in range(1, retry.attempts + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Delivery(target, False, attempt - 1, status, f"{error} (out of time)")
        status, error, worth_retrying = _post(opener, url, body, headers, min(timeout, remaining))
        if not error:
            return Delivery(target, True, attempt, status)
        pause = retry.delay(attempt)
        if not worth_retrying or attempt == retry.attempts or time.monotonic() + pause >= deadline:
            return Delivery(target, False, attempt, status, error)
        time.sleep(pause)
    return Delivery(target, False, retry.attempts, status, error)


def _post(
    opener: urllib.request.OpenerDirector, url: str, body: bytes, headers: dict[str, str], timeout: float
) -> tuple[int | None, str, bool]:
    """One attempt: ``(status, error or "", worth retrying)``."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with opener.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        exc.close()
        status = exc.code
    except urllib.error.URLError as exc:
        return None, _describe(exc.reason), _retryable(exc.reason)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return None, _describe(exc), _retryable(exc)
    if 200 <= status < 300:
        return status, "", False
    if 300 <= status < 400:
        return status, f"HTTP {status}: redirects are not followed", False
    return status, f"HTTP {status}", status >= 500


def _retryable(reason: object) -> bool:
    # A certificate the receiver does not present correctly will not fix itself in 0.4 s.
    return not isinstance(reason, (ssl.SSLCertVerificationError, ValueError))


def _describe(reason: object) -> str:
    if isinstance(reason, BaseException):
        text = str(reason)
        return f"{type(reason).__name__}: {text}" if text else type(reason).__name__
    return str(reason)
