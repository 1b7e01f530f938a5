"""Text and JSON views of fleet runs (``reconciler.fleet``): one section or line per target.

Kept beside ``render`` rather than in it: a single-engine run never needs it.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from .fleet import FleetReport, TargetOutcome, TargetState
from .render import _summary, _table, plan_data, outcome_line, plan_text, report_data, report_text

__all__ = ["fleet_json", "fleet_status_json", "fleet_status_text", "fleet_summary", "target_text"]


def _head(outcome: TargetOutcome) -> str:
    retried = f", {outcome.attempts} attempts" if outcome.attempts > 1 else ""
    return f"== target {outcome.target.name} ({outcome.target.engine}): {outcome.state.value}{retried}"


def target_text(outcome: TargetOutcome) -> str:
    """One target's section: its head line, then its plan or report, or why it did not converge."""
    lines = [_head(outcome)]
    if outcome.plan is not None:
        lines.append(plan_text(outcome.plan))
    if outcome.report is not None:
        lines.append(report_text(outcome.report))
        lines += [f"  {outcome_line(o)}" for o in outcome.report.outcomes]
    if outcome.error:
        lines.append(f"error: {outcome.error}")
    return "\n".join(lines)


def fleet_summary(report: FleetReport) -> str:
    """The closing lines: how many targets converged, and which did not."""
    bad = [o for o in report.outcomes if not o.ok]
    if not report.outcomes:
        return f"Stack {report.stack}: no target selected."
    head = (f"Stack {report.stack} on {len(report.outcomes)} targets: "
            f"{len(report.outcomes) - len(bad)} ok, {len(bad)} not ({report.seconds:.1f}s).")
    return "\n".join([head, *(f"  {o.target.name}: {o.state.value}: {o.error.splitlines()[0] if o.error else ''}"
                              for o in bad)])


def _target_data(outcome: TargetOutcome) -> dict[str, Any]:
    return {"target": outcome.target.name, "engine": outcome.target.engine, "labels": dict(outcome.target.labels),
            "state": outcome.state.value, "ok": outcome.ok, "attempts": outcome.attempts,
            "seconds": round(outcome.seconds, 3), "error": outcome.error or None,
            "report": report_data(outcome.report) if outcome.report is not None else None,
            "plan": plan_data(outcome.plan) if outcome.plan is not None else None}


def fleet_json(report: FleetReport) -> str:
    return json.dumps({"stack": report.stack, "ok": report.ok, "seconds": round(report.seconds, 3),
                       "targets": [_target_data(o) for o in report.outcomes]}, indent=2)


def _status_row(outcome: TargetOutcome, last: Any) -> dict[str, Any]:
    drift = None
    if outcome.plan is not None:
        drift = "none" if outcome.plan.empty else _summary(outcome.plan.counts())
    return {"target": outcome.target.name, "engine": outcome.target.engine, "state": outcome.state.value,
            "drift": drift, "last_sync": last.started_at if last else None,
            "last_result": last.result.value if last else None, "error": outcome.error or None}


def fleet_status_text(report: FleetReport, last_syncs: Sequence[Any]) -> str:
    """``status`` of a fleet stack: one line per target with its state, drift and last sync."""
    rows = []
    for outcome, last in zip(report.outcomes, last_syncs):
        row = _status_row(outcome, last)
        rows.append([report.stack, row["target"], row["engine"], row["state"], row["drift"] or "-",
                     f"{row['last_sync']} {row['last_result']}" if last else "-",
                     (outcome.error.splitlines()[0][:70] if outcome.error else "")])
    return _table(["STACK", "TARGET", "ENGINE", "STATE", "DRIFT", "LAST SYNC", "ERROR"], rows)


def fleet_status_json(report: FleetReport, last_syncs: Sequence[Any], objects: Sequence[list | None]) -> str:
    return json.dumps({"stack": report.stack, "converged": all(o.state is TargetState.CONVERGED
                                                               for o in report.outcomes),
                       "targets": [{**_status_row(o, last), "objects": rows}
                                   for o, last, rows in zip(report.outcomes, last_syncs, objects)]}, indent=2)
