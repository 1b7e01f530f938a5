"""One face for every front end: a stack is run on one engine or on a fleet, and only this module chooses.

``Reconciler`` (one engine) and ``fleet.FleetReconciler`` (the targets a spec
names) both answer ``StackRunner``: plan, apply, destroy, status, and the event
sources the loop follows. ``runner_for`` picks one, once, from the spec and the
engine the user named; the CLI and the loop then call the runner they were
given and never ask which of the two it is. What they get back says how it is
shown: a ``StackPlan`` or an ``ApplyReport`` of one engine, or a ``FleetReport``
of a fleet (rendered per target by ``render_fleet``).

Callbacks: ``on_plan``, ``before`` and ``after`` follow one engine's apply
change by change; ``on_target`` follows a fleet target by target. Each runner
calls those it has and takes the others without calling them, so a front end
passes all it wants shown.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Protocol

from .errors import SpecError
from .model import DesiredState
from .plan import Plan
from .reconcile import ApplyRequest, Reconciler, StackPlan
from .report import ApplyReport

__all__ = ["StackRunner", "runner_for", "whole_plan", "whole_report"]


class StackRunner(Protocol):
    """What the CLI and the loop ask of a stack's reconciler (``Reconciler``, ``fleet.FleetReconciler``)."""

    def plan(self, desired: DesiredState, *, prune_volumes: bool = False, adopt: bool = False,
             adopt_compose: bool = False, on_target: Callable[[Any], None] | None = None) -> Any:
        """The plan against fresh live state (reads only): a ``StackPlan``, or a fleet's ``FleetReport``."""

    def apply(self, desired: DesiredState, request: ApplyRequest = ApplyRequest(), **callbacks: Any) -> Any:
        """Make the engine(s) match ``desired``: an ``ApplyReport``, or a fleet's ``FleetReport``."""

    def destroy(self, stack: str, request: ApplyRequest = ApplyRequest(), *, runtime: str | None = None,
                **callbacks: Any) -> Any:
        """Remove what the stack owns: an ``ApplyReport``, or a fleet's ``FleetReport``."""

    def status(self, desired: DesiredState, *, detailed: bool = False) -> Any:
        """Every object desired against live: a ``StackStatus``, or a fleet's ``FleetStatus``.

        ``detailed``: with each image's layers (one engine's status; a fleet's rows leave them out)."""

    def event_sources(self, stack: str, desired: DesiredState | None = None) -> list:
        """The drivers whose ``events`` report changes to the stack's objects, on every engine it runs on
        (with ``desired``: only the drivers its objects use)."""


def runner_for(desired: DesiredState | None, reconciler: Reconciler, *, engine: str | None = None,
               targets: Iterable[str] = (), one_engine: str = "") -> StackRunner:
    """``reconciler`` itself, or a ``FleetReconciler`` when the spec names targets and no ``engine`` overrides them.

    The fleet shares ``reconciler``'s plugins, record and progress; ``targets``
    (``--target``) narrows it to those names, which must be the spec's. A command
    that works on one engine only says why in ``one_engine``: a spec naming
    targets is then refused with that message, before any engine is asked.
    """
    if desired is None or desired.fleet is None or engine:
        return reconciler
    unknown = sorted(set(targets) - {t.name for t in desired.fleet.targets})
    if unknown:
        raise SpecError(f"--target: no target named {', '.join(unknown)} in the spec "
                        f"(targets: {', '.join(t.name for t in desired.fleet.targets)})")
    if one_engine:
        raise SpecError(one_engine)
    from .fleet import FleetReconciler

    return FleetReconciler(desired.fleet, desired.stack, plugin_manager=reconciler.pm, state=reconciler.state,
                           progress=reconciler.progress, only=targets, engine_timeout=reconciler.engine_timeout,
                           address_pools=reconciler.address_pools)


def whole_plan(result: Any) -> tuple[Plan, str]:
    """A runner's ``plan`` answer as one plan, and why targets did not answer ("" for one engine: it raises).

    For the loop, whose pass keeps one plan: a fleet's plans are merged, target after target.
    """
    if isinstance(result, StackPlan):
        return result.plan, ""
    return result.merged_plan(), result.errors


def whole_report(result: Any, revision: str = "") -> tuple[ApplyReport, str]:
    """A runner's ``apply`` answer as one report, and why targets did not converge ("" for one engine:
    its failures are in its report).

    For the loop, whose pass keeps one report: a fleet's are merged, outcomes and engine calls added up.
    """
    if isinstance(result, ApplyReport):
        return result, ""
    return result.merged_report(revision), result.errors
