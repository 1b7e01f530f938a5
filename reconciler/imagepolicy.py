"""Which tag an image's version policy allows: the pure half of image automation.

Given the tags a registry lists (and, for ``min_age``, when each was
published), ``choose`` says which tag the policy picks, which is the newest
published, and why each newer one was not taken, as codes (``Skip``) that the
CLI renders as text or JSON. ``parse_policy`` reads ``images.<key>.update``
into an ``UpdatePolicy`` and refuses a bad one naming the field at fault, so
the spec's validator reports it at that field's line. Nothing here does I/O:
the daemon's automation asks the registry and hands the answers in.

Semantic versions follow npm's range grammar and pre-release rules through
the ``semantic_version`` library (``NpmSpec``); a leading ``v`` on a tag is
accepted, and a tag that is not a full version (``1.4``, ``latest``) is not a
version. A current tag that is not a version under the policy (``latest``, a
branch name) is older than every allowed tag.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Collection, Iterable, Mapping

from .model import PolicyKind, UpdatePolicy

if TYPE_CHECKING:
    import semantic_version

__all__ = [
    "PolicyError", "Skip", "Verdict", "candidates", "choose", "current_tag", "parse_policy", "repository", "sort_key",
    "with_tag",
]

_FIELDS = ("semver", "prerelease", "pattern", "extract", "order", "digest", "min_age", "interval", "pin")
_ORDERS = ("numerical", "alphabetical")
_EXTRACT = re.compile(r"\$(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*))")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DIGITS = re.compile(r"\d+")


class PolicyError(ValueError):
    """A policy that makes no sense; ``field`` is the key under ``update:`` at fault ("" for the whole)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


class Skip(Enum):
    """Why a newer tag was not taken; ``.value`` is the code printed in JSON."""

    #: Outside the range (only reported for tags newer than the one chosen).
    POLICY = "policy"
    #: A pre-release, and the policy does not ask for them.
    PRERELEASE = "prerelease"
    #: Published less than ``min_age`` ago, or at a time the registry did not say.
    MIN_AGE = "min_age"
    #: Rolled back once on this stack: never proposed again until a person releases it.
    QUARANTINED = "quarantined"


@dataclass(frozen=True)
class Verdict:
    """What a policy makes of an image's tags."""

    #: The current tag.
    current: str
    #: The newest tag the policy allows (== current when nothing newer is).
    chosen: str
    #: The newest published tag by the policy's ordering (semver: the highest version among all
    #: tags that parse, pre-releases included; pattern: the highest matching); current when none.
    newest: str
    #: Tags newer than ``chosen``, newest first, each with why it was not taken.
    skipped: tuple[tuple[str, Skip], ...] = ()

    @property
    def moved(self) -> bool:
        """Whether the policy picks another tag than the current one."""
        return self.chosen != self.current


def parse_policy(data: Mapping) -> UpdatePolicy:
    """``images.<key>.update`` as an ``UpdatePolicy``; raises ``PolicyError`` naming the field at fault.

    Exactly one of ``semver``, ``pattern`` or ``digest: true``. ``prerelease`` goes with
    ``semver``; ``extract`` and ``order`` go with ``pattern``; ``extract`` names a group the
    pattern has. ``min_age`` and ``interval`` are durations (``90s``, ``5m``, ``1h``, ``7d``)
    or numbers of seconds; ``pin`` is ``digest``.
    """
    if not isinstance(data, Mapping):
        raise PolicyError("", "update must be a mapping (semver, pattern or digest, and options)")
    for key in data:
        if key not in _FIELDS:
            raise PolicyError(str(key), f"unknown field (expected one of: {', '.join(_FIELDS)})")
    given = [key for key in ("semver", "pattern", "digest") if key in data and data[key] not in (None, False)]
    if len(given) != 1:
        raise PolicyError(given[1] if len(given) > 1 else "",
                          "give exactly one of semver, pattern or digest: true"
                          + (f" (not {' and '.join(given)})" if given else ""))
    kind = PolicyKind(given[0])
    for key, owner in (("prerelease", "semver"), ("extract", "pattern"), ("order", "pattern")):
        if key in data and kind.value != owner:
            raise PolicyError(key, f"{key} goes with {owner}, not with {kind.value}")
    if "pin" in data and data["pin"] != "digest":
        raise PolicyError("pin", f"expected digest, got {data['pin']!r}")
    common = {"min_age": _seconds(data, "min_age", 0.0), "interval": _seconds(data, "interval", 300.0)}
    if common["interval"] < 1:
        raise PolicyError("interval", "must be at least 1s")
    if kind is PolicyKind.DIGEST:
        if data["digest"] is not True:
            raise PolicyError("digest", f"expected true, got {data['digest']!r}")
        return UpdatePolicy(kind=kind, pin_digest=True, **common)
    pin = data.get("pin") == "digest"
    if kind is PolicyKind.SEMVER:
        return UpdatePolicy(kind=kind, semver=_range(str(data["semver"])).expression,
                            prerelease=_flag(data, "prerelease"), pin_digest=pin, **common)
    pattern, extract = _regex(data["pattern"]), str(data.get("extract") or "")
    _check_extract(pattern, extract)
    order = data.get("order", "numerical")
    if order not in _ORDERS:
        raise PolicyError("order", f"expected numerical or alphabetical, got {order!r}")
    return UpdatePolicy(kind=kind, pattern=pattern.pattern, extract=extract, order=order, pin_digest=pin, **common)


