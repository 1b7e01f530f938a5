"""``reconcile daemon``: every stack of every source kept converged by a fixed pool of workers.

Each stack is a ``StackLoop`` (its triggers, backoff and resync time); a
``scheduler.Scheduler`` runs their passes on ``workers`` threads, one pass per
stack at a time, sources taking turns, so threads and descriptors do not grow
with the number of stacks. Git sources are fetched by one poller thread that
hands each due fetch to a small pool (``FETCHERS``); a new revision triggers a
pass of each of its stacks. A directory source is watched like ``reconcile
watch`` watches files (one observer per source). A stack whose spec is broken,
whose repository is unreachable or whose apply fails is reported and retried
with capped backoff, without holding a worker, while the others keep
reconciling. Every pass is counted in the daemon's ``Metrics`` by the daemon
itself, however it was built; a front end's ``on_pass`` only shows it.

A revision that cannot be exported (a link out of the repository) is
reported once, as an invalid pass of each of its source's stacks; they stay
at their last good revision, still repairing drift, until a commit exports.
No thread the daemon starts ends on an exception: a pass, an event follower,
a poll round and a sync report one line, count it
(``reconciler_worker_errors_total{thread}``, the thread named after the stack
or source it served) and go on after a backoff.
"""
from __future__ import annotations

import dataclasses
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

from ..errors import SourceError, SpecError
from ..events import EventHub, is_echo
from ..following import unexpected
from ..loop import LoopOptions, Pass, StackLoop, Trigger
from ..model import DesiredState, EngineEvent, Kind
from ..reconcile import ApplyRequest, Reconciler
from ..retry import RetryPolicy
from ..scheduler import Scheduler
from ..spec import load_desired
from .config import DaemonConfig, Source
from .feedback import Feedback
from .metrics import Metrics
from .previews import Previews
from .recordwatch import watch_record
from .automation import ImageAutomation
from .rollbackdata import restore_held_data
from .sources import Checkout, InvalidRevision, in_source, shared_checkouts, untouched, within
from .stackworker import StackWorker

__all__ = ["Daemon", "StackWorker"]

FETCHERS = 4  # git fetches at once, at most (each is a ``git fetch`` process)


