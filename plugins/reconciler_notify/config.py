"""Reading the notify configuration from the environment, at hook time.

Read on every apply rather than at import so a long-running loop picks up a
rotated secret file. The secret is held as bytes in a field kept out of the
dataclass repr, and no message raised or logged here ever contains it.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

from . import URLS_ENV

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_TIMEOUT",
    "SECRET_ENV",
    "SECRET_FILE_ENV",
    "TIMEOUT_ENV",
    "URLS_ENV",
    "NotifyConfig",
    "NotifyConfigError",
    "display_url",
    "load_config",
]

SECRET_ENV = "RECONCILER_NOTIFY_SECRET"
SECRET_FILE_ENV = "RECONCILER_NOTIFY_SECRET_FILE"
TIMEOUT_ENV = "RECONCILER_NOTIFY_TIMEOUT"
DEFAULT_TIMEOUT = 5.0
MAX_TIMEOUT = 60.0  # with three attempts, an apply never waits more than about three minutes on notifications
MAX_SECRET_BYTES = 64 * 1024

log = logging.getLogger("reconciler.notify")


class NotifyConfigError(Exception):
    """The notify configuration cannot be used; the message never holds the secret."""


@dataclass(frozen=True)
class NotifyConfig:
    """Where to send, how to sign, how long to wait per attempt."""

    urls: tuple[str, ...]
    secret: bytes | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT


def load_config(environ: Mapping[str, str]) -> NotifyConfig:
    """The configuration in ``environ``; unusable URLs are skipped with a warning.

    Raises ``NotifyConfigError`` when the secret is ambiguous or unreadable:
    sending unsigned when a key was meant would quietly downgrade receivers.
    """
    return NotifyConfig(
        urls=_urls(environ.get(URLS_ENV, "")),
        secret=_secret(environ),
        timeout=_timeout(environ.get(TIMEOUT_ENV, "")),
    )


def display_url(url: str) -> str:
    """``scheme://host[:port]`` only: webhook paths and queries often carry tokens."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparsable URL)"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}"


def _urls(raw: str) -> tuple[str, ...]:
    urls: list[str] = []
    for url in (u.strip() for u in raw.split(",")):
        if not url or url in urls:
            continue
        problem = _url_problem(url)
        if problem:
            log.warning("ignoring notify URL %s: %s", display_url(url), problem)
        else:
            urls.append(url)
    return tuple(urls)


def _url_problem(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "it cannot be parsed"
    if parts.scheme not in ("http", "https"):
        return "only http and https URLs are supported"
    if not parts.hostname:
        return "it names no host"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL are not supported (use RECONCILER_NOTIFY_SECRET)"
    return ""


def _secret(environ: Mapping[str, str]) -> bytes | None:
    value = environ.get(SECRET_ENV, "")
    path = environ.get(SECRET_FILE_ENV, "")
    if value and path:
        raise NotifyConfigError(f"set {SECRET_ENV} or {SECRET_FILE_ENV}, not both")
    if value:
        return value.encode("utf-8")
    if not path:
        return None
    data = read_limited(path, MAX_SECRET_BYTES, SECRET_FILE_ENV, NotifyConfigError)
    data = data.rstrip(b"\r\n")  # files usually end with a newline that is not part of the key
    if not data:
        raise NotifyConfigError(f"{SECRET_FILE_ENV} {path!r} is empty")
    return data


def read_limited(path: str, limit: int, what: str, error: type[Exception]) -> bytes:
    """The bytes of the file ``path`` (``what`` names where it was configured), at most ``limit`` of them; else
    ``error`` saying it cannot be read or is larger, never quoting what it holds (a key, a URL's password)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {path!r}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > limit:
        raise error(f"{what} {path!r} is larger than {limit} bytes")
    return data


def _timeout(raw: str) -> float:
    if not raw.strip():
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        log.warning("%s=%r is not a positive number of seconds; using %g", TIMEOUT_ENV, raw, DEFAULT_TIMEOUT)
        return DEFAULT_TIMEOUT
    if value > MAX_TIMEOUT:
        log.warning("%s=%g is above the maximum; using %g", TIMEOUT_ENV, value, MAX_TIMEOUT)
        return MAX_TIMEOUT
    return value
