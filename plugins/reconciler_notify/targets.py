"""Where Apprise notifications go: the notify file named by ``RECONCILER_NOTIFY_APPRISE_FILE``.

An Apprise URL holds credentials (a Slack token, a mail password), so a target
may take it from a file (``url_file``) or a variable (``url_env``) instead of
writing it in the notify file, and no message raised or logged here ever holds
a URL: a target is named by its ``name`` (or its place in the list) and its
scheme. Read at hook time, like the webhook's variables, so a rotated file is
picked up by a running daemon. ``secret_fragments`` lists the parts of every
URL that must never be printed, for the filter that redacts Apprise's own log.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlsplit

from . import APPRISE_ENV
from .config import read_limited
from .events import Event, parse_events
from .storm import DEFAULT_INTERVAL

__all__ = ["APPRISE_FILE_ENV", "PUBLIC_URL_ENV", "AppriseConfig", "AppriseConfigError", "AppriseTarget", "load_apprise",
           "parse_interval", "secret_fragments"]

APPRISE_FILE_ENV = APPRISE_ENV
#: The daemon's public address, which it sets from ``api.public_url`` (``reconciler.daemon.config.PUBLIC_URL_ENV``).
PUBLIC_URL_ENV = "RECONCILER_PUBLIC_URL"
MAX_FILE_BYTES = 64 * 1024
#: URL parts at least this long are redacted from Apprise's log (shorter ones are words like "json").
MIN_FRAGMENT = 6
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600}


class AppriseConfigError(Exception):
    """The notify file cannot be used; the message never holds a URL."""


@dataclass(frozen=True)
class AppriseTarget:
    """One Apprise URL and the events it subscribes to; ``url`` is kept out of the repr."""

    name: str
    url: str = field(repr=False)
    events: frozenset[Event] = frozenset(Event)

    @property
    def display(self) -> str:
        """How logs name it: its name and scheme, never the URL (its host may be a token: ``slack://T0/B0/x``)."""
        return f"{self.name} ({urlsplit(self.url).scheme or '?'})"


@dataclass(frozen=True)
class AppriseConfig:
    """The Apprise targets, the storm window (seconds) and the public URL messages link to."""

    targets: tuple[AppriseTarget, ...]
    interval: float = DEFAULT_INTERVAL
    public_url: str = ""

    def secrets(self) -> tuple[str, ...]:
        """Every part of every target's URL that must not be printed, longest first."""
        found = {fragment for target in self.targets for fragment in secret_fragments(target.url)}
        return tuple(sorted(found, key=len, reverse=True))


def load_apprise(environ: Mapping[str, str], log: Any) -> AppriseConfig | None:
    """The configuration ``environ`` names; None when ``RECONCILER_NOTIFY_APPRISE_FILE`` is unset.

    A target that cannot be used is skipped with a warning on ``log``; a file that cannot be read or parsed
    raises ``AppriseConfigError``.
    """
    path = environ.get(APPRISE_FILE_ENV, "").strip()
    if not path:
        return None
    data = _read(path)
    targets = []
    for index, entry in enumerate(data.get("targets") or []):
        name = str(entry.get("name") or f"targets[{index}]") if isinstance(entry, dict) else f"targets[{index}]"
        try:
            targets.append(_target(name, entry, environ))
        except AppriseConfigError as exc:
            log.warning("ignoring Apprise target %s: %s", name, exc)
    public_url = str(data.get("public_url") or environ.get(PUBLIC_URL_ENV, "")).strip()
    return AppriseConfig(tuple(targets), parse_interval(data.get("interval", DEFAULT_INTERVAL)), public_url)


def parse_interval(value: object) -> float:
    """Seconds from a number or ``30s``, ``5m``, ``5min``, ``1h``; raises ``AppriseConfigError``."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(s|m|min|h)?\s*", str(value))
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"] if match else math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise AppriseConfigError(f"interval {value!r} is not a duration (seconds, or 30s, 5m, 1h)")
    return seconds


def secret_fragments(url: str) -> list[str]:
    """The parts of ``url`` that may be credentials: user, password, host, path segments, query values."""
    try:
        parts = urlsplit(url)
        pieces = [parts.username, parts.password, parts.hostname, *parts.path.split("/"),
                  *(v for _, v in parse_qsl(parts.query)), parts.fragment]
    except ValueError:
        pieces = re.split(r"[/:@?&=#]", url)
    return [url, *(p for p in pieces if p and len(p) >= MIN_FRAGMENT)]


def _read(path: str) -> dict:
    import yaml

    raw = read_limited(path, MAX_FILE_BYTES, APPRISE_FILE_ENV, AppriseConfigError)
    try:
        data = yaml.safe_load(raw) or {}
    except yaml.YAMLError as exc:  # its text quotes the file, which may hold a URL: only say where
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise AppriseConfigError(f"{APPRISE_FILE_ENV} {path!r} is not valid YAML{where}") from None
    if not isinstance(data, dict) or not isinstance(data.get("targets", []), list):
        raise AppriseConfigError(f"{APPRISE_FILE_ENV} {path!r}: expected a mapping with a list of targets")
    return data


def _target(name: str, entry: object, environ: Mapping[str, str]) -> AppriseTarget:
    if not isinstance(entry, dict):
        raise AppriseConfigError("a target is a mapping with url, url_file or url_env, and events")
    given = [key for key in ("url", "url_file", "url_env") if entry.get(key)]
    if len(given) != 1:
        raise AppriseConfigError("give exactly one of url, url_file, url_env")
    if given == ["url"]:
        url = str(entry["url"])
    elif given == ["url_env"]:
        url = environ.get(str(entry["url_env"]), "")
        if not url.strip():
            raise AppriseConfigError(f"the variable {entry['url_env']} is not set")
    else:
        url = _url_file(str(entry["url_file"]))
    events = entry.get("events", ["all"])
    try:
        subscribed = parse_events([events] if isinstance(events, str) else events)
    except (ValueError, TypeError) as exc:
        raise AppriseConfigError(str(exc)) from None
    url = url.strip()
    if "://" not in url:
        raise AppriseConfigError("its URL has no scheme (an Apprise URL looks like slack://…, ntfy://…)")
    return AppriseTarget(name, url, subscribed)


def _url_file(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise AppriseConfigError(f"cannot read url_file {path!r}: {exc.strerror or exc}") from None
    text = raw[:MAX_FILE_BYTES].decode("utf-8", errors="replace").strip()
    if not text:
        raise AppriseConfigError(f"url_file {path!r} is empty")
    return text
