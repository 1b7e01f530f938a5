"""One stack on several engines: choose the targets, reconcile each in parallel, report each.

Why a module of its own: a fleet adds no new way to reconcile. Each target
gets a ``Reconciler`` of its own (its engine URL and client certificates),
sharing one plugin manager and one state store, so every target takes the
ordinary path: its own lock and record, keyed on its engine's identity. What
this module adds is *which* targets (``select_targets``, pure), *at once*
(one thread per target, each connecting on its own), and *a down target does
not block the others*: a target whose engine cannot be reached is retried with
exponential backoff (tenacity) within the run, then reported, while the others
converge. One that did not answer within the engine timeout (``EngineTimeout``)
is reported at once: retrying would multiply the wait, and a run is bounded by
the timeout.

Outcomes are data: each ``TargetOutcome`` keeps its report or plan and its
exception; the CLI renders them and turns ``FleetReport.ok`` into an exit code.
``FleetReconciler`` answers the same ``runner.StackRunner`` as ``Reconciler``,
so the CLI and the loop never ask which of the two they hold.
"""
from __future__ import annotations

import enum
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, TypeVar

from .addresses import AddressPool
from .errors import ReconcilerError, TemporaryError
from .model import DesiredState, Fleet, LiveState, Target
from .plan import Plan
from .reconcile import ApplyRequest, Reconciler
from .report import ApplyReport, Status
from .retry import RetryPolicy, call_with_retries
from .spec.fleet import matches

__all__ = ["FLEET_RETRY", "FleetReconciler", "FleetReport", "FleetStatus", "TargetOutcome", "TargetState",
           "select_targets"]

#: A target that cannot be reached is tried this often in one run, waiting base·2ⁿ seconds (at most cap) between.
FLEET_RETRY = RetryPolicy(attempts=3, base=1.0, cap=8.0)
T = TypeVar("T")


class TargetState(enum.StrEnum):
    """How one target's part of a fleet run ended."""

    CONVERGED = "converged"  # apply/destroy: every change ok; plan/status: nothing to change
    CHANGES = "changes"  # plan/status: changes pending (drift)
    FAILED = "failed"  # apply/destroy: a change failed
    UNREACHABLE = "unreachable"  # its engine did not answer, after the retries
    ERROR = "error"  # refused or failed otherwise (a lock held, a plan refused)


@dataclass(frozen=True)
class TargetOutcome:
    """One target's part of a fleet run."""

    target: Target
    state: TargetState
    #: apply/destroy: what the target's apply did.
    report: ApplyReport | None = None
    #: plan/status: the target's plan and the live state it was made against.
    plan: Plan | None = None
    live: LiveState | None = None
    #: Why it did not converge, for people.
    error: str = ""
    #: How many times the target was tried (more than one: its engine was unreachable at first).
    attempts: int = 1
    seconds: float = 0.0
    exception: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.state in (TargetState.CONVERGED, TargetState.CHANGES)


@dataclass(frozen=True)
class FleetReport:
    """Every selected target's outcome, in the order of the fleet's targets."""

    stack: str
    outcomes: tuple[TargetOutcome, ...]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every selected target ended well (converged, or for a plan: planned)."""
        return all(o.ok for o in self.outcomes)

    @property
    def errors(self) -> str:
        """One paragraph per target that did not end well, naming it."""
        return "\n".join(o.error or f"target {o.target.name}: {o.state.value}" for o in self.outcomes if not o.ok)

    def merged_report(self, revision: str = "") -> ApplyReport:
        """Every target's apply as one ``ApplyReport`` (for the loop's passes): outcomes and engine calls added up."""
        from collections import Counter

        reports = [o.report for o in self.outcomes if o.report is not None]
        stats: Counter = Counter()
        for report in reports:
            stats.update(report.stats)
        return ApplyReport(self.stack, tuple(x for r in reports for x in r.outcomes), self.seconds, dict(stats),
                           revision)

    def merged_plan(self) -> Plan:
        """Every target's plan as one (its changes, one after the other)."""
        plans = [o.plan for o in self.outcomes if o.plan is not None]
        return Plan(self.stack, tuple(c for p in plans for c in p.changes), tuple(n for p in plans for n in p.notes))


@dataclass(frozen=True)
class FleetStatus:
    """``FleetReconciler.status``'s answer: each target's plan, its last sync and its objects' rows."""

    report: FleetReport
    #: Per outcome (same order): the target's newest sync of the stack (a ``state.Sync``), or None.
    last_syncs: tuple[Any, ...]
    #: Per outcome: ``status.status_rows`` of its objects, or None when its engine did not answer.
    objects: tuple[list | None, ...]

    @property
    def ok(self) -> bool:
        """True when every target answered."""
        return self.report.ok


