"""Applying a plan: steps in dependency order, independent ones in parallel.

Each outcome is data (``Outcome``), so one failure never stops the run: a
permanent failure fails its change and skips what depends on it, the rest
goes on. Temporary failures are retried with exponential backoff, bounded.

What the executor creates and removes it reports to a ``Recorder`` as it
happens (the reconciler's record, ``reconciler.state``), so a process that
dies mid-apply leaves a record the next pass can finish.

Steps run in two lanes (``graph.Lane``), each a thread pool with its own
bound: engine work (``ApplyOptions.workers``) and waiting (``ApplyOptions.waiters``:
container stops and removals, dependency conditions). Which lane a step
runs in changes nothing about when it may start: the schedule alone decides that.
"""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Iterator

from .drivers import Drivers, NetworkDriver, RegistryDriver, RuntimeDriver, StorageDriver
from .errors import PermanentError, PluginError, ReconcilerError, RecreateRequired
from .graph import Lane, Phase, Step, build_steps, dependents_of
from .labels import VOLUME_ID, object_labels
from .model import DesiredState, Kind, LiveObject
from .plan import Action, Change, Plan
from .releasedata import ReleaseData
from .report import ApplyOptions, ApplyReport, Outcome, Status
from .retry import call_with_retries
from .rollout import roll

__all__ = ["Recorder", "apply_plan", "object_labels"]


class Recorder:
    """Told what the executor creates and removes, as it happens; this base forgets it all.

    The reconciler passes one that writes its record (``reconciler.state``).
    Methods are called from worker threads.
    """

    #: The stack's record (a ``StackBook``), where a release's snapshots are written; None: not recorded.
    book: Any = None

    def creating(self, change: Change, config_hash: str) -> None:
        """A create of ``change`` is about to be asked of its driver."""

    def created(self, change: Change, config_hash: str, object_id: str) -> None:
        """The driver created ``change``'s object, ``object_id``."""

    def removed(self, change: Change) -> None:
        """The driver removed ``change``'s live object (``change.live_id``)."""

    def kept(self, change: Change, image_id: str, same_as: str) -> None:
        """``change``'s container was kept: the image it runs, ``image_id``, holds what ``same_as`` (built) holds."""


