"""Applying a plan: steps in dependency order, independent ones in parallel.

Each outcome is data (``Outcome``), so one failure never stops the run: a
permanent failure fails its change and skips what depends on it, the rest
goes on. Temporary failures are retried with exponential backoff, bounded.

Steps run in two lanes (``graph.Lane``), each a thread pool with its own
bound: engine work (``ApplyOptions.workers``) and waiting (``ApplyOptions.waiters``:
container stops and removals, dependency conditions). Which lane a step
runs in changes nothing about when it may start: the schedule alone decides that.
"""
from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from typing import Callable, Iterator

from .drivers import Drivers, NetworkDriver, RegistryDriver, RuntimeDriver, StorageDriver
from .errors import PermanentError, ReconcilerError
from .graph import Lane, Phase, Step, build_steps, dependents_of
from .labels import object_labels
from .model import DesiredState, Kind, LiveObject
from .plan import Action, Change, Plan
from .report import ApplyOptions, ApplyReport, Outcome, Status
from .retry import call_with_retries

__all__ = ["apply_plan", "object_labels"]


class _Runner:
    """Executes single steps against the drivers, with retries."""

    def __init__(self, plan: Plan, desired: DesiredState, drivers: Drivers, options: ApplyOptions) -> None:
        self.stack = plan.stack
        self.desired = desired
        self.drivers = drivers
        self.options = options

    def run(self, step: Step) -> None:
        if step.change.error:
            raise PermanentError(step.change.error)
        call_with_retries(lambda: self._dispatch(step), self.options.retry)

    def _dispatch(self, step: Step) -> None:
        change = step.change
        handler: Callable[[Change], None] = {
            (Kind.IMAGE, Phase.UP): self._image_up,
            (Kind.NETWORK, Phase.UP): self._object_up,
            (Kind.VOLUME, Phase.UP): self._object_up,
            (Kind.CONTAINER, Phase.WAIT): self._container_wait,
            (Kind.CONTAINER, Phase.UP): self._container_up,
            (Kind.NETWORK, Phase.DOWN): self._object_down,
            (Kind.VOLUME, Phase.DOWN): self._object_down,
            (Kind.CONTAINER, Phase.DOWN): self._object_down,
        }[(change.kind, step.phase)]
        handler(change)

    def _driver(self, change: Change, *, removing: bool = False):
        return self.drivers.get(change.kind, (change.live_driver if removing else "") or change.driver)

    def _spec(self, change: Change):
        return self.desired.of(change.kind)[change.name]

    def _image_up(self, change: Change) -> None:
        spec = self._spec(change)
        driver = self.drivers.get(Kind.IMAGE, spec.driver)
        assert isinstance(driver, RegistryDriver)
        if spec.is_build:
            if change.renews:  # not a push-only change of an up-to-date build
                driver.build(spec, object_labels(self.stack, Kind.IMAGE, spec))
            if spec.push:
                driver.push(spec)
        else:
            driver.pull(spec)

    def _object_up(self, change: Change) -> None:
        spec = self._spec(change)
        driver = self._driver(change)
        assert isinstance(driver, (NetworkDriver, StorageDriver))
        driver.create(spec, object_labels(self.stack, change.kind, spec))

    def _object_down(self, change: Change) -> None:
        # The plan knows the object by name and id; "running" makes a container
        # stop gracefully first, which is harmless if it already stopped.
        live = LiveObject(kind=change.kind, name=change.name, id=change.live_id or change.name,
                          state="running" if change.kind is Kind.CONTAINER else "")
        self._driver(change, removing=True).delete(live)

    def _container_wait(self, change: Change) -> None:
        runtime = self._driver(change)
        for name, condition in change.waits:
            runtime.wait(name, condition, timeout=self.options.wait_timeout)

    def _container_up(self, change: Change) -> None:
        runtime = self._driver(change)
        assert isinstance(runtime, RuntimeDriver)
        if change.action is not Action.START:
            spec = self._spec(change)
            runtime.create(spec, object_labels(self.stack, Kind.CONTAINER, spec))
        runtime.start(change.name)