def select_targets(fleet: Fleet, stack: str) -> tuple[Target, ...]:
    """The targets ``stack`` runs on: those matching ``placement.labels``, at most ``count`` of them.

    A count picks by rendezvous hashing of (stack, target): the choice is
    stable from run to run, moves as few stacks as possible when targets come
    and go, and spreads different stacks over different targets. With
    ``spread``, the picks take the label's values in turn.
    """
    placement = fleet.placement
    chosen = [t for t in fleet.targets if matches(t.labels, placement.labels)]
    if placement.count is None or placement.count >= len(chosen):
        return tuple(chosen)
    ranked = sorted(chosen, key=lambda t: _weight(stack, t.name), reverse=True)
    if placement.spread:
        groups: dict[str, list[Target]] = {}
        for target in ranked:  # groups keep rank order, and are ordered by their best member
            groups.setdefault(target.labels.get(placement.spread, ""), []).append(target)
        ranked = [g[i] for i in range(max(map(len, groups.values()))) for g in groups.values() if i < len(g)]
    picked = {t.name for t in ranked[:placement.count]}
    return tuple(t for t in fleet.targets if t.name in picked)


def _weight(stack: str, target: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{stack}\0{target}".encode()).digest()[:8], "big")


class _NotConverged(TemporaryError):
    """An apply whose failures were all temporary (the engine went away mid-apply): worth another attempt."""

    def __init__(self, report: ApplyReport) -> None:
        super().__init__(next((o.error for o in report.outcomes if o.error), "changes failed"))
        self.report = report


class FleetReconciler:
    """One ``Reconciler`` per selected target, run side by side."""

    def __init__(self, fleet: Fleet, stack: str, *, plugin_modules: Iterable[str] = (), plugin_manager: Any = None,
                 state: Any = None, progress: Callable[[str, str], None] | None = None,
                 retry: RetryPolicy = FLEET_RETRY, only: Iterable[str] = (),
                 engine_timeout: float | None = None, address_pools: tuple[AddressPool, ...] | None = None) -> None:
        """``only`` narrows the selected targets to those names (``--target``); ``progress`` gets
        (``target/object``, line); ``engine_timeout`` and ``address_pools``: every target's (see ``Reconciler``)."""
        from .plugins import make_plugin_manager

        self.stack = stack
        self.retry = retry
        names = set(only)
        self.targets = tuple(t for t in select_targets(fleet, stack) if not names or t.name in names)
        pm = plugin_manager or make_plugin_manager(modules=plugin_modules)
        if state is None:
            from .state import StateStore

            state = StateStore.open()
        self.state = state
        self.reconcilers = {t.name: Reconciler(engine_url=t.engine, engine_tls=t.tls, plugin_manager=pm, state=state,
                                               progress=_prefixed(progress, t.name), engine_timeout=engine_timeout,
                                               address_pools=address_pools)
                            for t in self.targets}

    def apply(self, desired: DesiredState, request: ApplyRequest = ApplyRequest(), *,
              on_target: Callable[[TargetOutcome], None] | None = None, on_plan: Any = None, before: Any = None,
              after: Any = None) -> FleetReport:
        """Apply ``desired`` on every target at once; ``on_target`` gets each outcome as it is known.

        ``on_plan``, ``before`` and ``after`` are one engine's (``Reconciler.apply``): a fleet
        reports per target, so they are never called.
        """
        def one(reconciler: Reconciler) -> ApplyReport:
            report = reconciler.apply(desired, request)
            failed = [o for o in report.outcomes if o.status is Status.FAILED]
            if failed and (all(o.temporary for o in failed) or _gone(reconciler, desired.stack)):
                raise _NotConverged(report)
            return report

        return self._each(one, lambda target, report: TargetOutcome(
            target, TargetState.CONVERGED if report.ok else TargetState.FAILED, report=report), on_target)

    def destroy(self, stack: str, request: ApplyRequest = ApplyRequest(), *, runtime: str | None = None,
                on_target: Callable[[TargetOutcome], None] | None = None, on_plan: Any = None, before: Any = None,
                after: Any = None) -> FleetReport:
        """Remove what the stack owns on every target (``runtime``: see ``Reconciler.destroy``; the callbacks:
        see ``apply``)."""
        request = ApplyRequest(prune_volumes=request.prune_volumes, adopt=request.adopt, destroy=True,
                               options=request.options, lock_timeout=request.lock_timeout)
        desired = DesiredState(stack=stack) if runtime is None else DesiredState(stack=stack, runtime=runtime)
        return self.apply(desired, request, on_target=on_target)

    def plan(self, desired: DesiredState, *, prune_volumes: bool = False, adopt: bool = False,
             adopt_compose: bool = False, on_target: Callable[[TargetOutcome], None] | None = None) -> FleetReport:
        """Plan ``desired`` against every target's live state (reads only); ``adopt_compose`` on each."""
        def made(target: Target, result: tuple[Plan, LiveState]) -> TargetOutcome:
            plan, live = result
            state = TargetState.CONVERGED if plan.empty else TargetState.CHANGES
            return TargetOutcome(target, state, plan=plan, live=live)

        return self._each(lambda r: r.plan(desired, prune_volumes=prune_volumes, adopt=adopt,
                                           adopt_compose=adopt_compose), made, on_target)

    def status(self, desired: DesiredState, *, detailed: bool = False) -> FleetStatus:
        """Per target: its plan (its drift), its last sync and its objects' rows; reads only."""
        from .status import status_rows

        report = self.plan(desired)
        last = tuple(self.last_sync(o.target, self.reconcilers[o.target.name], live=o.plan is not None)
                     for o in report.outcomes)
        objects = tuple(status_rows(desired, o.live, o.plan) if o.plan is not None else None for o in report.outcomes)
        return FleetStatus(report, last, objects)

    def event_sources(self, stack: str, desired: DesiredState | None = None) -> list:
        """Every target's event sources for ``stack`` (see ``Reconciler.event_sources``)."""
        return [source for reconciler in self.reconcilers.values()
                for source in reconciler.event_sources(stack, desired)]

    def last_sync(self, target: Target, reconciler: Reconciler, live: bool) -> Any:
        """The target's newest sync of this stack (a ``state.Sync``), or None.

        Recorded under the engine's identity when it answered, else under its URL.
        """
        from .state import engine_key

        keys = [target.engine]
        if live:
            keys.insert(0, reconciler.engine_identity(reconciler.drivers(self.stack)))
        syncs = [s for key in dict.fromkeys(keys)
                 for s in self.state.syncs(stack=self.stack, engine=engine_key(key), limit=1)]
        return max(syncs, key=lambda s: s.started_at, default=None)

    def _each(self, run: Callable[[Reconciler], T], made: Callable[[Target, T], TargetOutcome],
              on_target: Callable[[TargetOutcome], None] | None) -> FleetReport:
        started = time.monotonic()

        def one(target: Target) -> TargetOutcome:
            outcome = self._attempts(target, run, made)
            if on_target is not None:
                on_target(outcome)
            return outcome

        if not self.targets:
            return FleetReport(self.stack, (), 0.0)
        with ThreadPoolExecutor(max_workers=len(self.targets), thread_name_prefix="target") as pool:
            outcomes = tuple(pool.map(one, self.targets))
        return FleetReport(self.stack, outcomes, time.monotonic() - started)

    def _attempts(self, target: Target, run: Callable[[Reconciler], T],
                  made: Callable[[Target, T], TargetOutcome]) -> TargetOutcome:
        """``run`` on the target's reconciler, retried with backoff while it fails for a temporary reason."""
        reconciler = self.reconcilers[target.name]
        started, attempts = time.monotonic(), 0

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            return run(reconciler)

        try:
            result = call_with_retries(attempt, self.retry, note=False)  # the outcome counts its attempts
        except _NotConverged as exc:
            return _replace(made(target, exc.report), attempts, started, error=str(exc), exception=exc)
        except TemporaryError as exc:
            return TargetOutcome(target, TargetState.UNREACHABLE, error=f"target {target.name} ({target.engine}): "
                                 f"{exc}", attempts=attempts, seconds=time.monotonic() - started, exception=exc)
        except ReconcilerError as exc:
            return TargetOutcome(target, TargetState.ERROR, error=f"target {target.name}: {exc}", attempts=attempts,
                                 seconds=time.monotonic() - started, exception=exc)
        return _replace(made(target, result), attempts, started)


def _gone(reconciler: Reconciler, stack: str) -> bool:
    """Whether the target's engine stopped answering: then its failed changes are its being down
    (a container it stopped while we waited for it), worth another attempt, not the spec's fault."""
    try:
        reconciler.engine_identity(reconciler.drivers(stack))
    except TemporaryError:
        return True
    return False


def _replace(outcome: TargetOutcome, attempts: int, started: float, **changes: Any) -> TargetOutcome:
    from dataclasses import replace

    return replace(outcome, attempts=attempts, seconds=time.monotonic() - started, **changes)


def _prefixed(progress: Callable[[str, str], None] | None, target: str) -> Callable[[str, str], None] | None:
    if progress is None:
        return None
    return lambda name, line: progress(f"{target}/{name}", line)
