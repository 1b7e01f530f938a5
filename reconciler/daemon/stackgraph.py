"""A stack's objects as a graph, drawn as SVG on the server: images → containers → networks and volumes.

The status page shows how a stack's objects hang together without a JavaScript
library or anything fetched from elsewhere (its Content-Security-Policy allows
neither): the daemon lays the graph out in three columns and writes the SVG
itself. Colours are presentation attributes, not styles, so the same markup is
right inline in the page and served alone as ``graph.svg``. Edges come from the
desired state's references (a container's image, networks and volume mounts),
the same ones the planner orders its changes by.
"""
from __future__ import annotations

from html import escape
from typing import Any, Iterable
from urllib.parse import quote

from ..model import DesiredState

__all__ = ["COLOURS", "edges", "health_of", "svg"]

#: Per health/drift class: (fill, stroke, text), each text colour readable on its fill (WCAG AA).
COLOURS: dict[str, tuple[str, str, str]] = {
    "converged": ("#d6f5dd", "#1e7a36", "#0f3d1c"),
    "drifted": ("#fdf0c8", "#a06b00", "#4a3500"),
    "unhealthy": ("#fbdada", "#a11b1b", "#5c0d0d"),
    "missing": ("#ffffff", "#a11b1b", "#5c0d0d"),
    "external": ("#e3e8f0", "#51607a", "#1f2a3d"),
}
COLUMNS = (("image",), ("container", "service"), ("network", "volume"))
HEADINGS = ("images", "containers", "networks and volumes")
NODE_W, NODE_H, GAP_X, GAP_Y, TOP = 200, 30, 70, 12, 34
LABEL = 26  # characters that fit in a node; longer names are cut, the whole one is the node's title


def edges(desired: DesiredState | None) -> list[list[str]]:
    """``[from, to]`` pairs of ``kind:name`` ids: each container to its image, networks and volumes."""
    if desired is None:
        return []
    found = []
    for name, spec in sorted(desired.containers.items()):
        here = f"container:{name}"
        if spec.image_ref:
            found.append([here, f"image:{spec.image_ref}"])
        found += [[here, f"network:{network}"] for network, _ in spec.networks]
        found += [[here, f"volume:{m.source}"] for m in spec.mounts if m.type == "volume" and m.source]
    return found


def health_of(row: dict[str, Any]) -> str:
    """One of ``COLOURS``' classes for an object's status row."""
    state = str(row.get("state") or "")
    if row.get("external"):
        return "missing" if state.startswith("missing") else "external"
    if not row.get("live"):
        return "missing"
    if row.get("health") == "unhealthy" or state.split(" ")[0] in ("exited", "dead", "restarting"):
        return "unhealthy" if row.get("desired") else "drifted"
    filesystem = row.get("filesystem") or {}
    if row.get("drift") or (isinstance(filesystem, dict) and filesystem.get("drifted")):
        return "drifted"
    return "converged"


def _column(kind: str) -> int:
    return next(i for i, kinds in enumerate(COLUMNS) if kind in kinds)


def svg(rows: Iterable[dict[str, Any]], links: Iterable[Iterable[str]], href: str, *,
        selected: str = "", standalone: bool = False) -> str:
    """The graph of ``rows`` (``status_rows``) joined by ``links`` (``edges``); a node links to ``href`` plus
    ``?object=kind:name``. ``standalone``: with the XML namespace, as a file of its own."""
    placed: dict[str, tuple[int, int, dict[str, Any]]] = {}
    heights = [0, 0, 0]
    for row in rows:
        if row.get("kind") not in {k for kinds in COLUMNS for k in kinds}:
            continue
        column = _column(row["kind"])
        placed[f'{row["kind"]}:{row["name"]}'] = (column, heights[column], row)
        if row["kind"] == "service":  # ``edges`` names it a container when the spec sets no replicas
            placed[f'container:{row["name"]}'] = placed[f'service:{row["name"]}']
        heights[column] += 1
    width = 3 * NODE_W + 2 * GAP_X + 2
    height = TOP + max(max(heights), 1) * (NODE_H + GAP_Y) + 44
    parts = [f'<svg {"xmlns=" + chr(34) + "http://www.w3.org/2000/svg" + chr(34) + " " if standalone else ""}'
             f'id="graph" class="graph" role="group" aria-labelledby="graph-title" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" font-family="system-ui,sans-serif" font-size="12">',
             '<title id="graph-title">Objects of the stack: images, containers, networks and volumes</title>']
    for i, heading in enumerate(HEADINGS):
        parts.append(f'<text x="{1 + i * (NODE_W + GAP_X)}" y="14" fill="#4a525b" font-weight="600">{heading}</text>')
    for one, other in links:
        if one in placed and other in placed:
            parts.append(_edge(placed[one], placed[other], one, other))
    for key, (column, index, row) in placed.items():
        if f'{row["kind"]}:{row["name"]}' != key:
            continue  # an alias
        parts.append(_node(key, column, index, row, href, selected=key == selected))
    parts.append(_legend(height - 22))
    parts.append("</svg>")
    return "".join(parts)


def _xy(column: int, index: int) -> tuple[int, int]:
    return 1 + column * (NODE_W + GAP_X), TOP + index * (NODE_H + GAP_Y)


def _edge(a: tuple[int, int, dict], b: tuple[int, int, dict], one: str, other: str) -> str:
    (ca, ia, _), (cb, ib, _) = sorted((a, b), key=lambda p: p[0])  # left to right, whichever way it points
    xa, ya = _xy(ca, ia)
    xb, yb = _xy(cb, ib)
    x1, y1, x2, y2 = xa + NODE_W, ya + NODE_H // 2, xb, yb + NODE_H // 2
    mid = (x1 + x2) // 2
    return (f'<path class="edge" data-from="{escape(one)}" data-to="{escape(other)}" '
            f'd="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}" fill="none" stroke="#8a939d" stroke-width="1.5"/>')


def _node(key: str, column: int, index: int, row: dict[str, Any], href: str, *, selected: bool) -> str:
    health = health_of(row)
    fill, stroke, text = COLOURS[health]
    x, y = _xy(column, index)
    name = str(row["name"])
    label = name if len(name) <= LABEL else name[:LABEL - 1] + "…"
    title = f'{row["kind"]} {name}: {health}' + (f' ({row["state"]})' if row.get("state") else "")
    link = f'{href}?object={quote(key, safe=":")}#panel'
    return (f'<a class="node {health}" href="{escape(link)}" data-object="{escape(key)}" data-health="{health}">'
            f'<title>{escape(title)}</title>'
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{3 if selected else 1.5}"{" stroke-dasharray=" + chr(34) + "4 3" + chr(34) if health == "missing" else ""}/>'
            f'<text x="{x + 8}" y="{y + 19}" fill="{text}">{escape(label)}</text></a>')


def _legend(y: int) -> str:
    parts, x = [], 1
    for health, (fill, stroke, text) in COLOURS.items():
        parts.append(f'<rect x="{x}" y="{y}" width="14" height="14" rx="3" fill="{fill}" stroke="{stroke}"/>'
                     f'<text x="{x + 19}" y="{y + 11}" fill="#1d232a">{health}</text>')
        x += 30 + 7 * len(health) + 14
    return f'<g class="legend">{"".join(parts)}</g>'
