"""Hook specifications: everything a plugin can do, typed and documented in one place.

Built-in drivers use these same hooks (see ``plugins/reconciler_docker``).
A plugin module or package declares ``@hookimpl`` functions named after
these specs and is found through the ``reconciler`` entry-point group.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .report import ApplyReport, Outcome
    from .drivers import PluginDrivers
    from .model import DesiredState, ImageEvent, Preview
    from .plan import Change, Operation, Plan

__all__ = ["API_VERSION", "hookimpl", "hookspec", "PROJECT"]

PROJECT = "reconciler"
#: The plugin API this core speaks: one number. A plugin declares the version it was
#: written for as a module (or object) attribute, ``RECONCILER_API_VERSION = 2``; the
#: core loads the plugins that declare exactly this one, and skips others (and those
#: declaring none), saying which side to upgrade.
API_VERSION = 2
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def reconciler_register_drivers(registry: PluginDrivers) -> None:
    """Add drivers: ``registry.add_network_driver("bridge", factory)`` and friends.

    A factory takes a ``DriverContext`` and returns a driver instance;
    ``registry.lookup(kind, name)`` gives one for a driver another plugin registers.
    """


@hookspec
def reconciler_plan_ready(plan: Plan, desired: DesiredState, operation: Operation) -> str | None:
    """Inspect a computed plan before anything is applied; return a reason to veto it.

    Every non-None reason is collected and the apply is refused with all of them.
    ``operation`` says whether the run applies a spec (``Operation.APPLY``: also
    ``plan``, ``watch`` and the daemon) or destroys the stack (``Operation.DESTROY``:
    ``desired`` is then empty and every change a delete), so that a blast-radius
    rule can let a teardown through. An implementation may leave ``operation``
    out of its parameters: pluggy passes only the arguments it names.
    """


@hookspec
def reconciler_before_change(change: Change, operation: Operation) -> None:
    """Called just before a change starts (from the apply loop's thread, once per change)."""


@hookspec
def reconciler_after_change(change: Change, outcome: Outcome, operation: Operation) -> None:
    """Called when a change has finished, failed or been skipped (from the apply loop's thread)."""


@hookspec
def reconciler_apply_finished(report: ApplyReport, operation: Operation) -> None:
    """Called once per apply (or destroy) with the full report, after the stack's lock is released."""


@hookspec
def reconciler_pass_finished(stack: str, trigger: str, report: ApplyReport | None, error: str,
                             crash_looping: Mapping[str, int], held: Plan | None) -> None:
    """A loop's pass (``watch``, the daemon) ended: what only the loop knows, after ``reconciler_apply_finished``.

    ``trigger`` is what woke the loop (``start``, ``source``, ``engine``, ``resync``, ``retry``, …); ``report``
    the apply's (None when nothing was applied); ``error`` why the pass failed before applying (the spec does not
    load, the engine is unreachable, the lock is held), "" when it did not; ``crash_looping`` the containers
    started again pass after pass, with how many starts in a row; ``held`` the plan a suspended stack did not
    apply (None when the stack is not suspended). Called from the loop's thread; a failing implementation is
    logged and changes nothing.
    """


@hookspec
def reconciler_image_event(event: ImageEvent) -> None:
    """Image automation did something (``event.kind``): a newer version was committed to a stack's source, a
    version was quarantined after its rollout failed the health gate and rolled back, or a person released one.

    Called by the daemon's image automation thread, after the commit was pushed (``updated``, and the revert of
    a ``quarantined`` one) or the record changed. A failing implementation is logged and changes nothing.
    """


@hookspec
def reconciler_preview_changed(preview: Preview, event: str) -> None:
    """A preview stack came up or went away (``daemon.previews``): ``event`` is ``up`` (its branch's first pass
    applied, or its first pass since it was waiting or expired) or ``down`` (removed with its volumes;
    ``preview.reason`` says why: its branch was deleted or merged, or it was idle past its ``ttl``).

    ``preview.urls`` are where it answers. Called by the daemon, from the thread that made or removed the
    preview; a failing implementation is logged and changes nothing.
    """