class _Runner:
    """Executes single steps against the drivers, with retries."""

    def __init__(self, plan: Plan, desired: DesiredState, drivers: Drivers, options: ApplyOptions,
                 recorder: Recorder) -> None:
        self.stack = plan.stack
        self.desired = desired
        self.drivers = drivers
        self.options = options
        self.recorder = recorder
        # Decided once per change, not per attempt: a retried create finds the volume it made.
        self._volume_ids = {c.id: uuid.uuid4().hex for c in plan.changes if c.kind is Kind.VOLUME}
        self._recreating: set[str] = set()  # START changes whose old container is gone: a retry creates
        self.notes: dict[str, str] = {}  # change id → what it did instead of what was planned
        self._data: dict[str, ReleaseData | None] = {}  # change id → the volumes its release snapshots
        # Rolls run in the wait lane; their creates and starts take one of these slots.
        self._work_slots = threading.BoundedSemaphore(max(1, options.workers))

    def run(self, step: Step) -> None:
        if step.change.error:
            raise PermanentError(step.change.error)
        if step.phase is Phase.ROLL:
            self._dispatch(step)  # a roll retries each of its calls: retrying it whole would redo renames
        elif step.lane is Lane.WORK:
            with self._work_slots:  # shared with the engine work that rolls do from the wait lane
                call_with_retries(lambda: self._dispatch(step), self.options.retry)
        else:
            call_with_retries(lambda: self._dispatch(step), self.options.retry)

    def _dispatch(self, step: Step) -> None:
        change = step.change
        handler: Callable[[Change], None] = {
            (Kind.IMAGE, Phase.UP): self._image_up,
            (Kind.NETWORK, Phase.UP): self._object_up,
            (Kind.VOLUME, Phase.UP): self._object_up,
            (Kind.CONTAINER, Phase.WAIT): self._container_wait,
            (Kind.CONTAINER, Phase.UP): self._container_up,
            (Kind.CONTAINER, Phase.ROLL): self._container_roll,
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
        labels = object_labels(self.stack, change.kind, spec)
        if change.action is Action.UPDATE:  # options the driver changes in place: same object, same id
            if change.kind is Kind.VOLUME:
                labels[VOLUME_ID] = change.live_id
            live = LiveObject(kind=change.kind, name=change.name, id=change.live_id or change.name)
            self._create(change, spec.config_hash, lambda: driver.update(spec, live, labels) or change.live_id)
            return
        if change.kind is Kind.VOLUME:
            labels[VOLUME_ID] = self._volume_ids[change.id]
        self._create(change, spec.config_hash, lambda: driver.create(spec, labels))

    def _create(self, change: Change, config_hash: str, create: Callable[[], str]) -> None:
        self.recorder.creating(change, config_hash)
        object_id = create()
        if not isinstance(object_id, str) or not object_id:
            # The object may exist: the record's pending row (``creating``) is matched on the next observe.
            raise PluginError(f"the {change.kind.role} driver {change.driver!r} returned {object_id!r} "
                              f"for {change.name}, not the new object's id (the driver contract's create)")
        self.recorder.created(change, config_hash, object_id)

    def _object_down(self, change: Change, *, state: str = "running") -> None:
        if change.kind is Kind.CONTAINER and change.action is Action.REPLACE and change.rollout is None:
            self._snapshot_replaced(change)
        # The plan knows the object by name and id; "running" makes a container
        # stop gracefully first, which is harmless if it already stopped.
        live = LiveObject(kind=change.kind, name=change.name, id=change.live_id or change.name,
                          state=state if change.kind is Kind.CONTAINER else "")
        self._driver(change, removing=True).delete(live)
        self.recorder.removed(change)

    def _container_wait(self, change: Change) -> None:
        runtime = self._driver(change)
        for name, condition in change.waits:
            runtime.wait(name, condition, timeout=self.options.wait_timeout)

    def _container_up(self, change: Change) -> None:
        runtime = self._driver(change)
        assert isinstance(runtime, RuntimeDriver)
        if change.action is Action.UPDATE:  # a runtime that schedules replicas: changed in place, same id
            self._update_container(change, runtime)
            return
        fresh = change.action is not Action.START or change.id in self._recreating
        if fresh:
            self._create_container(change, runtime)
        try:
            runtime.start(change.name)
        except RecreateRequired:
            if fresh:
                raise  # a container made a moment ago: making another will not help
            self._recreate(change, runtime)
        if change.action is Action.REPLACE:
            self._released(change, ok=True)

    def _container_roll(self, change: Change) -> None:
        """Replace a container without a hole (``reconciler.rollout``), or simply when the runtime cannot."""
        runtime = self._driver(change)
        assert isinstance(runtime, RuntimeDriver)
        if change.keeps_if_image and self._same_build(change):
            return
        if not runtime.rolls:
            call_with_retries(lambda: self._object_down(change), self.options.retry)
            self._snapshot_first(change)  # the old container is gone, its volumes are not
            with self._work_slots:
                call_with_retries(lambda: self._container_up(change), self.options.retry)
            return
        ok = False
        try:
            roll(change, runtime, create=lambda: self._create_container(change, runtime),
                 removed=lambda: self.recorder.removed(change), work=self._work_slots, retry=self.options.retry,
                 rollback=self.options.rollback, data=self._release_data(change), restore=self.options.restore)
            ok = True
        finally:
            self._released(change, ok=ok)

    def _release_data(self, change: Change) -> ReleaseData | None:
        """The volumes a replacement snapshots first (``update.snapshot``; None: none), one per change."""
        if change.id not in self._data:
            wanted = change.action is Action.REPLACE and self._spec(change).update.snapshot
            self._data[change.id] = ReleaseData(change.name, self.desired, self.drivers,
                                                self.recorder.book) if wanted else None
        return self._data[change.id]

    def _snapshot_first(self, change: Change) -> None:
        """Snapshot a replacement's volumes now (a retried step does not take them twice)."""
        data = self._release_data(change)
        if data is not None and not data.taken:
            data.snapshot_first(data.take)

    def _snapshot_replaced(self, change: Change) -> None:
        """Before a container replaced directly (not running, or its network or volume recreated) is removed:
        snapshot its volumes, once nothing writes them (one running or restarting is stopped first, and started
        again if the snapshot fails: the change fails with it as it was)."""
        data, runtime = self._release_data(change), self._driver(change, removing=True)
        if data is None or data.taken:
            return
        writing = change.live_state not in ("exited", "dead", "created") and change.live_id
        if writing and isinstance(runtime, RuntimeDriver) and runtime.rolls:
            runtime.stop(change.live_id)
        try:
            self._snapshot_first(change)
        except ReconcilerError:
            if writing and isinstance(runtime, RuntimeDriver) and runtime.rolls:
                runtime.start(change.name)
            raise

    def _released(self, change: Change, *, ok: bool) -> None:
        """Say what a release did with its snapshots; after a good one, prune them to their retention."""
        data = self._data.get(change.id)
        if data is not None and data.taken:
            self.notes[change.id] = data.outcome(restored=None)
            if ok:
                data.prune()

    def _same_build(self, change: Change) -> bool:
        """Whether the image just built for an adopted container holds what the image it runs holds (then it stays)."""
        ref = self._spec(change).image_ref
        image = self.desired.of(Kind.IMAGE).get(ref)
        if image is None:
            return False
        registry = self.drivers.get(Kind.IMAGE, image.driver)
        same_as = call_with_retries(lambda: registry.equivalent(ref, change.keeps_if_image), self.options.retry)
        if same_as:
            self.recorder.kept(change, change.keeps_if_image, same_as)
            self.notes[change.id] = (f"kept running: the image built from the spec holds what its image "
                                     f"{change.keeps_if_image[7:19]} holds")
        return bool(same_as)

    def _create_container(self, change: Change, runtime: RuntimeDriver) -> None:
        spec = self._spec(change)
        self._create(change, spec.config_hash,
                     lambda: runtime.create(spec, object_labels(self.stack, Kind.CONTAINER, spec)))

    def _update_container(self, change: Change, runtime: RuntimeDriver) -> None:
        """Change the container in place (``RuntimeDriver.update``); a runtime without it gets a replacement."""
        spec = self._spec(change)
        labels = object_labels(self.stack, Kind.CONTAINER, spec)
        if not runtime.updates_in_place:
            self._object_down(change)
            self._create_container(change, runtime)
            runtime.start(change.name)
            return
        live = LiveObject(kind=Kind.CONTAINER, name=change.name, id=change.live_id or change.name, owned=True)
        self._create(change, spec.config_hash, lambda: runtime.update(spec, live, labels) or change.live_id)

    def _recreate(self, change: Change, runtime: RuntimeDriver) -> None:
        """Remove a container the engine can no longer start, then make and start it again.

        Only for a START change: the container is the stack's (recorded) and its
        config hash is the spec's, so the new one is what the old one was. This
        is how a stack recovers from an engine killed while it started containers.
        """
        self._object_down(change, state="")  # not running, whatever the stale task says
        self._recreating.add(change.id)  # from here on, a retry of this step creates
        self._create_container(change, runtime)
        runtime.start(change.name)


def apply_plan(
    plan: Plan,
    desired: DesiredState,
    drivers: Drivers,
    *,
    options: ApplyOptions = ApplyOptions(),
    before: Callable[[Change], None] | None = None,
    after: Callable[[Outcome], None] | None = None,
    recorder: Recorder | None = None,
) -> ApplyReport:
    """Run every change of ``plan``; return what happened to each.

    ``before`` and ``after`` are called once per change (from this thread),
    for progress output and lifecycle hooks; ``recorder`` hears of every
    object created and removed (from the worker threads).
    """
    started = time.monotonic()
    schedule = _Schedule(build_steps(plan.changes))
    runner = _Runner(plan, desired, drivers, options, recorder or Recorder())
    with _lanes(options) as pools:
        running: dict[Future, Step] = {}
        while True:
            if options.stop is not None and options.stop.is_set():
                schedule.interrupt()  # the steps in flight finish; none other starts
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
            for outcome in schedule.finished_changes(runner.notes):
                if after is not None:
                    after(outcome)
    outcomes = tuple(replace(schedule.outcome(change), note=runner.notes.get(change.id, "")) for change in plan.changes)
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

    def interrupt(self) -> None:
        """Skip every step not started yet: the apply was asked to stop."""
        for sid, step in list(self.pending.items()):
            del self.pending[sid]
            self.result[sid] = Status.SKIPPED
            self.errors.setdefault(step.change.id, "not started: the apply was interrupted")

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

    def finished_changes(self, notes: dict[str, str] | None = None) -> list[Outcome]:
        out = []
        for change_id, step_ids in self.phases.items():
            if change_id not in self.reported and all(sid in self.result for sid in step_ids):
                self.reported.add(change_id)
                self.ended[change_id] = time.monotonic()
                change = next(s.change for s in self.steps if s.id == step_ids[0])
                out.append(replace(self.outcome(change), note=(notes or {}).get(change_id, "")))
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
