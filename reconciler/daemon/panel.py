"""What the status page shows of one object (``?object=kind:name``), and how it writes cells and times.

One object's panel answers the questions people open the page with: what
differs from the spec (the readable field diff), what its last health probe
said, what changed in its writable layer, what its image weighs, and what it
logged last. Every key may be absent (other parts of the daemon fill them): an
absent or empty value reads "–", never an empty cell. Times are written both
as they are (UTC) and as "n s ago", which the page's script keeps current.
"""
from __future__ import annotations

import re
import time
from calendar import timegm
from html import escape
from typing import Any
from urllib.parse import quote

from ..units import age_text

__all__ = ["DASH", "ago", "cell", "links", "object_panel", "panel_info", "when"]

DASH = "–"
_BUILT = {True: " (cached: the last build reused it)", False: " (built by the last build)"}
_MARK = re.compile(r"\s*(?:[^\s:]+: )?([+-]) ")  # "mounts: + /srv/data:/data (ro)", or "+ …" alone


def cell(value: Any) -> str:
    """``value`` escaped, or a "–" for nothing (None, "", an empty list)."""
    if value is None or value == "" or value == [] or value == {}:
        return f'<span class="empty">{DASH}</span>'
    return escape(str(value))


def links(urls: Any) -> str:
    """Each URL as a link (escaped; only ``http://`` and ``https://`` ones: a ``javascript:`` one stays text),
    or a "–" for none: a preview's addresses, as the daemon's record keeps them."""
    if not urls:
        return cell(None)
    return " ".join(f'<a class="url" href="{escape(url)}" rel="noreferrer">{escape(url)}</a>'
                    if url.lower().startswith(("http://", "https://")) else escape(url)
                    for url in map(str, urls))


def _epoch(iso: str) -> float | None:
    try:
        return float(timegm(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S")))
    except (TypeError, ValueError):
        return None


def ago(iso: str | None, now: float | None = None) -> str:
    """``2026-12-07T10:00:00Z`` as "n s ago" (then min, h, d); "" for a time that does not parse."""
    then = _epoch(iso or "")
    if then is None:
        return ""
    return age_text((time.time() if now is None else now) - then)


def when(iso: str | float | None, now: float | None = None) -> str:
    """A timestamp (ISO 8601 UTC, or Unix time) and its "n s ago" (kept current by the page's script), or "–"."""
    if isinstance(iso, (int, float)) and not isinstance(iso, bool):
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(iso)) if iso > 0 else None
    if not iso:
        return cell(None)
    return (f'<time datetime="{escape(iso)}">{escape(iso)}</time> '
            f'<span class="ago" data-ago="{escape(iso)}">{ago(iso, now)}</span>')


def _size(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return cell(value)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return cell(value)


def _diff(row: dict[str, Any]) -> str:
    lines = row.get("diff")
    if not lines:
        return f'<p id="object-diff">{cell(row.get("drift") or None)}</p>' if row.get("drift") \
            else f'<p id="object-diff" class="muted">{DASH} (no difference from the spec)</p>'
    out = []
    for line in lines:
        text = str(line)
        mark = _MARK.match(text)
        mark = mark.group(1) if mark else ""
        css = ' class="diff-add"' if mark == "+" else ' class="diff-del"' if mark == "-" else ""
        out.append(f"<span{css}>{escape(text)}</span>")
    return f'<pre id="object-diff">{chr(10).join(out)}</pre>'


def _filesystem(row: dict[str, Any], now: float | None) -> str:
    fs = row.get("filesystem")
    if not isinstance(fs, dict):
        return f'<p id="object-filesystem">{cell(None)} <span class="muted">(not checked: filesystem: ignore)</span></p>'
    head = (f'<p id="object-filesystem" data-drifted="{"1" if fs.get("drifted") else "0"}">'
            f'{"<b class=drift>drifted</b>" if fs.get("drifted") else "unchanged"} · mode {cell(fs.get("mode"))} · '
            f'added {cell(fs.get("added"))}, changed {cell(fs.get("changed"))}, deleted {cell(fs.get("deleted"))}'
            f' · writable layer {_size(fs.get("size_rw"))} · checked {when(fs.get("checked_at"), now)}</p>')
    paths = fs.get("paths") or []
    if not paths:
        return head
    listed = "\n".join(f'{escape(str(p.get("kind", "?")))} {escape(str(p.get("path", "")))}' for p in paths[:200])
    more = fs.get("more") or 0
    return head + f'<pre id="object-paths">{listed}{f"{chr(10)}… and {more} more" if more else ""}</pre>'


def _layers(row: dict[str, Any]) -> str:
    layers = row.get("layers")
    if not isinstance(layers, dict):
        return f'<p id="object-layers">{cell(None)}</p>'
    items = "".join(f'<li><code>{escape(str(i.get("id") or DASH)[:19])}</code> {_size(i.get("size"))}'
                    f'{_BUILT.get(i.get("reused"), "")} <span class="muted">{cell(i.get("created_by"))}</span></li>'
                    for i in layers.get("items") or [])
    return (f'<p id="object-layers">{_size(layers.get("size"))}, shared with the stack\'s other images: '
            f'{_size(layers.get("shared_bytes"))}</p><ol>{items}</ol>')


def panel_info(row: dict[str, Any] | None, key: str, now: float | None = None) -> str:
    """The panel's refreshable part: the object's state, diff, health output, filesystem drift (or layers)."""
    if row is None:
        return f'<p class="bad">{escape(key)} is not an object of this stack (any more).</p>'
    kind = row.get("kind")
    parts = [f'<dl><dt>Live</dt><dd id="object-state">{cell(row.get("state"))}</dd>'
             f'<dt>In spec</dt><dd>{"yes" if row.get("desired") else "no"}</dd>'
             f'<dt>Image</dt><dd><code>{cell(row.get("image"))}</code></dd>'
             f'<dt>Health</dt><dd>{cell(row.get("health"))}</dd></dl>',
             '<h3>Desired against live</h3>', _diff(row)]
    if kind in ("container", "service"):
        parts += ['<h3>Last health output</h3>',
                  f'<pre id="object-health">{escape(str(row["health_output"]).strip())}</pre>' if row.get("health_output")
                  else f'<p id="object-health">{cell(None)}</p>',
                  '<h3>Filesystem drift</h3>', _filesystem(row, now)]
    if kind == "image":
        parts += ["<h3>Layers</h3>", _layers(row)]
    return "".join(parts)


def object_panel(row: dict[str, Any] | None, key: str, stack: str, now: float | None = None) -> str:
    """The whole panel: heading, a close link (back to the stack's page), the info, and the log tail."""
    base = f'/stacks/{quote(stack, safe="")}'
    refresh = f'{base}?object={quote(key, safe=":")}&fragment=panel'
    parts = [f'<aside id="panel" aria-labelledby="panel-title" data-object="{escape(key)}">'
             f'<h2 id="panel-title">{escape(key)} <a id="close-panel" href="{escape(base)}">close</a></h2>'
             f'<div id="panel-info" data-refresh="{escape(refresh)}">{panel_info(row, key, now)}</div>']
    if row is not None and row.get("kind") in ("container", "service"):
        name = str(row["name"])
        api = f'/api/stacks/{quote(stack, safe="")}/logs?container={quote(name, safe="")}&tail=200'
        parts.append(f'<h3>Last 200 log lines</h3><pre id="logs" data-src="{escape(api + "&follow=1")}" '
                     f'aria-live="polite">logs unavailable without JavaScript: '
                     f'<a href="{escape(api + "&follow=0")}">read them from the API</a></pre>')
    parts.append("</aside>")
    return "".join(parts)
