"""Hook specifications: everything a plugin can do, typed and documented in one place.

Built-in drivers use these same hooks (see ``plugins/reconciler_docker``).
A plugin module or package declares ``@hookimpl`` functions named after
these specs and is found through the ``reconciler`` entry-point group.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .report import ApplyReport, Outcome
    from .drivers import DriverRegistry
    from .model import DesiredState
    from .plan import Change, Plan

__all__ = ["API_VERSION", "MIN_API_VERSION", "hookimpl", "hookspec", "PROJECT"]

PROJECT = "reconciler"
#: The plugin API this core speaks. A plugin declares the version it was written
#: for as a module (or object) attribute, ``RECONCILER_API_VERSION = 2``; one that
#: declares none is taken as version 1. The core loads plugins declaring a version
#: from ``MIN_API_VERSION`` to ``API_VERSION``, and skips others, saying which side
#: to upgrade. Version 2: driver options schemas, ``observe`` given specs, the
#: ``operation`` argument of the lifecycle hooks, ``details`` shown by ``status``.
API_VERSION = 2
MIN_API_VERSION = 1
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def reconciler_register_drivers(registry: DriverRegistry) -> None:
    """Add drivers: ``registry.add_network_driver("bridge", factory)`` and friends.

    A factory takes a ``DriverContext`` and returns a driver instance.
    """


@hookspec
def reconciler_plan_ready(plan: Plan, desired: DesiredState) -> str | None:
    """Inspect a computed plan before anything is applied; return a reason to veto it.

    Every non-None reason is collected and the apply is refused with all of them.
    """


@hookspec
def reconciler_before_change(change: Change) -> None:
    """Called just before a change starts (from the apply loop's thread, once per change)."""


@hookspec
def reconciler_after_change(change: Change, outcome: Outcome) -> None:
    """Called when a change has finished, failed or been skipped (from the apply loop's thread)."""


@hookspec
def reconciler_apply_finished(report: ApplyReport) -> None:
    """Called once per apply with the full report."""
