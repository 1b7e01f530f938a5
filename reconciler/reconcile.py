"""The one path every entry point takes: load → validate → model → observe → plan → apply.

The CLI calls these functions, and so will ``watch`` and ``daemon``: the loop
only decides *when* to reconcile, never *how*.

Every apply reads the reconciler's own record (``reconciler.state``) for the
planner, writes into it what it creates, adopts and removes, and appends the
outcome to the sync history.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple

from .addresses import AddressPool, pools_from_env
from .drivers import DriverContext, DriverRegistry, Drivers, RuntimeDriver
from .errors import PlanError, PluginError, ReconcilerError, StateError
from .lock import stack_lock
from .model import DesiredState, Kind, LiveState, Record, TLSFiles
from .plan import Change, Operation, Plan
from .planner import plan_changes
from .releasedata import finish_restores
from .report import ApplyOptions, ApplyReport, Outcome
from .plugins import call_by_plugin, call_hook, load_driver_registry, make_plugin_manager
from .refusal import refuse
from .retry import READ_RETRY, call_with_retries
from .settled import SettledPasses
from .spec import load_desired
from .stackbook import BookRecorder, QuietPasses
from .values import value

__all__ = ["ApplyRequest", "Reconciler", "StackPlan", "StackStatus", "load_desired"]

log = logging.getLogger(__name__)


@value
class ApplyRequest:
    """What the user allowed for this apply."""

    prune_volumes: bool = False
    #: Take over objects whose labels claim the stack but which the record does not list,
    #: and let ``prune_volumes``/``recreate_volumes`` delete data the reconciler did not create.
    adopt: bool = False
    #: First take over the running Compose project of the stack's name (``reconcile adopt``,
    #: ``apply --adopt-compose``, a daemon source's ``adopt_compose``; see ``reconciler.adoption``).
    adopt_compose: bool = False
    recreate_networks: bool = False
    recreate_volumes: bool = False
    destroy: bool = False
    allow_empty: bool = False  # an empty spec may delete what the stack owns (a daemon source's allow_empty)
    options: ApplyOptions = field(default_factory=ApplyOptions)
    lock_timeout: float = 10.0
    saved: Any = None  # a planfile.SavedPlan: apply exactly that plan or nothing
    #: A pass of a resync sweep (a loop's, monotonic): on a shared engine its lists are the sweep's, none older.
    snapshot_at: float | None = None
    trigger: str = "manual"  # what started it, for the history: a loop's Trigger value, or manual (the CLI)


class StackPlan(NamedTuple):
    """``Reconciler.plan``'s answer: the plan, and the live state it was made against."""

    plan: Plan
    live: LiveState


@value
class StackStatus:
    """``Reconciler.status``'s answer: every object of the stack, desired against live (``status.status_rows``)."""

    stack: str
    rows: tuple[dict[str, Any], ...]
    converged: bool


