"""The reconcile loop: decides *when* to reconcile a stack, never *how*.

Triggers (the spec's files changed, the engine reported a change to one of
the stack's objects, the resync timer fired) only mark the stack dirty; one
worker drains them, coalescing a burst into one pass after a short debounce.
Each pass is level-triggered: it loads the spec and applies it through the
same ``Reconciler.apply`` as ``reconcile apply``, reading the whole live state
again; a spec that names targets is applied on each (``runner.runner_for``
chooses, the loop never asks). A spec that does not load is reported and
nothing is applied, so the last good state stays in place; a source that
cannot be fetched is reported apart (it is not the spec's fault) and tried
again with backoff. A container that
has to be started pass after pass is crash-looping: passes slow down with
capped exponential backoff and the stack is reported as degraded; the loop
never hot-loops.

No exception ends a loop's thread, nor an event follower's: one nobody
expected (a bug, a plugin's) is logged as one line (``unexpected``), counted
by the ``on_error`` the loop was given (the daemon's metrics), and the pass is
retried after the same backoff as a failed one. Only ``stop`` ends a thread.
"""
from __future__ import annotations

import dataclasses
import enum
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .errors import PluginError, ReconcilerError, SourceError
from .following import follow_events, unexpected
from .model import DesiredState, Kind
from .plan import Action, Plan
from .plugins import call_hook
from .reconcile import ApplyRequest, Reconciler
from .report import ApplyReport, Outcome, Status
from .retry import RetryPolicy
from .runner import StackRunner, runner_for, whole_plan, whole_report
from .trust import QuietPass, after_pass, trusts

__all__ = ["LoopOptions", "Pass", "StackLoop", "Trigger", "unexpected"]

log = logging.getLogger(__name__)

#: Seconds after a pass during which an event that echoes its own changes still wakes nothing (the engine
#: reports a change a moment after it answered the request that made it).
ECHO_GRACE = 2.0
#: How late after its sweep's tick a resync pass still takes the sweep's lists, as a share of ``resync``; later
#: (the workers were busy that long), it lists its own objects with a filter.
SWEEP_SHARE = 0.5


class Trigger(enum.StrEnum):
    """What woke the loop."""

    START = "start"
    FILES = "files"  # a spec file, env file or build context changed
    SOURCE = "source"  # the source moved to a new revision (a git commit)
    WEBHOOK = "webhook"  # a webhook had the source fetched, and it moved to a new revision
    ENGINE = "engine"  # the engine reported a change to one of the stack's objects
    RESYNC = "resync"  # the resync interval passed
    RETRY = "retry"  # the last pass failed: try again after a backoff
    API = "api"  # someone asked for a sync (the daemon's API or status page)
    RECORD = "record"  # the stack was suspended or resumed in the record (``reconcile suspend`` on its host)


@dataclass(frozen=True)
class LoopOptions:
    #: Seconds between passes when nothing else triggers one.
    resync: float = 60.0
    #: Seconds to wait after a trigger for more to arrive (an editor saves in several steps).
    debounce: float = 0.2
    #: First and longest delay when passes fail or a container crash-loops.
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    #: A container started again within this many seconds of its last start counts as crash-looping.
    crash_window: float = 30.0
    #: Starts in a row within the window after which a container is crash-looping.
    crash_after: int = 3


@dataclass(frozen=True)
class Pass:
    """What one pass of the loop did: given to the loop's ``on_pass`` callback."""

    #: What woke the loop (several triggers coalesce into one pass; this is the first).
    trigger: Trigger
    #: The apply's report, or None when the spec did not load or the apply could not start.
    report: ApplyReport | None = None
    #: Why the pass failed before applying anything (an invalid spec, a lock held, the engine down).
    error: str = ""
    #: Containers started again and again, with how many starts in a row.
    crash_looping: dict[str, int] = field(default_factory=dict)
    #: Seconds the loop waits before its next pass may run (backoff), 0 when none.
    delay: float = 0.0
    #: Set when the stack is suspended: the plan the pass did not apply (its drift).
    suspended: Plan | None = None
    #: The spec did not load (``error`` says why): nothing was planned or applied.
    invalid: bool = False
    #: The spec's source could not be fetched (``error`` says why): nothing was loaded, planned or applied.
    source_failed: bool = False
    #: How long the pass took.
    seconds: float = 0.0
    #: A resync that trusted the engine's events and did not look (``StackLoop.unbroken_since``).
    trusted: bool = False

    @property
    def ok(self) -> bool:
        return not self.error and (self.suspended is not None or (self.report is not None and self.report.ok))

    @property
    def degraded(self) -> bool:
        return bool(self.crash_looping)