def apply_plan(
    plan: Plan,
    desired: DesiredState,
    drivers: Drivers,
    *,
    options: ApplyOptions = ApplyOptions(),
    before: Callable[[Change], None] | None = None,
    after: Callable[[Outcome], None] | None = None,
) -> ApplyReport:
    """Run every change of ``plan``; return what happened to each.

    ``before`` and ``after`` are called once per change (from this thread),
    for progress output and lifecycle hooks.
    """
    started = time.monotonic()
    schedule = _Schedule(build_steps(plan.changes))
    runner = _Runner(plan, desired, drivers, options)
    with _lanes(options) as pools:
        running: dict[Future, Step] = {}
        while True:
            for step in schedule.ready():
                if schedule.begin(step) and before is not None:
                    before(step.change)
                running[pools[step.lane].submit(runner.run, step)] = step
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                step = running.pop(future)
                schedule.record(step, future.exception())
            for outcome in schedule.finished_changes():
                if after is not None:
                    after(outcome)
    outcomes = tuple(schedule.outcome(change) for change in plan.changes)
    return ApplyReport(plan.stack, outcomes, time.monotonic() - started, dict(drivers.context.stats))


@contextmanager
def _lanes(options: ApplyOptions) -> Iterator[dict[Lane, ThreadPoolExecutor]]:
    """One thread pool per lane; threads start only as steps arrive, so a large bound costs nothing idle."""
    bounds = {Lane.WORK: options.workers, Lane.WAIT: options.waiters}
    with ExitStack() as stack:
        yield {lane: stack.enter_context(ThreadPoolExecutor(max(1, bound), thread_name_prefix=f"apply-{lane.value}"))
               for lane, bound in bounds.items()}


class _Schedule:
    """Which steps may run, which failed, and which changes are complete."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps
        self.pending = {s.id: s for s in steps}
        self.result: dict[str, Status] = {}
        self.errors: dict[str, str] = {}
        self.exceptions: dict[str, BaseException] = {}
        self.started: dict[str, float] = {}
        self.ended: dict[str, float] = {}
        self.reported: set[str] = set()
        self.phases: dict[str, list[str]] = {}
        for step in steps:
            self.phases.setdefault(step.change.id, []).append(step.id)

    def ready(self) -> list[Step]:
        out = [s for s in self.pending.values() if all(self.result.get(dep) is Status.OK for dep in s.after)]
        for step in out:
            del self.pending[step.id]
        return out

    def begin(self, step: Step) -> bool:
        """Note the change's start; true the first time (its ``before`` moment)."""
        if step.change.id in self.started:
            return False
        self.started[step.change.id] = time.monotonic()
        return True

    def record(self, step: Step, error: BaseException | None) -> None:
        if error is None:
            self.result[step.id] = Status.OK
            return
        self.result[step.id] = Status.FAILED
        self.errors[step.change.id] = _message(error)
        self.exceptions[step.change.id] = error
        for sid in dependents_of(self.steps, step.id):
            skipped = self.pending.pop(sid, None)
            if skipped is not None:
                self.result[sid] = Status.SKIPPED
                self.errors.setdefault(
                    skipped.change.id, f"skipped: {step.change.kind.value} {step.change.name} failed"
                )

    def finished_changes(self) -> list[Outcome]:
        out = []
        for change_id, step_ids in self.phases.items():
            if change_id not in self.reported and all(sid in self.result for sid in step_ids):
                self.reported.add(change_id)
                self.ended[change_id] = time.monotonic()
                change = next(s.change for s in self.steps if s.id == step_ids[0])
                out.append(self.outcome(change))
        return out

    def outcome(self, change: Change) -> Outcome:
        results = [self.result.get(sid, Status.SKIPPED) for sid in self.phases.get(change.id, [])]
        final = next((s for s in (Status.FAILED, Status.SKIPPED) if s in results), Status.OK)
        start = self.started.get(change.id)
        seconds = (self.ended.get(change.id, start or 0.0) - start) if start else 0.0
        return Outcome(change, final, self.errors.get(change.id, ""), seconds, self.exceptions.get(change.id))


def _message(error: BaseException) -> str:
    if isinstance(error, ReconcilerError):
        return str(error)
    return f"unexpected {type(error).__name__}: {error}"