class Daemon:
    """Runs every stack's passes on a pool of workers, and every git source's polls, until ``stop`` is set."""

    def __init__(self, config: DaemonConfig, *, reconciler: Reconciler, metrics: Metrics | None = None,
                 on_pass: Callable[[StackWorker, Pass], None] | None = None) -> None:
        """``metrics`` (default: a registry of its own) counts every pass; ``on_pass`` is told of each after."""
        self.config = config
        self.reconciler = reconciler
        self.metrics = metrics if metrics is not None else Metrics()
        self.on_pass = on_pass or (lambda worker, result: None)
        state_dir = Path(config.state_dir)
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Sources on one repository and ref (and credentials) share its checkout: one fetch serves them all.
        self.checkouts, self._fetching, self._group = shared_checkouts(config.sources, state_dir)
        self._seen: dict[str, tuple[str, str]] = {}  # source → (revision, rejected revision) it last saw
        self._hooked: set[str] = set()  # sources a webhook asked to fetch, not fetched since
        # The poller's timetable: source name → when it is fetched next (monotonic); ``fetch`` moves one to now.
        self._poll_at: dict[str, float] = {}
        self._poll_wake = threading.Condition()
        self._fetchers = ThreadPoolExecutor(max_workers=FETCHERS, thread_name_prefix="fetch")
        self.workers = [StackWorker(s, p, self.checkouts[s.name]) for s in config.sources for p in s.paths]
        self._by_source: dict[str, list[StackWorker]] = {}
        for worker in self.workers:
            self._by_source.setdefault(worker.source.name, []).append(worker)
        self.options = LoopOptions(resync=config.resync)
        if config.filesystem_interval is not None:  # read by the runtime driver (filesystem: report/recreate)
            os.environ["RECONCILER_FILESYSTEM_INTERVAL"] = format(config.filesystem_interval, "g")
        for worker in self.workers:
            worker.loop = self._loop(worker)
        self.scheduler = Scheduler(config.workers, on_error=self.metrics.worker_error)
        self.metrics.follow_pool(self.scheduler)
        self._stop: threading.Event | None = None  # ``run``'s, once it runs (event followers end with it)
        # worker → (stack, names) the hub follows for it, and the spec they were read from
        self._following: dict[str, tuple[str, frozenset[str], DesiredState]] = {}
        self._by_id = {w.id: w for w in self.workers}
        #: One event stream per engine for every stack, demultiplexed by label and name.
        self.hub = EventHub(self._deliver, on_error=self.metrics.worker_error)
        self.metrics.follow_streams(self.hub)
        self.images = ImageAutomation(self)  # git sources with ``write:``: image versions committed back
        self.feedback = Feedback(config.sources, state_dir, on_failure=self.metrics.feedback_failed,
                                 on_error=self.metrics.worker_error)  # ``notes:`` and ``status:``: told on commits
        self.previews = Previews(self)  # ``previews:``: a stack per branch, made and removed as branches come and go
        #: Told the record's suspensions and holds each time the daemon reads them (the API's in-memory copy).
        self.on_record: Callable[..., None] | None = None

    def _loop(self, worker: StackWorker) -> StackLoop:
        request = ApplyRequest(prune_volumes=worker.source.prune_volumes, allow_empty=worker.source.allow_empty,
                               adopt_compose=worker.source.adopt_compose, options=self.config.apply_options)
        loop = StackLoop(self.reconciler, lambda: self._load(worker), request=request, options=self.options,
                         on_pass=lambda result: self._applied(worker, result), on_error=self.metrics.worker_error)
        loop.on_load = lambda desired: self._loaded(worker, desired)
        loop.before_apply = lambda desired: self._before_apply(worker, desired)
        loop.echo = is_echo
        return loop

    def _before_apply(self, worker: StackWorker, desired: DesiredState) -> None:
        self.feedback.starting(worker, desired)  # a commit status: pending
        restore_held_data(self.reconciler, worker.held, desired)

    def _applied(self, worker: StackWorker, result: Pass) -> None:
        """A pass of the stack's loop ended (not a fetch that failed, told by ``_passed`` alone)."""
        self._passed(worker, result)
        self.feedback.passed(worker, result)
        self.previews.passed(worker, result)

    def _passed(self, worker: StackWorker, result: Pass) -> None:
        worker.last, worker.last_at = result, time.time()
        if not (result.invalid or result.source_failed):  # nothing changed: what runs is still the last one
            worker.last_revision = worker.revision
        if result.report is not None and result.report.outcomes:
            worker.changed = (result, worker.last_at, worker.last_revision)
        desired = worker.loop.desired if worker.loop else None
        self.metrics.observe_pass(worker.stack or worker.id, result,
                                  managed=sum(len(desired.of(k)) for k in Kind) if desired else 0)
        self.images.passed(worker, result)
        self.on_pass(worker, result)

    def _loaded(self, worker: StackWorker, desired: DesiredState) -> None:
        """A spec of the worker's stack loaded: the hub delivers its events from now on, before its pass observes
        (drift is repaired as it happens, and nothing that changes after that read goes unseen)."""
        following = self._following.get(worker.id)
        if following is not None and following[2] is desired:
            return  # the very spec it follows already (a revision's spec is read once)
        names = frozenset(name for kind in Kind for name in desired.of(kind))
        self._following[worker.id] = (desired.stack, names, desired)
        runner = worker.loop.runner(desired)
        # a resync may trust the hub's streams only when every driver the stack uses has its changes reported
        heard = runner is self.reconciler and not self.reconciler.drivers(desired.stack).unreported(desired)
        worker.loop.unbroken_since = (lambda: self.hub.unbroken_since(worker.id)) if heard else None
        if following is not None and following[:2] == (desired.stack, names):
            return  # what the hub follows for it already
        self.hub.follow(worker.id, desired.stack, names, runner.event_sources(desired.stack, desired))

    def _deliver(self, key: str, event: EngineEvent | None) -> None:
        """An engine event for one worker (the hub's, on its stream's thread): only a trigger, or nothing."""
        worker = self._by_id.get(key)
        if worker is not None and worker.loop is not None:
            worker.loop.engine_event(event)

    def fetch(self, sources: list[str]) -> None:
        """Have these git sources fetched now; requests made while one waits or fetches coalesce."""
        with self._poll_wake:
            for name in sources:
                self._hooked.add(name)  # what the move it finds is triggered by, in the history
                self._poll_at[self._group.get(name, name)] = 0.0
            self._poll_wake.notify()

    def registry_pushed(self, pushes: list) -> int:
        """A registry's push notifications (``RegistryPush``): the images they name are checked now; how many."""
        return self.images.pushed(pushes)

    def sync(self, worker: StackWorker) -> None:
        """A pass of this stack now; a git source is fetched first, so the pass sees its newest commit."""
        def run() -> None:
            thread = threading.current_thread()
            idle, thread.name = thread.name, f"sync-{worker.id}"
            try:
                if worker.source.git:
                    try:
                        moved = self.refresh(worker.source)
                    except SourceError as exc:
                        self._passed(worker, _not_fetched(Trigger.API, exc))
                        return
                    if moved:  # the source's other stacks are at an old revision now too
                        for other in self._of(worker.source):
                            if other is not worker:
                                other.loop.trigger(Trigger.SOURCE)
            except Exception as exc:  # reported and counted; the stack's own pass still runs
                unexpected(exc, self.metrics.worker_error)
            finally:
                thread.name = idle
            worker.loop.trigger(Trigger.API)

        worker.spec = None  # someone asked: the files are read again too (a key outside the repository may be new)
        if worker.source.git:
            self._fetchers.submit(run)
        else:
            worker.loop.trigger(Trigger.API)

    def _load(self, worker: StackWorker) -> DesiredState:
        """The stack's spec at the source's current revision, or at the one it is held at (``rollback``)."""
        if worker.checkout.tree is None:
            self._fetch(worker.source)
        worker.revision, worker.held = worker.checkout.revision, False  # what a failed load reports
        try:
            desired = self._load_from(worker, worker.checkout.tree, worker.checkout.revision)
            stack = desired.stack
        except SpecError:
            # A broken head is a reason to roll back: a hold still applies.
            stack = worker.loop.desired.stack if worker.loop and worker.loop.desired else ""
            if not stack or not self._held(worker, stack):
                raise
        held = self._held(worker, stack)
        if held:
            with self._fetching[worker.source.name]:
                tree = worker.checkout.tree_at(held)
            desired = self._load_from(worker, tree, held)
        worker.revision, worker.held = desired.revision, bool(held)
        return desired

    def _held(self, worker: StackWorker, stack: str) -> str:
        """The revision ``stack`` is held at, or ""; a hold ends once the source has moved past it.

        Reads only: ``refresh`` releases the holds a fetch has ended.
        """
        revision, source_revision = self.reconciler.state.holds().get(stack, ("", ""))
        return "" if _moved_past(worker.checkout, source_revision) else revision

    def _load_from(self, worker: StackWorker, tree: Path | None, revision: str) -> DesiredState:
        """The spec at ``where`` in ``tree``; read once per git revision when every file it was made from is in
        the revision's tree (a commit's files never change), on every pass from a directory."""
        where = worker.checkout.path(worker.path, tree)
        if where is None or not where.exists():
            return self._missing(worker, where)
        key = (str(where), revision)
        if worker.spec is not None and worker.spec[0] == key:
            return worker.spec[1]
        worker.spec = None
        desired = (self.previews.read if worker.preview else self.read_spec)(worker, where, tree, revision)
        if revision and tree is not None and within(desired, tree):
            worker.spec = (key, desired)
        return desired

    def read_spec(self, worker: StackWorker, where: Path, tree: Path | None, revision: str, *,
                  stack: str | None = None) -> DesiredState:
        """The spec at ``where`` (in ``tree``, at ``revision``), named ``stack`` when given (a preview's)."""
        try:
            desired = load_desired([where], stack=stack, drivers=self.reconciler.driver_catalog(),
                                   allow_empty=worker.source.allow_empty,
                                   allow_outside=worker.source.allow_outside_paths, targets=self.config.targets,
                                   host_paths=worker.source.allow_host_paths)
        except SpecError as exc:
            raise in_source(exc, worker.source.name, tree, revision) from None
        return dataclasses.replace(desired, revision=revision) if revision else desired

    def _missing(self, worker: StackWorker, where: Path | None) -> DesiredState:
        """A path gone from the source: the stack is deleted only when the source allows empty specs."""
        previous = worker.loop.desired if worker.loop else None
        if worker.source.allow_empty and previous is not None:
            return DesiredState(stack=previous.stack, revision=worker.checkout.revision, runtime=previous.runtime)
        raise SpecError(f"source {worker.source.name}: {worker.path} is not in the source "
                        f"{'at ' + worker.checkout.revision[:12] if worker.checkout.revision else ''}; "
                        "nothing was changed (set allow_empty: true to let that delete the stack)")

    def _fetch(self, source: Source, since: float = float("inf")) -> bool:
        """Fetch ``source`` unless its (shared) checkout was fetched at ``since`` or later; true when its revision
        moved since this source last looked."""
        checkout = self.checkouts[source.name]
        with self._fetching[source.name]:  # the poller and a stack's first pass may both fetch
            try:
                if checkout.fetched_at < since:
                    checkout.refresh()
            except InvalidRevision:
                pass  # told below, to this source as to each other source of the checkout
            seen, rejected = self._seen.get(source.name, ("", "")), checkout.rejected
            self._seen[source.name] = (checkout.revision, rejected.revision if rejected else "")
            if rejected is not None and rejected.revision != seen[1]:  # a revision that does not export: once
                named = checkout.source.name + "@"
                path = source.name + "@" + rejected.path[len(named):] if rejected.path.startswith(named) else \
                    rejected.path
                raise InvalidRevision(path, rejected.reason, rejected.revision)
        return checkout.revision != seen[0]

    def refresh(self, source: Source, since: float = float("inf"), *, holds: dict | None = None) -> bool:
        """Fetch ``source`` (true when its revision moved), and release the holds of its stacks it moved past
        (``holds``: the record's, when the caller has just read them)."""
        moved = self._fetch(source, since)
        holds = self.reconciler.state.holds() if holds is None else holds
        for worker in self._of(source) if holds else ():  # a round every second: nothing per stack without holds
            if worker.stack in holds and _moved_past(worker.checkout, holds[worker.stack][1]):
                self.reconciler.state.release(worker.stack)  # a newer commit: that is what the source wants now
        return moved

    def not_fetched(self, worker: StackWorker, error: SourceError) -> None:
        """Tell ``worker``'s stack its source could not be fetched (a pass that failed before loading)."""
        self._passed(worker, _not_fetched(Trigger.SOURCE, error))

    def add_worker(self, worker: StackWorker) -> None:
        """Serve one more stack (a preview) from now on: its checkout fetched as a source's, its passes run."""
        name, group = worker.source.name, worker.preview.origin.name if worker.preview else worker.source.name
        self.checkouts[name], self._fetching[name], self._group[name] = worker.checkout, threading.Lock(), name
        worker.loop = self._loop(worker)
        self._by_source[name], self._by_id[worker.id] = [worker], worker
        self.workers = [*self.workers, worker]  # a new list: a reader keeps iterating the one it took
        self.scheduler.add(worker.id, worker.loop, group=group)

    def drop_worker(self, worker: StackWorker, *, wait: float = 0.0) -> None:
        """Stop serving ``worker``'s stack; its pass in flight ends first (``wait`` seconds at most)."""
        self.workers = [w for w in self.workers if w is not worker]
        self.scheduler.remove(worker.id, wait=wait)
        self.hub.forget(worker.id)
        name = worker.source.name
        for table in (self._following, self._by_id):
            table.pop(worker.id, None)
        for table in (self._by_source, self.checkouts, self._fetching, self._group, self._seen):
            table.pop(name, None)

    def run(self, stop: threading.Event) -> None:
        """Serve every stack until ``stop`` is set; passes and fetches in flight finish."""
        self._stop = stop
        self.hub.start(stop)
        for worker in self.workers:  # in the sources' order: a cold start goes through them in turn
            self.scheduler.add(worker.id, worker.loop, group=worker.source.name)
        git = [s for s in self.config.sources if s.git]
        threads = [threading.Thread(target=self._poll, args=(git, stop), name="poll", daemon=True)] if git else []
        threads.append(threading.Thread(target=watch_record, args=(self, stop), name="record", daemon=True))
        if self.images.enabled:
            threads.append(threading.Thread(target=self.images.run, args=(stop,), name="images", daemon=True))
        if self.feedback.enabled:
            threads.append(threading.Thread(target=self.feedback.run, name="feedback", daemon=True))
        watchers = [self._watch(s) for s in self.config.sources if s.dir]
        self.previews.start(self._fetchers)
        for thread in threads:
            thread.start()
        try:
            self.scheduler.run(stop)  # until ``stop``; a signal's handler runs in this (main) thread meanwhile
        finally:
            with self._poll_wake:
                self._poll_wake.notify_all()
            for watcher in watchers:
                watcher.stop()
            self.feedback.close()  # after the passes in flight: their notes and statuses are written first
            for thread in threads:
                thread.join(timeout=120)  # a fetch in flight finishes
            self._fetchers.shutdown(wait=True, cancel_futures=True)

    def _poll(self, sources: Sequence[Source], stop: threading.Event) -> None:
        """Fetch each git repository every interval (sooner when ``fetch`` asks), at most ``FETCHERS`` at once;
        a new revision triggers a pass of each stack it changed.

        One thread for all sources; sources on one repository and ref take one round (one fetch), named after
        the first of them, ``poll-<source>``, on the fetch pool. Only ``stop`` ends it: a round that raises is
        reported, counted, and fetched again after a backoff on top of its interval.
        """
        backoff = RetryPolicy(base=self.options.backoff_base, cap=self.options.backoff_cap)
        holds = self.reconciler.state.holds()  # the holds as it starts: a later change is a rollback or a release
        state = {s.name: holds for s in sources}  # source → the holds its last round saw
        groups: dict[str, list[Source]] = {}
        for source in sources:
            groups.setdefault(self._group[source.name], []).append(source)
        failures = dict.fromkeys(groups, 0)
        busy: set[str] = set()
        now = time.monotonic()
        with self._poll_wake:
            for name, group in groups.items():  # sooner if ``fetch`` asked already
                self._poll_at.setdefault(name, now + min(s.git.interval for s in group))

        def round_of(name: str) -> None:
            thread = threading.current_thread()
            idle, thread.name = thread.name, f"poll-{name}"
            group, started = groups[name], time.monotonic()
            delay = min(s.git.interval for s in group)
            try:
                seen: dict = {}  # what the group's sources share in a round: the holds, the paths changed
                for source in group:  # the first fetches; the others see what it fetched
                    state[source.name] = self._poll_once(source, state[source.name], started, seen)
                failures[name] = 0
            except Exception as exc:  # a bug must not stop the source being followed
                failures[name] += 1
                unexpected(exc, self.metrics.worker_error)
                delay += backoff.delay(failures[name])
            finally:
                thread.name = idle
                with self._poll_wake:
                    busy.discard(name)
                    asked = self._poll_at.get(name) != float("inf")  # ``fetch`` asked during the round
                    self._poll_at[name] = 0.0 if asked else time.monotonic() + delay
                    self._poll_wake.notify()

        with self._poll_wake:
            while not stop.is_set():
                now = time.monotonic()
                for name, at in list(self._poll_at.items()):
                    if at <= now and name not in busy and name in groups:
                        busy.add(name)
                        self._poll_at[name] = float("inf")
                        try:
                            self._fetchers.submit(round_of, name)
                        except RuntimeError:  # the pool is shut down: stopping
                            return
                waits = [at for name, at in self._poll_at.items() if name not in busy]
                self._poll_wake.wait(timeout=min(max(min(waits, default=1.0) - now, 0.01), 1.0))

    def _poll_once(self, source: Source, holds: dict, since: float = float("inf"), seen: dict | None = None) -> dict:
        """One round of the poller: see holds that changed, fetch (unless the checkout, shared with other
        sources, was fetched at ``since`` or later); return the holds it saw.

        ``seen``: what the other sources of the round (one repository and ref, a thousand sources of one path
        each) read already, shared: the holds, read once a round, and the paths changed since each revision,
        one ``git diff`` each. A move is a ``WEBHOOK`` trigger when a webhook asked for this fetch (``fetch``),
        else a ``SOURCE`` one."""
        seen = {} if seen is None else seen
        why = Trigger.WEBHOOK if source.name in self._hooked else Trigger.SOURCE
        self._hooked.discard(source.name)
        now = seen.get("holds")
        if now is None:
            now = seen["holds"] = self.reconciler.state.holds()
        if now != holds:  # a rollback or a release: the held stacks' workers load again
            for worker in self._of(source):
                worker.loop.trigger(Trigger.SOURCE)
        try:
            moved = self.refresh(source, since, holds=now)
        except SourceError as exc:
            for worker in self._of(source):
                self._passed(worker, _not_fetched(Trigger.SOURCE, exc))
            return now
        finally:
            self.previews.poll(source)  # its branches: previews made, fetched, removed
        if moved:
            checkout = self.checkouts[source.name]
            changes = seen.setdefault(("changed", id(checkout)), {})  # the paths changed since each revision
            for worker in self._of(source):
                at = worker.spec[0][1] if worker.spec is not None else ""
                good = at and not worker.held and worker.stack not in now and worker.last is not None and worker.last.ok
                if good and at not in changes:
                    changes[at] = checkout.changed_since(at)
                if not (good and untouched(worker.spec, worker.path, checkout.tree_of(at), changes[at])):
                    worker.loop.trigger(why)
        return now

    def _watch(self, source: Source):
        from ..filewatch import SpecWatcher

        stacks = self._of(source)
        watcher = SpecWatcher([source.dir], lambda: [w.loop.trigger(Trigger.FILES) for w in stacks])
        watcher.start()
        return watcher

    def _of(self, source: Source) -> list[StackWorker]:
        return self._by_source.get(source.name, [])


def _not_fetched(why: Trigger, error: SourceError) -> Pass:
    """The pass a stack is told of when its source could not be fetched: an invalid revision is an invalid pass."""
    return Pass(why, error=str(error), invalid=error.invalid, source_failed=not error.invalid)


def _moved_past(checkout: Checkout, source_revision: str) -> bool:
    """Whether a git source is at a revision other than the one a hold was made at (the hold is over)."""
    return bool(checkout.revision) and checkout.revision != source_revision
