"""A stack's volume snapshots as people read them: ``reconcile snapshots``'s table and JSON, the daemon's answer.

One rendering for the CLI here, ``snapshots list --server`` and the daemon's
``GET /api/stacks/NAME/snapshots``: ``snapshots_data`` is the JSON both
answer, ``snapshots_text`` the table made from it, so a daemon's answer and a
local listing print alike. What a restore or a deletion did is one line each.
Only what the record and the drivers keep is shown (ids, sizes, times, the
container and revisions a snapshot was taken for): never content, never a secret.
"""
from __future__ import annotations

import json
import time
from typing import Any, Iterable, Mapping, Sequence

from .units import age_text, size_text

__all__ = ["deleted_text", "restored_text", "snapshots_data", "snapshots_json", "snapshots_text",
           "volume_summaries"]


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _row_data(row: Any) -> dict[str, Any]:
    snapshot = row.snapshot
    return {"volume": row.volume, "id": snapshot.id, "driver": row.driver, "created": _iso(snapshot.created),
            "created_epoch": snapshot.created, "size": snapshot.size, "content": snapshot.content,
            "container": row.container or None, "revision": row.revision or None,
            "from_revision": row.from_revision or None, "state": row.state, "taken_at": row.taken_at or None,
            "details": dict(snapshot.details)}


def snapshots_data(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """``stacksnapshots.SnapshotRow``s as JSON-ready dicts, in the order given (each volume's oldest first)."""
    return [_row_data(row) for row in rows]


def snapshots_json(rows: Iterable[Any]) -> str:
    """``snapshots list --output json``: the list ``snapshots_data`` makes."""
    return json.dumps(snapshots_data(rows), indent=2)


def _for(item: Mapping[str, Any]) -> str:
    container, revision = item.get("container") or "", (item.get("revision") or "")[:12]
    if container and revision:
        return f"{container} @ {revision}"
    return container or (f"@ {revision}" if revision else "-")


def snapshots_text(items: Sequence[Mapping[str, Any]], *, stack: str, now: float | None = None) -> str:
    """The table of ``snapshots list``, from ``snapshots_data``'s dicts (local or a daemon's answer)."""
    if not items:
        return f"Stack {stack} has no volume snapshots."
    rows = [["VOLUME", "SNAPSHOT", "TAKEN", "SIZE", "CONTENT", "FOR", "STATE"]]
    for item in items:
        taken = f"{item['created']} ({age_text((time.time() if now is None else now) - float(item['created_epoch']))})"
        rows.append([item["volume"], item["id"], taken, size_text(item.get("size")), size_text(item.get("content")),
                     _for(item), item["state"]])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def volume_summaries(items: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per volume: how many snapshots, and the newest's id and time (``created``, ISO): the status page's view."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        summary = out.setdefault(item["volume"], {"count": 0, "newest": None, "newest_at": None, "_epoch": -1.0})
        summary["count"] += 1
        if float(item["created_epoch"]) >= summary["_epoch"]:
            summary.update(newest=item["id"], newest_at=item["created"], _epoch=float(item["created_epoch"]))
    for summary in out.values():
        del summary["_epoch"]
    return out


def restored_text(stack: str, restored: Any, *, stopped: Sequence[str] = (), started: Sequence[str] = ()) -> str:
    """What ``snapshots restore`` did, after the driver's own ``data restored: …`` line: the volume, the snapshot,
    how long it took, and the containers stopped for it (and started again)."""
    snapshot = restored.snapshot
    text = (f"stack {stack}: volume {snapshot.volume} restored from snapshot {snapshot.id} "
            f"in {restored.seconds:.1f} s")
    if stopped:
        again = "started again" if list(started) == list(stopped) else "left stopped"
        text += f"; {', '.join(stopped)} stopped for it and {again}"
    return text


def deleted_text(stack: str, volume: str, snapshot_ids: Sequence[str]) -> str:
    """What ``snapshots delete`` did."""
    return f"stack {stack}: volume {volume}: deleted snapshot{'s' if len(snapshot_ids) > 1 else ''} " + \
        ", ".join(snapshot_ids)
