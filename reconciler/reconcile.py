"""The one path every entry point takes: load → validate → model → observe → plan → apply.

The CLI calls these functions, and so will ``watch`` and ``daemon``: the loop
only decides *when* to reconcile, never *how*.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable

from .drivers import DriverContext, DriverRegistry, Drivers, RuntimeDriver
from .errors import EmptySpecError, PlanError, PluginError, ReconcilerError
from .lock import stack_lock
from .model import DesiredState, Kind, LiveState
from .plan import Action, Change, Plan, plan_changes
from .report import ApplyOptions, ApplyReport, Outcome
from .plugins import call_by_plugin, call_hook, load_driver_registry, make_plugin_manager
from .retry import RetryPolicy, call_with_retries
from .spec import load_desired

__all__ = ["ApplyRequest", "Reconciler", "load_desired"]

OBSERVE_RETRY = RetryPolicy(attempts=3, base=0.5, cap=4.0)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApplyRequest:
    """What the user allowed for this apply."""

    prune_volumes: bool = False
    recreate_networks: bool = False
    recreate_volumes: bool = False
    destroy: bool = False
    allow_empty: bool = False  # an empty spec may delete what the stack owns (a daemon source's allow_empty)
    options: ApplyOptions = field(default_factory=ApplyOptions)
    lock_timeout: float = 10.0
    saved: Any = None  # a planfile.SavedPlan: apply exactly that plan or nothing


class Reconciler:
    """Plugins, drivers and one engine: observe, plan and apply stacks."""

    def __init__(self, *, engine_url: str | None = None, plugin_modules: Iterable[str] = (), plugin_manager: Any = None,
                 progress: Callable[[str, str], None] | None = None) -> None:
        """``progress`` receives (object name, line) as drivers report progress (see ``DriverContext``)."""
        self.engine_url = engine_url
        self.progress = progress
        self.pm = plugin_manager or make_plugin_manager(modules=plugin_modules)
        self.registry: DriverRegistry = load_driver_registry(self.pm)

    def drivers(self, stack: str) -> Drivers:
        return self.registry.instantiate(DriverContext(stack=stack, engine_url=self.engine_url, progress=self.progress))

    def driver_names(self) -> dict[str, list[str]]:
        """The driver names plugins provide, by spec section (for ``load_desired``)."""
        return {
            "images": self.registry.names(Kind.IMAGE),
            "networks": self.registry.names(Kind.NETWORK),
            "volumes": self.registry.names(Kind.VOLUME),
            "containers": self.registry.names(Kind.CONTAINER),
        }

    def observe(self, desired: DesiredState, drivers: Drivers) -> LiveState:
        """The live state, retrying while the engine is temporarily unreachable."""
        from .observe import observe

        return call_with_retries(lambda: observe(desired, drivers), OBSERVE_RETRY)

    def engine_identity(self, drivers: Drivers) -> str | None:
        """What the stack's lock is keyed on: the engine's identity, else its URL (None: the default engine).

        Retried like observing: an engine that is restarting answers a moment later.
        """
        def ask() -> str | None:
            drivers.context.pass_cache.clear()  # each attempt is a pass of its own: nothing remembered answers it
            return drivers.engine_id()

        return call_with_retries(ask, OBSERVE_RETRY) or self.engine_url

    def plan(self, desired: DesiredState, *, prune_volumes: bool = False) -> tuple[Plan, LiveState]:
        drivers = self.drivers(desired.stack)
        live = self.observe(desired, drivers)
        return plan_changes(desired, live, prune_volumes=prune_volumes), live

    def apply(
        self,
        desired: DesiredState,
        request: ApplyRequest = ApplyRequest(),
        *,
        on_plan: Callable[[Plan], None] | None = None,
        before: Callable[[Change], None] | None = None,
        after: Callable[[Outcome], None] | None = None,
    ) -> ApplyReport:
        """Lock the stack, plan against fresh live state, refuse what is not allowed, apply.

        ``reconciler_apply_finished`` runs after the lock is released: a slow
        notification must not hold up the next writer.
        """
        hook_errors: list[str] = []
        drivers = self.drivers(desired.stack)
        with stack_lock(desired.stack, self.engine_identity(drivers), timeout=request.lock_timeout):
            live = self.observe(desired, drivers)
            plan = plan_changes(desired, live, prune_volumes=request.prune_volumes)
            self._refuse(desired, plan, request, drivers)
            if on_plan is not None:
                on_plan(plan)
            report = self._run(plan, desired, drivers, request, before, after, hook_errors)
        self._hook(hook_errors, "reconciler_apply_finished", report=report)
        if hook_errors:
            raise PluginError("\n".join(dict.fromkeys(hook_errors)))
        return report

    def _hook(self, errors: list[str], name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook; a failure is collected (naming plugin and hook), not raised."""
        try:
            call_hook(self.pm, name, **kwargs)
        except PluginError as exc:
            errors.append(str(exc))

    def _refuse(self, desired: DesiredState, plan: Plan, request: ApplyRequest, drivers: Drivers) -> None:
        if request.saved is not None:
            from .planfile import check_fresh

            check_fresh(request.saved, plan, desired)
        # load_desired refuses an empty spec already; this guards a DesiredState built otherwise
        # (a daemon source whose path is gone).
        if (desired.is_empty() and not (request.destroy or request.allow_empty)
                and any(c.action is Action.DELETE for c in plan.changes)):
            raise EmptySpecError(desired.stack)
        invalid = self._invalid_options(desired, drivers)
        if invalid:
            raise PlanError("invalid driver options, nothing was changed:\n" + "\n".join(f"  {p}" for p in invalid))
        allowed = {Kind.NETWORK: request.recreate_networks, Kind.VOLUME: request.recreate_volumes}
        blocked = [c.blocked for c in plan.changes if c.blocked and not allowed.get(c.kind, False)]
        if blocked:
            raise PlanError("refusing to apply:\n" + "\n".join(f"  {reason}" for reason in blocked))
        vetoes = self.vetoes(plan, desired)
        if vetoes:
            raise PlanError("refused by plugin policy, nothing was changed:\n" + "\n".join(
                f"  {line}" for line in vetoes))

    def _invalid_options(self, desired: DesiredState, drivers: Drivers) -> list[str]:
        problems = []
        for kind, section, specs in ((Kind.NETWORK, "networks", desired.networks),
                                     (Kind.VOLUME, "volumes", desired.volumes)):
            for key, spec in specs.items():
                problems += [f"{section}.{key}.options: {p}" for p in drivers.get(kind, spec.driver).validate(spec)]
        return problems

    def vetoes(self, plan: Plan, desired: DesiredState) -> list[str]:
        """Every reason plugins give to refuse ``plan``, one line each, prefixed with the plugin."""
        results = call_by_plugin(self.pm, "reconciler_plan_ready", plan=plan, desired=desired)
        return [f"[{name}] {line}" for name, reason in results if reason for line in str(reason).splitlines()]

    def _run(self, plan, desired, drivers, request, before, after, hook_errors: list[str]) -> ApplyReport:
        # A plugin failing in a lifecycle hook must not leave the engine half-changed:
        # the apply finishes, then the failure is reported, naming plugin and hook.
        def _before(change: Change) -> None:
            self._hook(hook_errors, "reconciler_before_change", change=change)
            if before is not None:
                before(change)

        def _after(outcome: Outcome) -> None:
            self._hook(hook_errors, "reconciler_after_change", change=outcome.change, outcome=outcome)
            if after is not None:
                after(outcome)

        if plan.empty:
            report = ApplyReport(plan.stack, (), 0.0, dict(drivers.context.stats))
        else:
            from .apply import apply_plan  # only a pass with changes pays for the executor

            report = apply_plan(plan, desired, drivers, options=request.options, before=_before, after=_after)
        if request.destroy or any(c.kind is Kind.CONTAINER for c in plan.changes):
            self._prune_files(plan.stack, drivers)
        return replace(report, revision=desired.revision)

    @staticmethod
    def _prune_files(stack: str, drivers: Drivers) -> None:
        """Let runtime drivers remove the config and secret files no container mounts now.

        A converged pass changes no container and so costs nothing here. A
        failure is a warning: the containers did converge.
        """
        for runtime in drivers.all(Kind.CONTAINER):
            try:
                if isinstance(runtime, RuntimeDriver):
                    runtime.prune_files(stack)
            except ReconcilerError as exc:
                log.warning("stack %s: cannot remove config and secret files no container uses: %s", stack, exc)

    def destroy(self, stack: str, request: ApplyRequest = ApplyRequest(), **callbacks: Any) -> ApplyReport:
        """Remove everything the stack owns; volumes only with ``prune_volumes``."""
        desired = DesiredState(stack=stack)
        request = ApplyRequest(prune_volumes=request.prune_volumes, destroy=True, options=request.options,
                               lock_timeout=request.lock_timeout)
        return self.apply(desired, request, **callbacks)
