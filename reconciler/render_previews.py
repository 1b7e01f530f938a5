"""Preview stacks as people read them: ``reconcile previews``'s table and JSON, the daemon's answer.

One rendering for the record read here, ``previews --server`` and the
daemon's ``GET /api/previews``: ``preview_data`` is the JSON each preview is
answered as, ``previews_text`` the table made from those dicts, so a daemon's
answer and a local listing print alike. Only what the record keeps is shown
(branch, revision, times, state, the URLs the daemon computed): never an
environment value, never a token.
"""
from __future__ import annotations

import time
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from .model.previews import Preview
from .units import age_text

__all__ = ["PREVIEW_FIELDS", "preview_data", "preview_link", "previews_data", "previews_text", "servers_previews_text",
           "state_text"]

#: The keys of each preview in ``GET /api/previews`` and ``previews --output json``.
PREVIEW_FIELDS = ("source", "branch", "path", "stack", "base", "revision", "created", "pushed", "state", "urls",
                  "reason")
#: What a reason adds to a state in the table (the others carry none).
_WITH_REASON = frozenset({"failed", "waiting", "expired"})
_HEADERS = ["SOURCE", "BRANCH", "STACK", "REVISION", "CREATED", "PUSHED", "STATE", "URLS"]


def preview_data(preview: Preview) -> dict[str, Any]:
    """One preview as JSON-ready data: the record's fields (times as epoch seconds; the host ports left out)."""
    data = {key: getattr(preview, key) for key in PREVIEW_FIELDS}
    data["urls"] = list(preview.urls)
    return data


def previews_data(previews: Iterable[Preview]) -> list[dict[str, Any]]:
    """``preview_data`` of each preview, in the order given (the record's: by source, branch, path)."""
    return [preview_data(preview) for preview in previews]


def preview_link(preview: Preview) -> dict[str, Any]:
    """What a preview stack's entry of ``/api/stacks`` carries of its preview: source, branch, URLs, state."""
    return {"source": preview.source, "branch": preview.branch, "urls": list(preview.urls), "state": preview.state}


def state_text(item: Mapping[str, Any]) -> str:
    """A preview's state, with its reason when it is failed, waiting or expired: ``waiting (max 10 previews)``."""
    state, reason = str(item.get("state") or "?"), str(item.get("reason") or "")
    first = reason.strip().splitlines()[0] if reason.strip() else ""
    return f"{state} ({first})" if first and state in _WITH_REASON else state


def _age(epoch: Any, now: float) -> str:
    return age_text(now - float(epoch)) if epoch else "-"


def _row(item: Mapping[str, Any], now: float) -> list[str]:
    return [str(item["source"]), str(item["branch"]), str(item.get("stack") or "-"),
            str(item.get("revision") or "-")[:12], _age(item.get("created"), now), _age(item.get("pushed"), now),
            state_text(item), " ".join(item.get("urls") or ()) or "-"]


def _table(rows: Sequence[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def previews_text(items: Sequence[Mapping[str, Any]], *, now: float | None = None) -> str:
    """The table of ``reconcile previews``, from ``preview_data``'s dicts (the record's or a daemon's answer)."""
    if not items:
        return "no previews"
    now = time.time() if now is None else now
    return _table([_HEADERS, *(_row(item, now) for item in items)])


def servers_previews_text(results: Iterable[tuple[str, Any]], *, now: float | None = None) -> str:
    """``previews --server …``: one table, each row led by its daemon's host (``results``: (url, the previews or
    an error text)); a daemon that did not answer is one row saying ``unreachable`` and why."""
    now = time.time() if now is None else now
    rows = []
    for url, answer in results:
        host = urlsplit(url).netloc or url
        if isinstance(answer, str):
            rows.append([host, "-", "-", "-", "-", "-", "-", "unreachable", answer])
        else:
            rows.extend([host, *_row(item, now)] for item in answer)
    return _table([["HOST", *_HEADERS], *rows]) if rows else "no previews"
