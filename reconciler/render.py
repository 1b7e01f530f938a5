"""Text and JSON views of plans, apply reports and status, for the CLI.

Returns strings and plain data; printing is the CLI's job. Values in plans are
already redacted by the planner; nothing here sees a secret.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterable, Iterator, Sequence
from urllib.parse import urlsplit

from .explain import render_field
from .fsdrift import filesystem_lines
from .report import ApplyReport, Outcome, Status
from .plan import Action, Change, Plan, Takeover

__all__ = ["change_line", "history_json", "history_text", "hold_text", "outcome_line", "pass_json", "pass_text",
           "plan_data", "plan_json", "plan_text", "plugins_json", "plugins_text", "release_text", "report_data",
           "report_json", "report_text", "status_json", "status_text", "servers_history_text", "servers_status_text",
           "sync_data"]

_SYMBOL = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REPLACE: "-/+",
    Action.START: "~",
    Action.DELETE: "-",
}
_VERB = {
    Action.CREATE: "create",
    Action.UPDATE: "update",
    Action.REPLACE: "replace",
    Action.START: "start",
    Action.DELETE: "delete",
}


def _what(change: Change) -> str:
    if change.kind.value == "image":
        return f"{change.reason.image_verb} image {change.name}"
    if change.action is Action.START:
        return f"start container {change.name}"
    if change.scheduled:
        return f"service {change.name}"
    return f"{change.kind.value} {change.name}"


def change_line(change: Change) -> str:
    """One line naming the change: ``-/+ container demo-web-1``."""
    return f"{_SYMBOL[change.action]} {_what(change)}"


def plan_text(plan: Plan, *, vetoes: Sequence[str] = ()) -> str:
    """The plan as terraform users read it: symbol, object, then indented reasons."""
    if plan.empty:
        lines = [f"Stack {plan.stack}: no changes. The engine matches the spec."]
    else:
        lines = [f"Stack {plan.stack}: {_summary(plan.counts(), plan.takeovers)}.", ""]
        lines.extend(_takeover_block(plan))
        for change in plan.changes:
            lines.extend(_change_block(change))
    if plan.notes:
        lines.append("")
        lines.extend(f"note: {note}" for note in plan.notes)
    if vetoes:
        lines += ["", "apply would be refused by plugin policy:"] + [f"  {line}" for line in vetoes]
    return "\n".join(lines)


def _change_block(change: Change) -> list[str]:
    head = "  " + change_line(change)
    if change.forced_by and change.action is Action.REPLACE:
        head += f"   (forced by {', '.join(change.forced_by)})"
    lines = [head]
    lines.extend(f"        {reason}" for reason in change.reasons if reason != "new" or change.error)
    lines.extend(f"        {line}" for field in change.fields for line in render_field(field))
    if change.rollout is not None:
        lines.append(f"        rollout: {change.rollout.order}"
                     + (f" ({change.rollout.why})" if change.rollout.why != "default" else ""))
    if change.blocked:
        lines.append(f"        ! blocked: {change.blocked}")
    if change.error:
        lines.append(f"        ! error: {change.error}")
    return lines


def _summary(counts: dict[str, int], takeovers: Sequence[Takeover] = ()) -> str:
    order = ["create", "update", "replace", "start", "delete"]
    parts = [f"{counts[name]} to {name}" for name in order if counts.get(name)]
    if takeovers:
        parts.insert(0, f"{len(takeovers)} to take over")
    return ", ".join(parts) or "no changes"


def _takeover_block(plan: Plan) -> list[str]:
    """What ``reconcile adopt`` does to each object of the Compose project, before the changes that follow."""
    if not plan.takeovers and not plan.left_alone:
        return []
    lines = ["  taking over the running Compose project:"]
    for taken in plan.takeovers:
        renamed = f" (renamed from {taken.renamed_from})" if taken.renamed_from else ""
        lines.append(f"  {taken.verdict:<7} {taken.kind.value} {taken.name}{renamed}")
        lines.extend(f"        {reason}" for reason in taken.reasons)
    lines.extend(f"  left    {line}" for line in plan.left_alone)
    return lines + [""]


def _takeover_data(taken: Takeover) -> dict[str, Any]:
    return {"verdict": taken.verdict, "kind": taken.kind.value, "name": taken.name, "key": taken.key,
            "renamed_from": taken.renamed_from or None, "reasons": list(taken.reasons)}


def _change_data(change: Change) -> dict[str, Any]:
    return {
        "id": change.id,
        "action": change.action.value,
        "kind": change.kind.value,
        "name": change.name,
        "key": change.key,
        "reason": change.reason.value,
        **({"service": True} if change.scheduled else {}),
        "rollout": change.rollout.order if change.rollout else None,
        "reasons": list(change.reasons),
        "fields": [{"path": f.path, "old": f.old, "new": f.new} for f in change.fields],
        "forced_by": list(change.forced_by),
        "blocked": change.blocked or None,
        "error": change.error or None,
    }


def plan_data(plan: Plan) -> dict[str, Any]:
    """The plan as plain JSON-ready data (values already redacted by the planner)."""
    data = {"stack": plan.stack, "changes": [_change_data(c) for c in plan.changes], "notes": list(plan.notes),
            "counts": plan.counts()}
    if plan.drifted:  # filesystem: report containers whose writable layer changed (see fsdrift)
        data["drifted"] = list(plan.drifted)
    if plan.takeovers or plan.left_alone:
        data["takeovers"] = [_takeover_data(t) for t in plan.takeovers]
        data["left_alone"] = list(plan.left_alone)
    return data


def plan_json(plan: Plan, *, vetoes: Sequence[str] = ()) -> str:
    return json.dumps({**plan_data(plan), "vetoes": list(vetoes)}, indent=2)


def outcome_line(outcome: Outcome) -> str:
    """A progress line for one finished change."""
    mark = {Status.OK: "ok", Status.FAILED: "FAILED", Status.SKIPPED: "skipped"}[outcome.status]
    line = f"{change_line(outcome.change):<60} {mark:>7}  {outcome.seconds:5.1f}s"
    if outcome.error:
        line += f"\n      {outcome.error}"
    elif outcome.note:
        line += f"\n      {outcome.note}"
    return line


def report_text(report: ApplyReport) -> str:
    ok, failed, skipped = (report.count(s) for s in Status)
    notes = "".join(f"\n  {note}" for note in report.notes)  # what the pass did before its plan
    if not report.outcomes:
        return f"Stack {report.stack}: nothing to do ({report.seconds:.1f}s).{notes}"
    state = "converged" if report.ok else "NOT converged"
    return (f"Stack {report.stack} {state}: {ok} ok, {failed} failed, {skipped} skipped "
            f"in {report.seconds:.1f}s.{notes}")


def report_json(report: ApplyReport) -> str:
    return json.dumps(report_data(report), indent=2)


def report_data(report: ApplyReport) -> dict[str, Any]:
    """An apply report as plain JSON-ready data."""
    return {
        "stack": report.stack,
        "revision": report.revision or None,
        "ok": report.ok,
        "seconds": round(report.seconds, 3),
        "engine_calls": {"read": 0, "write": 0, **report.stats},
        **({"notes": list(report.notes)} if report.notes else {}),
        "changes": [
            {**_change_data(o.change), "status": o.status.value, "error": o.error or None,
             "temporary": o.temporary if o.status is Status.FAILED else None, "seconds": round(o.seconds, 3),
             **({"note": o.note} if o.note else {})}
            for o in report.outcomes
        ],
    }


def pass_text(result: Any) -> str:
    """One pass of ``reconcile watch``: when, why, what it did (a ``loop.Pass``)."""
    head = f"[{time.strftime('%H:%M:%S')}] pass ({result.trigger.value}): "
    if result.error:
        lines = [head + "FAILED", *(f"  {line}" for line in result.error.splitlines())]
    elif result.suspended is not None:
        drift = "no drift" if result.suspended.empty else f"drifted: {_summary(result.suspended.counts())}"
        lines = [head + f"suspended, nothing applied ({drift})"]
    else:
        lines = [head + report_text(result.report)]
        lines += [f"  {outcome_line(o)}" for o in result.report.outcomes]
    for name, starts in sorted(result.crash_looping.items()):
        lines.append(f"  degraded: container {name} is crash-looping ({starts} starts in a row)")
    if result.delay:
        lines.append(f"  next pass in {result.delay:.0f}s at the earliest (backoff)")
    return "\n".join(lines)


def pass_json(result: Any, **origin: Any) -> str:
    """One pass of ``reconcile watch`` or the daemon as one JSON line (``origin``: where the spec came from)."""
    data = json.loads(report_json(result.report)) if result.report is not None else {}
    suspended = plan_data(result.suspended) if result.suspended is not None else None
    return json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **origin, "trigger": result.trigger.value,
                       "suspended": suspended is not None, "drift": suspended["counts"] if suspended else None,
                       "ok": result.ok, "error": result.error or None, "degraded": sorted(result.crash_looping),
                       "delay": round(result.delay, 3), "report": data or None}, separators=(",", ":"))


def status_text(stack: str, rows: Iterable[dict[str, Any]], *, converged: bool, detailed: bool = False) -> str:
    """The stack's state, then a table of objects: kind, name, live state, health, drift.

    ``detailed``: under each object that differs, the fields that differ, one line each (its ``diff``)."""
    rows = list(rows)
    headers = ["KIND", "NAME", "STATE", "HEALTH", "IMAGE", "DIGEST", "UPSTREAM", "DRIFT"]
    keys = ["kind", "name", "state", "health", "image", "digest", "upstream", "drift"]
    short = {"digest", "upstream"}  # sha256:<12 hex>, like the image column
    table = [[str((row.get(k) or "")[:19] if k in short else row.get(k) or "") or "-" for k in keys] for row in rows]
    lines = _table(headers, table).split("\n")
    out = lines[:1]
    for row, line in zip(rows, lines[1:]):
        out.append(line)
        if row.get("details"):  # what the driver reports (LiveObject.info), under its object
            out.append("    " + ", ".join(f"{k}: {v}" for k, v in row["details"].items()))
        if detailed:
            out.extend(f"    {line}" for line in row.get("diff") or ())
        out.extend("    " + line for line in filesystem_lines(row.get("filesystem")))
        if row.get("layers"):  # status --detailed: the image's layers, newest first
            from .imagelayers import layer_lines

            out.extend("    " + text for text in layer_lines(row["layers"]))
    return f"Stack {stack}: {'converged' if converged else 'drifted'}\n\n" + "\n".join(out)


def status_json(stack: str, rows: Iterable[dict[str, Any]], *, converged: bool) -> str:
    return json.dumps({"stack": stack, "converged": converged, "objects": list(rows)}, indent=2)


def history_text(syncs: Iterable[Any], where: str = "") -> str:
    """``reconcile history``: one line per sync, newest first (``state.Sync`` rows).

    ``where`` is the record read (its database's path): an empty one says so, and where else to look,
    for a daemon keeps its record in its own state directory.
    """
    rows = [[s.started_at, s.stack, (s.revision or "-")[:12], s.result.value, s.trigger or "-",
             f"{s.seconds:.1f}", s.summary or "-"] for s in syncs]
    if not rows:
        if not where:
            return "No syncs recorded."
        return (f"No syncs recorded in {where} (a daemon keeps its own record in its state_dir: "
                "reconcile history --state-dir DIR, or --server URL)")
    return _table(["STARTED", "STACK", "REVISION", "RESULT", "TRIGGER", "SECONDS", "PLAN"], rows)


def hold_text(stack: str, revision: str, source_revision: str, *, with_data: bool = False) -> str:
    """What ``reconcile rollback`` says, here or through a daemon's API: where the stack is held, and until when."""
    data = " with its data (its next pass restores the volumes' snapshots first)" if with_data else ""
    return (f"stack {stack} held at {revision[:12]}{data} until its source moves past {source_revision[:12]} "
            f"or 'reconcile release {stack}'")


def release_text(stack: str) -> str:
    """What ``reconcile release`` says, here or through a daemon's API."""
    return f"stack {stack} released: it follows its source again"


def _table(headers: list[str], rows: Iterable[list[str]]) -> str:
    """Left-aligned columns two spaces apart, headers first."""
    table = [headers, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in table)


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def servers_status_text(results: Iterable[tuple[str, Any]]) -> str:
    """``status --server …``: one line per host per stack (``results``: (url, stacks or an error text))."""
    return _servers_table(["HOST", "STACK", "STATE", "REVISION", "DRIFT", "LAST SYNC", "ERROR"], "STATE",
                          results, _status_rows, empty="No stacks.")


def _status_rows(host: str, stacks: list[dict]) -> Iterator[list[str]]:
    for st in stacks:
        last = st["last_sync"] or {}
        state = st["state"] + (" (suspended)" if st["suspended"] and st["state"] != "suspended" else "")
        yield [host, st["name"] or st["id"], state + (" held" if st["held"] else ""),
               (st["revision"] or "-")[:12], "-" if st["drift"] is None else str(st["drift"]),
               last.get("at", "-"), (last.get("error") or "").splitlines()[0][:60] if last.get("error") else ""]


def servers_history_text(results: Iterable[tuple[str, Any]]) -> str:
    """``history --server …``: one line per sync, each with its host."""
    return _servers_table(["HOST", "STARTED", "STACK", "REVISION", "RESULT", "SECONDS", "PLAN"], "RESULT",
                          results, _history_rows, empty="No syncs recorded.")


def _history_rows(host: str, syncs: list[dict]) -> Iterator[list[str]]:
    for h in syncs:
        yield [host, h["started_at"], h["stack"], (h["revision"] or "-")[:12], h["result"],
               f'{h["seconds"]:.1f}', h["summary"] or "-"]


def _servers_table(headers: list[str], outcome: str, results: Iterable[tuple[str, Any]],
                   rows: Callable[[str, Any], Iterable[list[str]]], *, empty: str) -> str:
    """One table over several servers: ``rows(host, answer)`` for each that answered; for each that did not
    (its answer is an error text), one row saying ``unreachable`` under ``outcome`` and the error last."""
    table = []
    for url, answer in results:
        host = _host(url)
        if isinstance(answer, str):
            row = [host] + ["-"] * (len(headers) - 2) + [answer]
            row[headers.index(outcome)] = "unreachable"
            table.append(row)
        else:
            table.extend(rows(host, answer))
    return _table(headers, table) if table else empty


def sync_data(sync: Any) -> dict[str, Any]:
    """One row of the sync history as plain JSON-ready data."""
    return {"started_at": sync.started_at, "engine": sync.engine, "stack": sync.stack,
            "revision": sync.revision or None, "result": sync.result.value, "seconds": sync.seconds,
            "summary": sync.summary, "trigger": sync.trigger or None}


def history_json(syncs: Iterable[Any]) -> str:
    return json.dumps([sync_data(s) for s in syncs], indent=2)


def plugins_text(rows: Iterable[dict[str, Any]]) -> str:
    """``plugins list``: each plugin, where it comes from, its drivers and hooks."""
    lines = []
    for row in rows:
        origin = (f"{row['distribution']} {row['version']}" if row["distribution"]
                  else f"module {row['module']}" if row["module"] else "no distribution")
        if row.get("state", "loaded") != "loaded":
            lines.append(f"{row['name']}  ({origin})  {row['state'].upper()}: {row['reason']}")
            continue
        lines.append(f"{row['name']}  ({origin})")
        lines.extend(f"    CONFLICT: {message}" for message in row.get("conflicts", ()))
        lines.append(f"    drivers: {', '.join(row['drivers']) or '-'}")
        lines.append(f"    hooks:   {', '.join(h.removeprefix('reconciler_') for h in row['hooks']) or '-'}")
    return "\n".join(lines)


def plugins_json(rows: Iterable[dict[str, Any]]) -> str:
    return json.dumps(list(rows), indent=2)