def current_tag(ref: str) -> str:
    """The tag of ``ref`` (``host:5000/a/b:1.4.0@sha256:…`` -> ``1.4.0``); "" when it has none."""
    return _split(ref)[1]


def repository(ref: str) -> str:
    """``ref`` without its tag and digest, as written (``host:5000/a/b:1.4.0@sha256:…`` -> ``host:5000/a/b``)."""
    return _split(ref)[0]


def with_tag(ref: str, tag: str, digest: str = "") -> str:
    """``ref``'s repository with ``tag`` (and ``@digest`` when given), the rest as written."""
    return repository(ref) + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def sort_key(policy: UpdatePolicy, tag: str) -> Any | None:
    """What orders ``tag`` under ``policy`` (larger is newer); None when it is not a version under it."""
    if policy.kind is PolicyKind.SEMVER:
        return _version(tag)
    if policy.kind is PolicyKind.PATTERN:
        match = re.fullmatch(policy.pattern, tag)
        if match is None:
            return None
        text = _extracted(match, policy.extract)
        if policy.order == "alphabetical":
            return text
        numbers = tuple(int(n) for n in _DIGITS.findall(text))
        return numbers or None
    return None


def candidates(policy: UpdatePolicy, current: str, tags: Iterable[str], *,
               quarantined: Collection[str] = ()) -> list[str]:
    """Tags newer than ``current`` that the version rule allows and are not quarantined, newest first.

    The ones whose publication time a caller must fetch when ``min_age`` is set, and only these.
    """
    return [tag for tag, why in _newer(policy, current, tags, quarantined) if why is None]


def choose(policy: UpdatePolicy, current: str, tags: Iterable[str], *,
           created: Mapping[str, datetime | None] | None = None, quarantined: Collection[str] = (),
           now: datetime) -> Verdict:
    """The tag ``policy`` picks among ``tags`` for an image now at ``current``, and why newer ones were not.

    ``created``: when each tag was published, as far as known. With ``min_age`` set, a tag
    published less than ``min_age`` before ``now``, or at an unknown time, is held back
    (``Skip.MIN_AGE``). A DIGEST policy keeps the tag: the digest is the caller's business.
    """
    tags = list(dict.fromkeys(tags))
    if policy.kind is PolicyKind.DIGEST:
        return Verdict(current=current, chosen=current, newest=current)
    created = created or {}
    keyed = [(key, tag) for tag in tags if (key := sort_key(policy, tag)) is not None]
    newest = max(keyed, key=lambda pair: (pair[0], pair[1]))[1] if keyed else current
    skipped: list[tuple[str, Skip]] = []
    for tag, why in _newer(policy, current, tags, quarantined):
        if why is None and policy.min_age > 0 and not _old_enough(created.get(tag), policy.min_age, now):
            why = Skip.MIN_AGE
        if why is None:
            return Verdict(current=current, chosen=tag, newest=newest, skipped=tuple(skipped))
        skipped.append((tag, why))
    return Verdict(current=current, chosen=current, newest=newest, skipped=tuple(skipped))


