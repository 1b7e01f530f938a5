"""What a command shows of its runner's answer, and the exit code it makes of it, chosen by the answer's type.

One engine answers with a ``StackPlan``, an ``ApplyReport`` or a
``StackStatus``; a fleet with a ``FleetReport`` or a ``FleetStatus``, shown
target by target (``render_fleet``, imported only when a fleet answered). The
commands in ``local`` never ask which runner they had.
"""
from __future__ import annotations

import argparse
import threading
from typing import Any, Callable

from ..fsdrift import without_paths
from ..reconcile import StackPlan, StackStatus
from ..render import outcome_line, plan_json, plan_text, report_json, report_text, status_json, status_text
from ..report import ApplyReport
from .output import out

__all__ = ["callbacks", "show_plan", "show_run", "show_status"]


def callbacks(args: argparse.Namespace, *, changes: bool = True) -> dict[str, Callable[[Any], None]]:
    """What text output shows as a run goes: one engine's plan and each change (``changes``), a fleet's
    targets one by one as each finishes. JSON and Markdown output are one document at the end."""
    if args.output != "text":
        return {}
    lock = threading.Lock()  # targets finish on threads of their own

    def on_target(outcome) -> None:
        from ..render_fleet import target_text

        with lock:
            out(target_text(outcome) + "\n")

    shown: dict[str, Callable[[Any], None]] = {"on_target": on_target}
    if changes:
        shown["on_plan"] = lambda plan: out(plan_text(plan) + ("\n" if not plan.empty else ""))
        shown["after"] = lambda outcome: out(outcome_line(outcome))
    return shown


def show_plan(args: argparse.Namespace, planned: Any, *, vetoes: Callable[[Any], list[str]]) -> int:
    """``plan``: the plan (and the plugins' vetoes) of one engine, or a fleet's per target; 1 on an error,
    2 with ``--detailed-exitcode`` when changes are pending."""
    if isinstance(planned, StackPlan):
        refused = vetoes(planned.plan)
        if args.output == "markdown":
            from ..render_markdown import plan_markdown as render
        else:
            render = plan_json if args.output == "json" else plan_text
        out(render(planned.plan, vetoes=refused))
        if refused or any(c.error for c in planned.plan.changes):
            return 1
        pending = not planned.plan.empty or bool(planned.plan.drifted)  # drifted: filesystem: report
    else:
        _fleet_end(args, planned)
        if not planned.ok:
            return 1
        pending = any(o.plan is not None and (not o.plan.empty or o.plan.drifted) for o in planned.outcomes)
    return 2 if args.detailed_exitcode and pending else 0


def show_run(args: argparse.Namespace, report: Any) -> int:
    """``apply`` and ``destroy``: one engine's report, or a fleet's closing lines; 1 unless it converged."""
    if isinstance(report, ApplyReport):
        out(report_json(report) if args.output == "json" else report_text(report))
    else:
        _fleet_end(args, report)
    return 0 if report.ok else 1


def show_status(args: argparse.Namespace, status: Any) -> int:
    """``status``: every object of one engine, or one line per target (its objects too in JSON); 1 when a
    target did not answer."""
    if isinstance(status, StackStatus):
        detailed = getattr(args, "detailed", False)
        rows = status.rows if detailed else without_paths(list(status.rows))
        if args.output == "json":
            out(status_json(status.stack, rows, converged=status.converged))
        else:
            out(status_text(status.stack, rows, converged=status.converged, detailed=detailed))
        return 0
    from ..render_fleet import fleet_status_json, fleet_status_text

    if args.output == "json":
        out(fleet_status_json(status.report, status.last_syncs, status.objects))
    else:
        out(fleet_status_text(status.report, status.last_syncs))
    return 0 if status.ok else 1


def _fleet_end(args: argparse.Namespace, report: Any) -> None:
    """A fleet run's closing: the whole run as JSON or Markdown, or (its targets shown already) the summary lines."""
    if args.output == "markdown":
        from ..render_markdown import fleet_markdown

        out(fleet_markdown(report))
        return
    from ..render_fleet import fleet_json, fleet_summary

    out(fleet_json(report) if args.output == "json" else fleet_summary(report))
