"""One notification for people: what it says (``Notice``), and how it reads in a chat or a mail.

A ``Notice`` is made from what the core reports, with only what a person
reads: the stack, the event, the revision, counts and the first few changes,
and the first lines of why it failed (the core redacted secret values from
those texts already). ``render`` gives Apprise its title and Markdown body;
Apprise converts the Markdown for services that take HTML or plain text.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import quote

from reconciler.sdk import ApplyReport, ImageEvent, Plan, Preview, Status

from .events import Event

__all__ = ["MAX_CHANGES", "MAX_ERROR_LINES", "Notice", "image_notice", "pass_notice", "preview_notice", "render",
           "report_notice", "span"]

#: Changes listed by name; the rest are counted.
MAX_CHANGES = 5
#: Lines of a failure's text shown (each cut at ``MAX_LINE`` characters).
MAX_ERROR_LINES = 5
MAX_LINE = 300


@dataclass(frozen=True)
class Notice:
    """What one notification says; ``count`` > 1 makes it a storm's summary (``count`` times in ``window`` s)."""

    stack: str
    event: Event
    revision: str = ""
    #: ``(status, n)`` pairs, e.g. ``(("ok", 2), ("failed", 1))``; only non-zero ones.
    counts: tuple[tuple[str, int], ...] = ()
    #: The first changes, one line each, and how many more there were.
    changes: tuple[str, ...] = ()
    more: int = 0
    #: Why it failed: the first lines of the first failure.
    error: str = ""
    #: One more line for people (the crash-looping containers, an image's old and new reference).
    detail: str = ""
    #: Where it answers (a preview that came up), one link each.
    urls: tuple[str, ...] = ()
    #: The stack is gone (a preview removed): the status page link goes to the overview, not to its page.
    gone: bool = False
    count: int = 1
    window: float = 0.0

    def summary(self, count: int, window: float) -> Notice:
        """This notice as the summary of a storm: the last of ``count`` in ``window`` seconds."""
        return dataclasses.replace(self, count=count, window=window)


def report_notice(report: ApplyReport, event: Event) -> Notice:
    """The notice of one apply classified as ``event``."""
    counts = tuple((status.value, report.count(status)) for status in Status if report.count(status))
    lines = [_change_line(o) for o in report.outcomes]
    failures = [o.error for o in report.outcomes if o.status is Status.FAILED and o.error]
    return Notice(stack=report.stack, event=event, revision=report.revision, counts=counts,
                  changes=tuple(lines[:MAX_CHANGES]), more=max(0, len(lines) - MAX_CHANGES),
                  error=_first_lines(failures[0]) if failures else "")


def pass_notice(stack: str, event: Event, *, error: str = "", crash_looping: Mapping[str, int] | None = None,
                held: Plan | None = None, revision: str = "") -> Notice:
    """The notice of what a loop's pass found: a crash loop, drift held by a suspension, a pass that failed."""
    detail = ""
    if crash_looping:
        detail = "started again and again: " + ", ".join(f"{name} ({n} times in a row)"
                                                          for name, n in sorted(crash_looping.items()))
    changes: list[str] = []
    if held is not None:
        changes = [f"{c.action.value} {c.kind.value} {c.name}" for c in held.changes]
        detail = f"suspended: {len(changes)} change(s) held, not applied"
    return Notice(stack=stack, event=event, revision=revision, changes=tuple(changes[:MAX_CHANGES]),
                  more=max(0, len(changes) - MAX_CHANGES), error=_first_lines(error), detail=detail)


def image_notice(event: ImageEvent) -> Notice:
    """The notice of one image automation event."""
    detail = f"image {event.image}: {event.before}" + (f" → {event.after}" if event.after else "")
    if event.policy:
        detail += f" (policy {event.policy})"
    if event.branch:
        detail += f", on branch {event.branch}"
    return Notice(stack=event.stack, event=Event(f"image.{event.kind.value}"), revision=event.commit,
                  detail=detail, error=_first_lines(event.reason))


def preview_notice(preview: Preview, event: str) -> Notice:
    """The notice of a preview stack that came up (``event`` ``up``: its URLs) or went away (``down``: why)."""
    kind = Event(f"preview.{event}")
    stack = preview.stack or preview.base or preview.source  # a preview whose spec never loaded has no name yet
    branch = preview.branch.replace("`", "'")
    where = f"preview of {preview.base or 'its stack'} at branch `{branch}` of source {preview.source}"
    if kind is Event.PREVIEW_DOWN:
        return Notice(stack=stack, event=kind, revision=preview.revision, gone=True,
                      detail=f"{where} removed with its volumes: {preview.reason or 'no reason given'}")
    return Notice(stack=stack, event=kind, revision=preview.revision, detail=where,
                  urls=tuple(preview.urls))


def render(notice: Notice, *, public_url: str = "") -> tuple[str, str]:
    """``(title, Markdown body)``: the title ``stack: event``, the body what changed, why, and a link."""
    title = f"{notice.stack}: {notice.event.words}"
    body, head = [], []
    if notice.count > 1:
        title += f" ({notice.count} times in {span(notice.window)})"
        body.append(f"**{notice.event.words} {notice.count} times in {span(notice.window)}**; the last time:")
    if notice.revision:
        head.append(f"revision `{notice.revision[:12]}`")
    if notice.counts:
        head.append(", ".join(f"{n} {status}" for status, n in notice.counts))
    body += [" · ".join(head)] if head else []
    if notice.detail:
        body.append(notice.detail)
    body += [f"- <{url}>" for url in notice.urls]
    body += [f"- {line}" for line in notice.changes]
    if notice.more:
        body.append(f"- … and {notice.more} more")
    if notice.error:
        body += ["", "**Why:**", "```", notice.error, "```"]
    if public_url:
        page = "/" if notice.gone else f"/stacks/{quote(notice.stack, safe='')}"
        body += ["", f"[Status page]({public_url.rstrip('/')}{page})"]
    return title, "\n".join(body).strip() or title


def span(seconds: float) -> str:
    """``30 s``, ``5 min``, ``2 h``: a storm window for people."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _change_line(outcome) -> str:
    change = outcome.change
    line = f"{change.action.value} {change.kind.value} {change.name} ({change.reason.value})"
    return line if outcome.status is Status.OK else f"{line}: {outcome.status.value}"


def _first_lines(text: str) -> str:
    lines = [line[:MAX_LINE] for line in text.strip().splitlines()]
    return "\n".join(lines[:MAX_ERROR_LINES] + (["…"] if len(lines) > MAX_ERROR_LINES else []))