class Reconciler:
    """Plugins, drivers and one engine: observe, plan and apply stacks.

    It answers ``runner.StackRunner`` (``plan``, ``apply``, ``destroy``, ``status``,
    ``event_sources``), as ``fleet.FleetReconciler`` does for a stack on several engines.
    """

    def __init__(self, *, engine_url: str | None = None, plugin_modules: Iterable[str] = (), plugin_manager: Any = None,
                 progress: Callable[[str, str], None] | None = None, state: Any = None,
                 engine_tls: TLSFiles | None = None, strict_plugins: bool | None = None,
                 engine_timeout: float | None = None, address_pools: tuple[AddressPool, ...] | None = None,
                 shared_engine: bool = False, state_dir: Path | None = None) -> None:
        """``progress`` receives (object name, line) as drivers report progress (see ``DriverContext``).

        ``strict_plugins`` (default: ``RECONCILER_STRICT_PLUGINS``) makes a
        plugin that fails to load an error rather than a skipped plugin.

        ``state`` is the ``StateStore`` to keep the record in; by default the
        one in the state directory, opened on first use. ``engine_tls``: client
        certificates for a ``tcp://`` engine (a fleet target's ``tls:``).
        ``engine_timeout``: seconds the engine may take to answer (``--engine-timeout``;
        None: ``RECONCILER_ENGINE_TIMEOUT``, else 10); longer calls keep their own limits.
        ``address_pools``: where bridge networks without a subnet get theirs (None:
        ``RECONCILER_DEFAULT_ADDRESS_POOLS``, else ``addresses.DEFAULT_ADDRESS_POOLS``; (): the engine's).
        ``shared_engine`` (the daemon): every stack and pass shares one engine connection and lists.
        ``state_dir``: where drivers keep files (``DriverContext.state_dir``; None: the state store's folder).
        """
        self.engine_url = engine_url
        self.engine_tls = engine_tls
        self.engine_timeout = engine_timeout
        self.address_pools = address_pools if address_pools is not None else pools_from_env()
        self.progress = progress
        self.pm = plugin_manager or make_plugin_manager(modules=plugin_modules, strict=strict_plugins)
        self.registry: DriverRegistry = load_driver_registry(self.pm)
        self._state = state
        self._state_dir = state_dir
        self._engine_shared: dict | None = {} if shared_engine else None  # DriverContext.engine_shared
        self._observers = ThreadPoolExecutor(8, thread_name_prefix="observe") if shared_engine else None
        self._quiet = QuietPasses()  # the resyncs that add no history row
        self._settled = SettledPasses()  # the resyncs that need no plan

    @property
    def state(self):
        """The ``StateStore`` holding the reconciler's record (opened on first use)."""
        if self._state is None:
            from .state import StateStore

            self._state = StateStore.open()
        return self._state

    def suspended(self, stack: str) -> bool:
        """Whether ``stack`` is suspended (``reconcile suspend``): the loop plans it but applies nothing."""
        return stack in self.state.suspended()

    def book(self, stack: str, engine: str | None = None):
        """The record of ``stack`` on ``engine`` (see ``engine_identity``; default: this reconciler's URL).

        A ``state.StackBook``: records are kept per engine, by its identity when
        the runtime driver tells it (the same for every URL that reaches it).
        """
        from .state import engine_key

        return self.state.stack(engine_key(engine or self.engine_url), stack)

    def drivers(self, stack: str) -> Drivers:
        path = str(getattr(self._state, "path", None) or ":memory:")  # a store opened later: the default folder
        state_dir = self._state_dir or (Path(path).parent if path != ":memory:" else None)
        return self.registry.instantiate(DriverContext(stack=stack, engine_url=self.engine_url, progress=self.progress,
                                                       engine_tls=self.engine_tls, engine_timeout=self.engine_timeout,
                                                       address_pools=self.address_pools, state_dir=state_dir,
                                                       engine_shared=self._engine_shared))

    def driver_names(self) -> dict[str, list[str]]:
        """The driver names plugins provide, by spec section (for ``load_desired``)."""
        return {kind.section: self.registry.names(kind) for kind in Kind}

    def driver_catalog(self) -> dict[str, dict[str, dict[str, Any]]]:
        """What validation needs to know of each driver, by spec section and name (for ``load_desired``).

        Each driver's facts: ``"conflict"`` (why the name cannot be used: two plugins registered it), ``"options"``
        (its options' JSON Schema), ``"schedules_replicas"`` and ``"takes_snapshots"`` (present when true).
        """
        catalog: dict[str, dict[str, dict[str, Any]]] = {}
        conflicts = self.registry.conflicts()
        for kind in Kind:
            catalog[kind.section] = {}
            for name in self.registry.names(kind):
                facts: dict[str, Any] = {}
                if (kind, name) in conflicts:
                    facts["conflict"] = conflicts[(kind, name)] + ": disable one of them (RECONCILER_DISABLED_PLUGINS)"
                schema = self.registry.options_schema(kind, name)
                if schema is not None:
                    facts["options"] = schema
                if kind is Kind.CONTAINER and self.registry.schedules_replicas(name):
                    facts["schedules_replicas"] = True
                if kind is Kind.VOLUME and self.registry.takes_snapshots(name):
                    facts["takes_snapshots"] = True
                catalog[kind.section][name] = facts
        return catalog

    def observe(self, desired: DesiredState, drivers: Drivers, as_of: float | None = None) -> LiveState:
        """The live state, retrying while the engine is temporarily unreachable; ``as_of``: see ``observe``."""
        from .observe import observe

        return call_with_retries(lambda: observe(desired, drivers, as_of=as_of, pool=self._observers), READ_RETRY)

    def engine_identity(self, drivers: Drivers, runtime: str | None = None) -> str | None:
        """What the stack's lock and record are keyed on: the engine's identity, else its URL (None: the default engine).

        ``runtime`` is the stack's (``DesiredState.runtime``): its driver says what the identity is.
        Retried like observing: an engine that is restarting answers a moment later.
        """
        def ask() -> str | None:
            drivers.context.pass_cache.clear()  # each attempt is a pass of its own: nothing remembered answers it
            return drivers.engine_id(runtime)

        return call_with_retries(ask, READ_RETRY) or self.engine_url

    def plan(self, desired: DesiredState, *, prune_volumes: bool = False, adopt: bool = False,
             adopt_compose: bool = False, on_target: Callable[[Any], None] | None = None) -> StackPlan:
        """The plan against fresh live state and the record (read only), and that live state.

        ``adopt_compose``: show the takeover of the Compose project of the stack's name too (``adopt --dry-run``).
        ``on_target`` is a fleet's (``FleetReconciler.plan``): one engine is no fleet's target, it is never called.
        A plan that cannot be applied at all (``Plan.refusals``: an external object missing) is a PlanError.
        """
        planned = self._planned(desired, prune_volumes=prune_volumes, adopt=adopt, adopt_compose=adopt_compose)
        if planned.plan.refusals:
            raise PlanError("\n".join(planned.plan.refusals))
        return planned

    def _planned(self, desired: DesiredState, *, prune_volumes: bool = False, adopt: bool = False,
                 adopt_compose: bool = False, drivers: Drivers | None = None) -> StackPlan:
        """``plan``'s answer, refusals included rather than raised (``status`` shows a missing external object)."""
        drivers = drivers or self.drivers(desired.stack)
        engine = self.engine_identity(drivers, desired.runtime)  # the connection observe makes anyway
        book = self.book(desired.stack, engine)
        live = self.observe(desired, drivers)
        record = self._record(book, drivers, engine, live)
        live = self._claimed(live, record, drivers)
        plan, _ = self._plan(desired, drivers, live, record, prune_volumes=prune_volumes, adopt=adopt,
                             adopt_compose=adopt_compose)
        return StackPlan(plan, live)

    def _plan(self, desired: DesiredState, drivers: Drivers, live: LiveState, record: Record, *,
              prune_volumes: bool, adopt: bool, adopt_compose: bool) -> tuple[Plan, Any]:
        """The plan, after the takeover of the stack's Compose project when asked (then also the ``Adoption``)."""
        if not adopt_compose:
            return plan_changes(desired, live, prune_volumes=prune_volumes, record=record, adopt=adopt), None
        from .takeover import plan_takeover

        adoption = plan_takeover(desired, drivers, live, record)
        live, record = adoption.view(live, record)
        plan = plan_changes(desired, live, prune_volumes=prune_volumes, record=record, adopt=adopt)
        return replace(plan, takeovers=adoption.takeovers, left_alone=adoption.left_alone), adoption

    def status(self, desired: DesiredState, *, detailed: bool = False) -> StackStatus:
        """Every object desired against live, health, drift (reads only); ``detailed``: images' layers too."""
        from .imagelayers import image_layers
        from .observe import writable_sizes
        from .status import status_rows

        drivers = self.drivers(desired.stack)
        plan, live = self._planned(desired, drivers=drivers)  # a missing external object is shown as missing
        layers = image_layers(drivers, desired, live) if detailed else None
        rows = status_rows(desired, live, plan, detailed=True, sizes=writable_sizes(desired, drivers), layers=layers)
        return StackStatus(desired.stack, tuple(rows), converged=plan.empty and not plan.refusals)

    def event_sources(self, stack: str, desired: DesiredState | None = None) -> list:
        """The drivers that report changes to ``stack``'s objects as they happen (``ObjectDriver.events``);
        with ``desired``, only those its objects use."""
        return list(self.drivers(stack).event_sources(desired))

    def option_problems(self, desired: DesiredState) -> list[tuple[str, str, str]]:
        """(section, key, message) for every problem the drivers' registered checks find (``check=``).

        Needs no engine and makes no driver: ``reconcile validate`` runs it, and
        ``apply`` refuses a spec it faults before any change.
        """
        problems = []
        for kind in Kind:
            for spec in desired.section(kind).values():
                problems += [(kind.section, spec.key, p) for p in self.registry.spec_problems(kind, spec.driver, spec)]
        return list(dict.fromkeys(problems))

    def apply(
        self,
        desired: DesiredState,
        request: ApplyRequest = ApplyRequest(),
        *,
        on_plan: Callable[[Plan], None] | None = None,
        before: Callable[[Change], None] | None = None,
        after: Callable[[Outcome], None] | None = None,
        on_target: Callable[[Any], None] | None = None,
    ) -> ApplyReport:
        """Lock the stack, plan against fresh live state, refuse what is not allowed, apply.

        ``reconciler_apply_finished`` runs after the lock is released: a slow
        notification must not hold up the next writer. ``on_target`` is a
        fleet's (``FleetReconciler.apply``): it is never called here.
        """
        hook_errors: list[str] = []
        started, plan, book, report, observed = time.monotonic(), None, None, None, None
        drivers = self.drivers(desired.stack)
        if self._settled.eligible(desired, request):
            report = self._settled_pass(desired, request, drivers, started)
            if report is not None:
                return report
        try:
            engine = self.engine_identity(drivers, desired.runtime)
            # the pass's one book, opened once the engine says who it is: what it writes that is not
            # write-ahead goes with the sync row (``_remember``), one transaction for a converged pass
            book = self.book(desired.stack, engine).for_pass()
            with stack_lock(desired.stack, engine, timeout=request.lock_timeout):
                live = observed = self.observe(desired, drivers, request.snapshot_at)  # a sweep shares its lists
                recovered = finish_restores(book, drivers, live)  # a restore a killed pass left under way, finished
                record = self._record(book, drivers, engine, live, settle=True)
                live = self._claimed(live, record, drivers)
                plan, adoption = self._plan(desired, drivers, live, record, prune_volumes=request.prune_volumes,
                                            adopt=request.adopt, adopt_compose=request.adopt_compose)
                self._refuse(desired, plan, request)
                if adoption is not None:
                    from .takeover import write_takeover

                    write_takeover(adoption, drivers, book)
                book.adopted(plan.adopted)
                book.release_external(desired, record)
                if on_plan is not None:
                    on_plan(plan)
                report = self._run(plan, desired, drivers, request, before, after, hook_errors, book, recovered)
        except ReconcilerError as exc:
            self._settled.forget(desired.stack)
            self._remember(book or self.book(desired.stack), desired, plan,
                           "refused" if isinstance(exc, PlanError) else "error", started, request.trigger)
            raise
        self._remember(book, desired, plan, "converged" if report.ok else "failed", started, request.trigger)
        self._settled.remember(desired, request, observed, plan, report, self.state.version(desired.stack))
        self._hook(hook_errors, "reconciler_apply_finished", report=report, operation=_operation(request))
        if hook_errors:
            raise PluginError("\n".join(dict.fromkeys(hook_errors)))
        return report

    def _settled_pass(self, desired: DesiredState, request: ApplyRequest, drivers: Drivers,
                      started: float) -> ApplyReport | None:
        """A resync whose stack is as its last empty plan left it (``settled``): observed, and done; else None."""
        live = self.observe(desired, drivers, request.snapshot_at)
        if not self._settled.settled(desired, request, live, self.state.version(desired.stack)):
            return None
        report = ApplyReport(desired.stack, (), time.monotonic() - started, dict(drivers.context.stats),
                             revision=desired.revision, trigger=request.trigger, settled=True)
        errors: list[str] = []
        self._hook(errors, "reconciler_apply_finished", report=report, operation=_operation(request))
        if errors:
            raise PluginError("\n".join(dict.fromkeys(errors)))
        return report

    @staticmethod
    def _claimed(live: LiveState, record: Record, drivers: Drivers) -> LiveState:
        """``live`` with the objects the record claims that observe did not list (adopted ones the spec left)."""
        if not record.claims:
            return live
        from .takeover import with_claimed

        return with_claimed(live, record, drivers)

    def _record(self, book, drivers: Drivers, engine: str | None, live: LiveState, *, settle: bool = False) -> Record:
        """The stack's record under its identity, and what its records under the engine's other identities list.

        A swarm manager has two: its own (container stacks) and its swarm's (swarm stacks).
        A stack that changed runtime is recorded under the other one: that record still
        vouches for what the stack leaves behind (the services of a stack that left the
        swarm runtime), so those are removed, not reported as someone else's.
        """
        record = book.record(live, settle=settle)
        for other in sorted(drivers.engine_ids() - {engine}):
            record = record.union(self.book(book.stack, other).record(live))
        return record

    def _remember(self, book, desired: DesiredState, plan: Plan | None, result: str, started: float,
                  trigger: str) -> None:
        """Append the pass to the sync history, with the record writes the pass held back (one transaction);
        a history that cannot be written is logged, not fatal."""
        from .state import Sync, SyncResult

        counts = plan.counts() if plan is not None else {}
        summary = ", ".join(f"{action} {n}" for action, n in counts.items() if n) or "no changes"
        quiet = plan is not None and plan.empty and not plan.refusals and result == "converged"
        try:
            book.synced(Sync(book.engine, book.stack, desired.revision, summary, SyncResult(result),
                             time.monotonic() - started, trigger=trigger),
                        history=not self._quiet.repeated(book, desired.revision, quiet=quiet, trigger=trigger))
        except StateError as exc:
            log.warning("the sync history was not written: %s", exc)

    def _hook(self, errors: list[str], name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook; a failure is collected (naming plugin and hook), not raised."""
        try:
            call_hook(self.pm, name, **kwargs)
        except PluginError as exc:
            errors.append(str(exc))

    def _refuse(self, desired: DesiredState, plan: Plan, request: ApplyRequest) -> None:
        refuse(desired, plan, request, invalid=lambda: self._invalid_options(desired),
               vetoes=lambda: self.vetoes(plan, desired, operation=_operation(request)))

    def _invalid_options(self, desired: DesiredState) -> list[str]:
        # What ``validate`` shows at the entry's options (a runtime's: at the container), for a spec
        # that reached apply without it (built by hand, or read before a plugin was loaded).
        return [f"{section}.{key}: {p}" if section == Kind.CONTAINER.section else f"{section}.{key}.options: {p}"
                for section, key, p in self.option_problems(desired)]

    def vetoes(self, plan: Plan, desired: DesiredState, *, operation: Operation = Operation.APPLY) -> list[str]:
        """Every reason plugins give to refuse ``plan``, one line each, prefixed with the plugin."""
        results = call_by_plugin(self.pm, "reconciler_plan_ready", plan=plan, desired=desired, operation=operation)
        return [f"[{name}] {line}" for name, reason in results if reason for line in str(reason).splitlines()]

    def _run(self, plan, desired, drivers, request, before, after, hook_errors: list[str], book, notes) -> ApplyReport:
        # A plugin failing in a lifecycle hook must not leave the engine half-changed:
        # the apply finishes, then the failure is reported, naming plugin and hook.
        def _before(change: Change) -> None:
            self._hook(hook_errors, "reconciler_before_change", change=change, operation=_operation(request))
            if before is not None:
                before(change)

        def _after(outcome: Outcome) -> None:
            self._hook(hook_errors, "reconciler_after_change", change=outcome.change, outcome=outcome,
                       operation=_operation(request))
            if after is not None:
                after(outcome)

        if plan.empty:
            report = ApplyReport(plan.stack, (), 0.0, dict(drivers.context.stats))
        else:
            from .apply import apply_plan  # only a pass with changes pays for the executor

            report = apply_plan(plan, desired, drivers, options=request.options, before=_before, after=_after,
                                recorder=BookRecorder(book))
        if request.destroy or any(c.kind is Kind.CONTAINER for c in plan.changes):
            self._prune_files(plan.stack, drivers)
        return replace(report, revision=desired.revision, drifted=plan.drifted, notes=notes, trigger=request.trigger)

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

    def destroy(self, stack: str, request: ApplyRequest = ApplyRequest(), *, runtime: str | None = None,
                **callbacks: Any) -> ApplyReport:
        """Remove everything the stack owns; volumes only with ``prune_volumes``.

        ``runtime``: the stack's (its spec's ``runtime:``), whose engine identity keys the record
        that vouches for what is deleted (default: the container runtime's).
        """
        desired = DesiredState(stack=stack) if runtime is None else DesiredState(stack=stack, runtime=runtime)
        request = ApplyRequest(prune_volumes=request.prune_volumes, adopt=request.adopt, destroy=True,
                               options=request.options, lock_timeout=request.lock_timeout, trigger=request.trigger)
        return self.apply(desired, request, **callbacks)


def _operation(request: ApplyRequest) -> Operation:
    return Operation.DESTROY if request.destroy else Operation.APPLY
