"""Filesystem drift: what a change in a container's writable layer means to the plan and to ``status``. Pure.

Someone exec'd into a container and edited a config file: the container still
has its config hash, so nothing else in the plan notices. A container's
``filesystem:`` policy (``model.FilesystemPolicy``) says what to do: ``ignore``
(the default: the runtime never reads the layer), ``report`` (the plan notes it
and ``plan --detailed-exitcode`` exits 2, ``status`` and the metrics show it) or
``recreate`` (the container is replaced, ``Reason.FILESYSTEM_DRIFT``).

The runtime driver reads the layer's changes only for containers whose policy
watches it, at most once per interval, and puts a summary in
``LiveObject.details["filesystem"]``: ``{"added", "changed", "deleted": int,
"paths": [{"kind": "A"|"C"|"D", "path": str}], "checked_at": float}``. Changes
at or below a path of ``ignore`` do not count. The policy is the reconciler's,
not the container's: it is out of the config hash, and changing it replaces
nothing.
"""
from __future__ import annotations

from typing import Any, Mapping

from .model import ContainerSpec, DesiredState, FilesystemPolicy, LiveObject, LiveState
from .units import size_text

__all__ = ["DETAIL", "SHOWN_PATHS", "drifted_paths", "filesystem_lines", "filesystem_status", "path_text",
           "replace_reason", "reported", "without_paths"]

#: The key of ``LiveObject.details`` the runtime puts the layer's summary under.
DETAIL = "filesystem"
#: Paths a plan reason names before "and N more"; ``status --detailed`` shows up to ``SHOWN_PATHS``.
_REASON_PATHS = 3
SHOWN_PATHS = 50
_VERBS = {"A": "added", "C": "changed", "D": "deleted"}


def _summary(current: LiveObject | None) -> Mapping[str, Any] | None:
    found = current.details.get(DETAIL) if current is not None else None
    return found if isinstance(found, Mapping) else None


def _ignored(path: str, ignore: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in ignore)


def drifted_paths(policy: FilesystemPolicy, summary: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The changes of ``summary`` outside the policy's ignore paths.

    A directory the engine lists as changed only because something below it
    changed (``C /tmp`` for ``A /tmp/x``) counts only when one of its
    descendants in the list counts too, so ``ignore: [/tmp/cache]`` also
    hides the ``C /tmp`` it brings.
    """
    if not summary:
        return []
    listed = [(str(p.get("path", "")), str(p.get("kind", "C"))) for p in summary.get("paths") or ()]
    parents = {parent for path, _ in listed for parent in _ancestors(path)}
    counted: set[str] = set()
    counted_below: set[str] = set()
    for path, kind in sorted(listed, key=lambda entry: -entry[0].count("/")):  # deepest first
        if _ignored(path, policy.ignore) or (kind == "C" and path in parents and path not in counted_below):
            continue  # ignored, or only the parent of ignored changes
        counted.add(path)
        counted_below.update(_ancestors(path))
    return [{"kind": kind, "path": path} for path, kind in listed if path in counted]


def _ancestors(path: str) -> list[str]:
    """``/a/b/c`` → ``["/a/b", "/a"]``."""
    out = []
    while (path := path.rpartition("/")[0]):
        out.append(path)
    return out


def path_text(entry: Mapping[str, str]) -> str:
    """``/etc/app.conf changed``."""
    return f"{entry['path']} {_VERBS.get(entry['kind'], 'changed')}"


def _listing(paths: list[dict[str, str]], shown: int) -> str:
    text = ", ".join(path_text(p) for p in paths[:shown])
    return text + (f", and {len(paths) - shown} more" if len(paths) > shown else "")


def replace_reason(spec: ContainerSpec, current: LiveObject) -> str:
    """Why a ``filesystem: recreate`` container is replaced ("writable layer changed: /etc/x changed, …"), or ""."""
    if spec.filesystem.mode != "recreate" or spec.read_only:
        return ""
    paths = drifted_paths(spec.filesystem, _summary(current))
    return f"writable layer changed: {_listing(paths, _REASON_PATHS)}" if paths else ""


def reported(desired: DesiredState, live: LiveState) -> tuple[list[str], tuple[str, ...]]:
    """For ``filesystem: report`` containers whose layer drifted: the plan's notes, and their names.

    The plan changes nothing for them; ``plan --detailed-exitcode`` exits 2
    while any is listed (``Plan.drifted``).
    """
    notes: list[str] = []
    names: list[str] = []
    for name, spec in sorted(desired.containers.items()):
        current = live.containers.get(name)
        if spec.filesystem.mode != "report" or spec.read_only or current is None or not current.owned:
            continue
        paths = drifted_paths(spec.filesystem, _summary(current))
        if paths:
            names.append(name)
            notes.append(f"container {name}: writable layer changed since it was created "
                         f"(filesystem: report, nothing replaced): {_listing(paths, _REASON_PATHS)}")
    return notes, tuple(names)


def filesystem_status(spec: ContainerSpec | None, current: LiveObject | None, *, detailed: bool = False,
                      size_rw: int | None = None) -> dict[str, Any] | None:
    """A container's ``filesystem`` entry in ``status``: None when its layer was not checked.

    ``paths`` (every change, ignored ones included, at most ``SHOWN_PATHS``;
    ``more`` counts the rest) only when ``detailed``; ``drifted``: a change
    outside the ignore paths.
    """
    summary = _summary(current)
    if spec is None or summary is None:
        return None
    entry: dict[str, Any] = {
        "mode": spec.filesystem.mode,
        "added": int(summary.get("added", 0)),
        "changed": int(summary.get("changed", 0)),
        "deleted": int(summary.get("deleted", 0)),
        "size_rw": size_rw,
        "drifted": bool(drifted_paths(spec.filesystem, summary)),
        "checked_at": float(summary.get("checked_at", 0.0)),
    }
    if detailed:
        paths = [dict(p) for p in summary.get("paths") or ()]
        entry["paths"] = paths[:SHOWN_PATHS]
        entry["more"] = len(paths) - len(entry["paths"]) + int(summary.get("more", 0))
    return entry


def without_paths(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with each ``filesystem`` entry's paths left out (``status`` without ``--detailed``)."""
    out = []
    for row in rows:
        entry = row.get("filesystem")
        if entry and "paths" in entry:
            row = {**row, "filesystem": {k: v for k, v in entry.items() if k not in ("paths", "more")}}
        out.append(row)
    return out


def filesystem_lines(entry: Mapping[str, Any] | None) -> list[str]:
    """``status`` text under a container: ``filesystem: 2 changed, 1 added (+4.0 KiB writable)`` when it
    drifted, then (``--detailed``) one line per path; nothing for a layer unchecked or unchanged."""
    if not entry or not (entry.get("drifted") or entry.get("paths")):
        return []
    counts = ", ".join(f"{entry[k]} {k}" for k in ("changed", "added", "deleted") if entry.get(k))
    size = f" (+{size_text(int(entry['size_rw']))} writable)" if entry.get("size_rw") is not None else ""
    state = "" if entry.get("drifted") else " (all under ignored paths)"
    lines = [f"filesystem: {counts or 'no change'}{size}{state}"]
    lines += [f"  {p['kind']} {p['path']}" for p in entry.get("paths") or ()]
    if entry.get("more"):
        lines.append(f"  and {entry['more']} more")
    return lines
