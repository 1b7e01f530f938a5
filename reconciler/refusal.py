"""Why an apply is refused before it changes anything: the one list of reasons, in the order they are told.

A module of its own so that ``reconcile`` stays one concern (the pass's
order: lock, observe, plan, refuse, run, remember); every refusal here
raises before the first change.
"""
from __future__ import annotations

from typing import Any, Callable

from .errors import EmptySpecError, PlanError
from .model import DesiredState, Kind
from .plan import Action, Plan

__all__ = ["refuse"]


def refuse(desired: DesiredState, plan: Plan, request: Any, *, invalid: Callable[[], list[str]],
           vetoes: Callable[[], list[str]]) -> None:
    """Raise ``PlanError`` (or ``EmptySpecError``) when ``plan`` may not be applied: a saved plan that is no longer
    fresh, the plan's refusals, an empty spec that would delete, a Compose takeover with errors, ``invalid()``
    driver options, a blocked recreate the request does not allow, or ``vetoes()`` of plugins."""
    if request.saved is not None:
        from .planfile import check_fresh

        check_fresh(request.saved, plan, desired)
    if plan.refusals:
        raise PlanError("refusing to apply, nothing was changed:\n" + "\n".join(f"  {r}" for r in plan.refusals))
    # load_desired refuses an empty spec already; this guards a DesiredState built otherwise
    # (a daemon source whose path is gone).
    if (desired.is_empty() and not (request.destroy or request.allow_empty)
            and any(c.action is Action.DELETE for c in plan.changes)):
        raise EmptySpecError(desired.stack)
    errors = [f"{c.kind.value} {c.name}: {c.error}" for c in plan.changes if c.error]
    if request.adopt_compose and errors:  # a takeover is all or nothing: no half-adopted project
        raise PlanError("cannot take over the Compose project, nothing was changed:\n"
                        + "\n".join(f"  {line}" for line in errors))
    problems = invalid()
    if problems:
        raise PlanError("invalid driver options, nothing was changed:\n" + "\n".join(f"  {p}" for p in problems))
    allowed = {Kind.NETWORK: request.recreate_networks, Kind.VOLUME: request.recreate_volumes}
    blocked = [c.blocked for c in plan.changes if c.blocked and not allowed.get(c.kind, False)]
    if blocked:
        raise PlanError("refusing to apply:\n" + "\n".join(f"  {reason}" for reason in blocked))
    refused = vetoes()
    if refused:
        raise PlanError("refused by plugin policy, nothing was changed:\n" + "\n".join(
            f"  {line}" for line in refused))