class StackLoop:
    """Keeps one stack converged until ``stop`` is set.

    ``load`` reads and validates the spec (raising ``SpecError``); ``watched``
    says which paths to watch for a loaded spec. File watching and engine
    events run in their own threads and only call ``trigger``. ``on_error``
    is told the name of the thread (the loop's or an event follower's) each
    time it caught an exception nobody expected and carried on.
    """

    def __init__(
        self,
        reconciler: Reconciler,
        load: Callable[[], DesiredState],
        *,
        request: ApplyRequest = ApplyRequest(),
        options: LoopOptions = LoopOptions(),
        on_pass: Callable[[Pass], None] | None = None,
        is_suspended: Callable[[str], bool] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.reconciler = reconciler
        self.load = load
        self.request = request
        self.options = options
        self.on_pass = on_pass or (lambda result: None)
        #: Asked before each apply: a suspended stack is planned (its drift reported), never applied.
        self.is_suspended = is_suspended or reconciler.suspended
        self.on_error = on_error
        self._wake = threading.Condition()
        self._pending: list[tuple[Trigger, bool]] = [(Trigger.START, False)]  # (why, only a look)
        self._pending_since = time.monotonic()  # when the first pending trigger came
        self._starts: dict[str, tuple[int, float]] = {}  # container → (starts in a row, last start)
        self._failures = 0
        self._last_pass = time.monotonic()
        self._not_before = 0.0  # the backoff: no pass before this (monotonic)
        self._sweep: float | None = None  # the resync tick of the pass in flight, when a resync started it
        #: Told after each trigger (the scheduler's, which then knows the stack is due); None when ``run`` drives.
        self.on_trigger: Callable[[], None] | None = None
        #: Told of each spec that loaded, before its pass observes (the daemon follows the stack's events from it).
        self.on_load: Callable[[DesiredState], None] | None = None
        #: Called right before a spec is applied (not when suspended); a ``ReconcilerError`` fails the pass, retried
        #: (the daemon restores a ``rollback --with-data``'s volumes here).
        self.before_apply: Callable[[DesiredState], None] | None = None
        #: ``events.is_echo``: whether an engine event is what a pass's own changes made (then it wakes nothing).
        self.echo: Callable[[object, Sequence[Outcome]], bool] | None = None
        self._in_pass = False
        self._heard: list = []  # engine events that came during the pass in flight
        self._echoes: tuple[Outcome, ...] = ()  # the last pass's outcomes, while its events may still come
        self._pass_ended = 0.0
        self.names: set[str] = set()  # the stack's object names, for engine event filters
        self.desired: DesiredState | None = None  # the last spec that loaded
        self._runner: tuple | None = None  # ((fleet, stack), the runner chosen for them)
        #: Since when (monotonic) every event stream of the stack has been open without a break, or None (then no
        #: resync trusts the events): the daemon's hub says. None: never trusted (``reconcile watch``).
        self.unbroken_since: Callable[[], float | None] | None = None
        self._heard_count = 0  # engine events (and looks) delivered to the loop so far
        self._quiet: QuietPass | None = None  # what the last pass that found nothing to do started from

    def trigger(self, why: Trigger, *, look: bool = False) -> None:
        """Ask for a pass (thread-safe, cheap: only marks the stack dirty).

        ``look``: nothing is known to have changed, the loop only needs to
        look (an event stream has just opened, and what changed before it
        did was reported to no one): a pass run for looks alone is reported
        only if it is news (it changed or found something).
        """
        with self._wake:
            if not self._pending:
                self._pending_since = time.monotonic()
            self._pending.append((why, look))
            self._wake.notify()
        if self.on_trigger is not None:
            self.on_trigger()

    def engine_event(self, event: object | None) -> None:
        """An engine event about one of the stack's objects (an ``EngineEvent``), or None: a stream (re)opened, look.

        An event that comes during a pass waits for its end; one that is an echo of the pass's own changes
        (``echo``), then or within ``ECHO_GRACE`` seconds after the pass, wakes nothing: a cold start of N
        stacks is N passes, not 2N. Anything else triggers a pass (``Trigger.ENGINE``).
        """
        with self._wake:
            self._heard_count += 1
        if event is None:
            self.trigger(Trigger.ENGINE, look=True)
            return
        with self._wake:
            if self._in_pass:
                self._heard.append(event)
                return
            recent = self._echoes if time.monotonic() - self._pass_ended <= ECHO_GRACE else ()
        if not (recent and self._echoes_of(event, recent)):
            self._hurry(event)
            self.trigger(Trigger.ENGINE)

    def _echoes_of(self, event: object, outcomes: Sequence[Outcome]) -> bool:
        """Whether ``event`` (an ``EngineEvent``; a follower of names alone knows no more than "changed") is
        an echo of ``outcomes``."""
        return self.echo is not None and hasattr(event, "action") and self.echo(event, outcomes)

    def _hurry(self, event: object) -> None:
        """A network or volume was just made while the stack backs off after a failure: perhaps the external
        object its last pass missed (another stack's), so the backoff ends now (a cold start in dependency
        order, not in rounds of backoff)."""
        if self._failures and getattr(event, "action", "") == "create" and \
                getattr(event, "kind", None) in (Kind.NETWORK, Kind.VOLUME):
            with self._wake:
                self._not_before = 0.0

    def _passing(self, result: Pass | None) -> None:
        """The pass in flight ended: the events heard meanwhile that are not its echoes trigger the next."""
        outcomes = tuple(result.report.outcomes) if result is not None and result.report is not None else ()
        with self._wake:
            heard, self._heard, self._in_pass = self._heard, [], False
            self._echoes, self._pass_ended = outcomes, time.monotonic()
        if any(event is None or not (outcomes and self._echoes_of(event, outcomes)) for event in heard):
            self.trigger(Trigger.ENGINE)

    def due(self) -> float:
        """When the next pass may start (monotonic): after the debounce of the first pending trigger and the
        backoff, or at the resync when nothing is pending."""
        with self._wake:
            if self._pending:
                return max(self._pending_since, self._not_before) + self.options.debounce
            return max(self._resync_due(), self._not_before)

    def resync_only(self) -> bool:
        """Whether the pass due is a resync: no trigger is pending (the scheduler runs those in a lane of their own)."""
        with self._wake:
            return not self._pending

    def _resync_due(self) -> float:
        """The tick of the resync grid (multiples of ``resync`` seconds) nearest to a whole interval after the
        last pass: every stack's resync falls on the same ticks, a sweep whose passes share the engine's lists."""
        resync = self.options.resync
        return math.ceil((self._last_pass + resync / 2) / resync) * resync

    def step(self) -> Pass | None:
        """Run the pass that is due (the pending triggers, or the resync), report it; None when none was due.

        What a scheduler's worker calls once ``due()`` has passed; never raises: an exception nobody expected
        is reported, counted and retried after a backoff.
        """
        try:
            woken = self._take()
            if woken is None:
                return None
            why, look = woken
            started = time.monotonic()
            with self._wake:
                self._in_pass = True
                heard = self._heard_count
            result = None
            try:
                result = dataclasses.replace(self.run_pass(why), seconds=time.monotonic() - started)
            finally:
                self._passing(result)
            self._after(result, heard, started)
            self._not_before = time.monotonic() + result.delay
            self._tell_plugins(result)
            if not look or is_news(result):
                self.on_pass(result)
            return result
        except Exception as exc:  # a callback's or a plugin's bug: the loop goes on
            unexpected(exc, self.on_error)
            self._failures += 1
            self._not_before = time.monotonic() + self._backoff(self._failures)
            self.trigger(Trigger.RETRY)
            return None

    def _take(self) -> tuple[Trigger, bool] | None:
        """(the first pending trigger, whether all are looks), the resync when it is due, else None."""
        with self._wake:
            if not self._pending:
                tick = self._resync_due()
                if time.monotonic() < tick:
                    return None
                self._pending.append((Trigger.RESYNC, False))
                self._sweep = tick  # the pass's lists are the sweep's
            pending, self._pending = self._pending, []
        self._last_pass = time.monotonic()
        woken = [why for why, look in pending if not look]  # a look says less than any other reason
        return (woken[0], False) if woken else (pending[0][0], True)

    def wake(self) -> None:
        """End a wait for triggers now (call it after setting the loop's ``stop``)."""
        with self._wake:
            self._wake.notify_all()

    def run(self, stop: threading.Event) -> None:
        """Run passes in this thread until ``stop`` is set; a pass in flight always finishes (``reconcile watch``).

        Once a spec has loaded (the stack's name is known), the engine's
        events are followed too, so drift is repaired as soon as it happens.
        The daemon drives many loops from a ``scheduler.Scheduler`` instead.
        """
        following = False
        while not stop.is_set():
            with self._wake:
                # ``wake()`` ends it early when stopping; at most a second, so that a signal handler
                # waiting for this (main) thread runs soon.
                remaining = self.due() - time.monotonic()
                if remaining > 0:
                    self._wake.wait(timeout=min(remaining, 1.0))
                    continue
            self.step()
            if not following and self.desired is not None:
                stack = self.desired.stack
                follow_events(self, self.runner(self.desired).event_sources(stack), stack, stop)
                following = True

    def run_pass(self, why: Trigger) -> Pass:
        """Load the spec and apply it once; never raises: an unexpected exception is a failed pass, retried."""
        try:
            return self._pass(why)
        except Exception as exc:  # a bug, a plugin's: the stack's thread goes on
            return self._failed(why, f"unexpected error, retried: {unexpected(exc, self.on_error)}")

    def _pass(self, why: Trigger) -> Pass:
        try:
            desired = self.load()
        except ReconcilerError as exc:
            if isinstance(exc, SourceError) and not exc.invalid:
                # The files could not be had: the spec may be fine, and a retry may get them.
                failed = self._failed(why, f"the source could not be fetched, nothing was changed:\n{exc}")
                return dataclasses.replace(failed, source_failed=True)
            # Retrying cannot help until the files change (which triggers a pass): no retry.
            return dataclasses.replace(self._failed(why, f"the spec does not load, nothing was changed:\n{exc}",
                                                    retry=False), invalid=True)
        if desired is not self.desired:  # the same spec object: the same names
            # Updated in place: event followers hold this very set and read it on every event.
            names = {name for kind in Kind for name in desired.of(kind)}
            self.names.intersection_update(names)
            self.names.update(names)
        self.desired = desired
        if self.on_load is not None:
            self.on_load(desired)
        if why is Trigger.RESYNC and self._trusts(desired):
            return Pass(why, ApplyReport(desired.stack, (), 0.0, revision=desired.revision, trigger=why.value,
                                         settled=True), trusted=True)
        try:
            runner = self.runner(desired)
            if self.is_suspended(desired.stack):  # drift is reported, nothing is applied
                plan, error = whole_plan(runner.plan(desired, prune_volumes=self.request.prune_volumes))
                return Pass(why, suspended=plan, error=error)
            if self.before_apply is not None:
                self.before_apply(desired)
            request = dataclasses.replace(self.request, trigger=why.value,  # the history says what started it
                                          snapshot_at=self._shared_from() if why is Trigger.RESYNC else None)
            report, error = whole_report(runner.apply(desired, request), desired.revision)
        except ReconcilerError as exc:
            return self._failed(why, str(exc))
        return self._applied(why, report, error)

    def _after(self, result: Pass, heard: int, started: float) -> None:
        """Keep what a pass that found nothing to do started from (``trust.after_pass``)."""
        desired = self.desired
        self._quiet = after_pass(self._quiet, result, desired, heard=heard, started=started,
                                 record=lambda: self._record_version(desired.stack))

    def _trusts(self, desired: DesiredState) -> bool:
        """Whether this resync may trust the engine's events instead of looking (``trust.trusts``).

        The daemon sets ``unbroken_since`` only for a stack whose every driver has its changes reported
        (``Drivers.unreported``)."""
        with self._wake:
            heard = self._heard_count
        return trusts(self._quiet, desired, heard=heard,
                      since=self.unbroken_since() if self.unbroken_since is not None else None,
                      record=lambda: self._record_version(desired.stack))

    def _record_version(self, stack: str) -> object:
        version = getattr(self.reconciler.state, "version", None)
        return version(stack) if version is not None else None

    def _tell_plugins(self, result: Pass) -> None:
        """``reconciler_pass_finished``: what only the loop knows (crash loops, held drift, a pass that failed
        before applying); a stack whose spec never loaded has no name to tell it under."""
        pm = getattr(self.reconciler, "pm", None)
        if pm is None or self.desired is None:
            return
        try:
            call_hook(pm, "reconciler_pass_finished", stack=self.desired.stack, trigger=result.trigger.value,
                      report=result.report, error=result.error, crash_looping=dict(result.crash_looping),
                      held=result.suspended)
        except PluginError as exc:
            log.warning("%s", exc)

    def _shared_from(self) -> float | None:
        """The moment a resync pass's lists may come from: its sweep's tick (the lists the sweep's other passes
        read), never before its own last pass ended; None when it comes more than ``SWEEP_SHARE`` of a resync
        after the tick: it lists its own objects then, as any other pass.

        A pass that comes seconds late still takes the tick's lists: whatever changed since then with an event
        has triggered a pass of its own, which lists afresh after this one (an event that came first made this
        pass an engine pass, not a resync), and what changed without one is what the next resync is for. At a
        thousand stacks a sweep takes longer than a few seconds, and a pass listing its own objects costs ten
        times the CPU of one picking them out of the sweep's lists.
        """
        if self._sweep is None or time.monotonic() - self._sweep >= SWEEP_SHARE * self.options.resync:
            return None
        return max(self._sweep, self._pass_ended)

    def runner(self, desired: DesiredState) -> StackRunner:
        """The stack's runner (``runner.runner_for``), made again only when its fleet or name changes.

        On the loop's reconciler's engine, if it was given one; else on the targets the spec names, if any.
        """
        key = (desired.fleet, desired.stack)
        if self._runner is None or self._runner[0] != key:
            self._runner = (key, runner_for(desired, self.reconciler, engine=self.reconciler.engine_url))
        return self._runner[1]

    def _applied(self, why: Trigger, report: ApplyReport, error: str = "") -> Pass:
        """The pass that applied ``report``; ``error``: targets that did not converge (a failed pass)."""
        self._failures = 0 if report.ok and not error else self._failures + 1
        looping = self._crash_looping(report)
        delay = max(self._backoff(max(looping.values(), default=0) - self.options.crash_after + 1),
                    self._backoff(self._failures))
        if not report.ok or error:
            self.trigger(Trigger.RETRY)
        return Pass(why, report, error=error, crash_looping=looping, delay=delay)

    def _failed(self, why: Trigger, error: str, *, retry: bool = True) -> Pass:
        self._failures += 1
        if retry:
            self.trigger(Trigger.RETRY)
        return Pass(why, error=error, delay=self._backoff(self._failures))

    def _backoff(self, streak: int) -> float:
        return RetryPolicy(base=self.options.backoff_base, cap=self.options.backoff_cap).delay(streak)

    def _crash_looping(self, report: ApplyReport) -> dict[str, int]:
        """Count, per container, the passes in a row that had to start it again."""
        now = time.monotonic()
        started = {o.change.name for o in report.outcomes
                   if o.change.kind is Kind.CONTAINER and o.change.action is Action.START and o.status is Status.OK}
        for name in list(self._starts):
            if name not in started and now - self._starts[name][1] > self.options.crash_window:
                del self._starts[name]  # it stayed up: the streak is over
        for name in started:
            count, last = self._starts.get(name, (0, 0.0))
            self._starts[name] = (count + 1 if now - last <= self.options.crash_window else 1, now)
        return {name: count for name, (count, _) in self._starts.items() if count >= self.options.crash_after}


def is_news(result: Pass) -> bool:
    """Whether a pass is worth a line of text: it changed, failed or found something wrong (or it is the first)."""
    return bool(result.error or (result.report and result.report.outcomes) or result.degraded
                or (result.suspended is not None and not result.suspended.empty) or result.trigger is Trigger.START)
