"""Pages of ``/api/stacks`` and of the status page's overview: the query read, the ``Link`` header written.

At a thousand stacks one answer with every stack is a megabyte rebuilt per
request; clients ask for a page instead. The body stays a JSON list, so a
client that never heard of pages still reads the first one; the rest is in the
headers, as GitHub's REST API has it: ``X-Total-Count`` and an RFC 8288
``Link: <…>; rel="next"`` (and ``prev``), each a URL to follow as it is.
Pure: no request object, no I/O, so the rules are tested on their own.
"""
from __future__ import annotations

from typing import Mapping
from urllib.parse import urlencode

from ..values import value

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "PAGE_SIZE", "BadPage", "Paging", "link_header", "paging_of"]

#: Stacks per answer when the query names no ``limit``, and the most it may name.
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
#: Stacks per page of the status page's overview.
PAGE_SIZE = 100


class BadPage(ValueError):
    """A query the API answers with 400: the message says what was expected."""


@value
class Paging:
    """Which stacks one answer holds: ``limit`` of them from ``offset``, those in ``states`` when it names any."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    states: tuple[str, ...] = ()


def _whole(query: Mapping[str, str], key: str, default: int, low: int, high: int | None) -> int:
    text = query.get(key)
    if text is None:
        return default
    try:
        number = int(text)
    except ValueError:
        raise BadPage(f"{key} must be a whole number, not {text[:40]!r}") from None
    if number < low or (high is not None and number > high):
        bound = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise BadPage(f"{key} must be {bound}, not {number}")
    return number


def paging_of(query: Mapping[str, str], states: tuple[str, ...]) -> Paging:
    """The ``limit``, ``offset`` and ``state`` (comma-separated, each one of ``states``) of a query."""
    wanted = tuple(s for s in (query.get("state") or "").split(",") if s)
    unknown = [s for s in wanted if s not in states]
    if unknown:
        raise BadPage(f"state must be one or more of {', '.join(states)} (comma-separated), not {unknown[0][:40]!r}")
    return Paging(limit=_whole(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT), offset=_whole(query, "offset", 0, 0, None),
                  states=wanted)


def _url(path: str, paging: Paging, offset: int) -> str:
    query = {"limit": paging.limit, "offset": offset}
    if paging.states:
        query["state"] = ",".join(paging.states)
    return f"{path}?{urlencode(query)}"


def link_header(path: str, paging: Paging, total: int) -> str:
    """RFC 8288 ``Link`` value with ``next`` and ``prev`` where there are such pages ("" when neither)."""
    links = []
    if paging.offset + paging.limit < total:
        links.append(f'<{_url(path, paging, paging.offset + paging.limit)}>; rel="next"')
    if paging.offset > 0:
        links.append(f'<{_url(path, paging, max(0, min(paging.offset, total) - paging.limit))}>; rel="prev"')
    return ", ".join(links)