def _newer(policy: UpdatePolicy, current: str, tags: Iterable[str],
           quarantined: Collection[str]) -> list[tuple[str, Skip | None]]:
    """Tags newer than ``current``, newest first, each with what rules it out (None: nothing yet)."""
    if policy.kind is PolicyKind.DIGEST:
        return []
    floor = sort_key(policy, current)
    keyed = [(key, tag) for tag in dict.fromkeys(tags)
             if (key := sort_key(policy, tag)) is not None and (floor is None or _after(key, floor))]
    keyed.sort(key=lambda pair: (pair[0], pair[1]), reverse=True)
    out: list[tuple[str, Skip | None]] = []
    for key, tag in keyed:
        why = _version_rule(policy, key)
        if why is None and tag in quarantined:
            why = Skip.QUARANTINED
        out.append((tag, why))
    return out


def _after(key: Any, floor: Any) -> bool:
    try:
        return key > floor
    except TypeError:  # pattern keys of another shape never happen in one policy; be safe
        return False


def _version_rule(policy: UpdatePolicy, key: Any) -> Skip | None:
    """Whether the range allows a version (pattern policies: every matching tag is allowed)."""
    if policy.kind is not PolicyKind.SEMVER:
        return None
    allowed = _range(policy.semver)
    if allowed.match(key):
        return None
    if not key.prerelease:
        return Skip.POLICY
    # npm admits a pre-release only beside a comparator naming the same release; ``prerelease: true``
    # admits any whose release is in the range (1.5.0-rc1 in >=1.4 <2, not 2.0.0-rc1).
    release = _semver().Version(major=key.major, minor=key.minor, patch=key.patch)
    if not allowed.match(release):
        return Skip.POLICY
    return None if policy.prerelease else Skip.PRERELEASE


def _old_enough(published: datetime | None, min_age: float, now: datetime) -> bool:
    return published is not None and (now - published).total_seconds() >= min_age


def _version(tag: str) -> semantic_version.Version | None:
    text = tag[1:] if tag[:1] in ("v", "V") else tag
    try:
        return _semver().Version(text)
    except ValueError:
        return None


def _split(ref: str) -> tuple[str, str]:
    """(repository, tag) of a reference; its digest dropped."""
    name = ref.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:  # a colon before the last slash is a registry's port
        return name[:colon], name[colon + 1:]
    return name, ""


@lru_cache(maxsize=256)  # choose() asks for the range of each newer tag; parsing it is the costly part
def _range(text: str) -> semantic_version.NpmSpec:
    try:
        return _semver().NpmSpec(str(text))
    except ValueError as exc:
        raise PolicyError("semver", f"invalid range {text!r} ({exc}); write e.g. '>=1.4 <2', '^1.4', '~1.4', "
                                    "'1.x' or 'a || b'") from None


def _regex(text: Any) -> re.Pattern:
    if not isinstance(text, str) or not text:
        raise PolicyError("pattern", "expected a regular expression")
    try:
        return re.compile(text)
    except re.error as exc:
        raise PolicyError("pattern", f"invalid regular expression ({exc})") from None


def _check_extract(pattern: re.Pattern, extract: str) -> None:
    if not extract:
        return
    found = _EXTRACT.fullmatch(extract)
    if found is None:
        raise PolicyError("extract", f"expected $name or $number (a group of the pattern), got {extract!r}")
    number, name = found.groups()
    if number is not None and not 0 < int(number) <= pattern.groups:
        raise PolicyError("extract", f"the pattern has {pattern.groups} group(s), not ${number}")
    if name is not None and name not in pattern.groupindex:
        named = ", ".join(f"${n}" for n in pattern.groupindex) or "none"
        raise PolicyError("extract", f"the pattern has no group named {name!r} (named groups: {named})")


def _extracted(match: re.Match, extract: str) -> str:
    if not extract:
        return match.group(0)
    name = extract[1:]
    return match.group(int(name) if name.isdigit() else name) or ""


def _flag(data: Mapping, key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise PolicyError(key, f"expected true or false, got {value!r}")
    return value


def _seconds(data: Mapping, key: str, default: float) -> float:
    """A duration field (``90s``, ``1h30m``, ``7d``, or a number of seconds) in seconds."""
    if key not in data:
        return default
    value = data[key]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    text = str(value).strip()
    parts = _DURATION_PART.findall(text)
    if isinstance(value, bool) or not parts or "".join(n + u for n, u in parts) != text:
        raise PolicyError(key, f"invalid duration {value!r} (expected e.g. 30s, 5m, 1h, 7d)")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def _semver():
    """The ``semantic_version`` module, imported on first use: a spec without a semver policy never pays for it."""
    import semantic_version

    return semantic_version
