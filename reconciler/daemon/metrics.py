"""The daemon's Prometheus metrics, kept in a registry of their own (``prometheus-client``).

The daemon (``runner.Daemon``) records every pass of every stack here itself,
however it was built; the API serves them (``server``), and the doors read how
a pass ended (``pass_result``, ``drifted``) from here too.
"""
from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..loop import Pass
from ..report import Status

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "drifted", "pass_result"]


def pass_result(result: Pass) -> str:
    """One word for how a pass ended: converged, failed, error, invalid, source_error or suspended."""
    if result.suspended is not None:
        return "suspended"
    if result.source_failed:
        return "source_error"
    if result.invalid:
        return "invalid"
    if result.error or result.report is None:
        return "error"
    return "converged" if result.report.ok else "failed"


def drifted(result: Pass) -> int:
    """Objects that differ from the spec after the pass: a suspended stack's pending changes, an apply's failures."""
    if result.suspended is not None:
        return len(result.suspended.changes)
    if result.report is not None:
        return sum(1 for o in result.report.outcomes if o.status is not Status.OK)
    return 0


#: What ``pass_result`` says of a pass (``reconciler_syncs``' ``result``).
RESULTS = ("suspended", "source_error", "invalid", "error", "converged", "failed")


class Metrics:
    """Every counter, gauge and histogram the daemon exposes (``/metrics``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.syncs = Counter("reconciler_syncs", "Passes of the reconcile loop, by stack and result.",
                             ["stack", "result"], registry=r)
        self.failures = Counter("reconciler_sync_failures", "Passes that failed (source, spec, engine or apply).",
                                ["stack"], registry=r)
        self.duration = Histogram("reconciler_sync_duration_seconds", "How long a pass took.", ["stack"],
                                  buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300), registry=r)
        self.drifted = Gauge("reconciler_drifted_objects",
                             "Objects that differ from the spec after the last pass (a suspended stack's drift).",
                             ["stack"], registry=r)
        self.managed = Gauge("reconciler_managed_objects", "Objects the stack's spec declares.", ["stack"], registry=r)
        self.last_success = Gauge("reconciler_last_successful_sync_timestamp_seconds",
                                  "When the stack last converged (Unix time).", ["stack"], registry=r)
        self.suspended = Gauge("reconciler_stack_suspended", "1 while the stack is suspended.", ["stack"], registry=r)
        self.webhooks = Counter("reconciler_webhook_deliveries", "Webhook deliveries, by webhook and result.",
                                ["webhook", "result"], registry=r)
        self.worker_errors = Counter("reconciler_worker_errors",
                                     "Unexpected exceptions a daemon thread caught and carried on after, by thread.",
                                     ["thread"], registry=r)
        self.disconnects = Counter("reconciler_client_disconnects",
                                   "Requests whose client went away before sending the whole body, by route.",
                                   ["route"], registry=r)
        self.filesystem = Gauge("reconciler_filesystem_drift",
                                "1 for a container with filesystem: report whose writable layer changed since it "
                                "was created (read at most once per filesystem interval).",
                                ["stack", "container"], registry=r)
        self.feedback_failures = Counter("reconciler_feedback_failures",
                                         "Git notes and commit statuses not written (note, status, dropped).",
                                         ["kind"], registry=r)
        self.settled = Counter("reconciler_settled_passes",
                               "Resyncs that planned nothing: they found their stack as its last empty plan left it "
                               "(the same spec, live objects and record) and ended after observing (how=observed), "
                               "or trusted the engine's events, none heard since (how=events).", ["how"], registry=r)
        self._layer_drifted: dict[str, set[str]] = {}
        self._pool_gauges()

    def observe_pass(self, stack: str, passed: Pass, *, managed: int) -> None:
        """Count one pass of ``stack``: its result, duration and drift; ``managed``: the objects its spec declares."""
        result = pass_result(passed)
        settled = passed.report is not None and passed.report.settled
        self.syncs.labels(stack, result).inc()
        self.duration.labels(stack).observe(passed.seconds)
        if not settled:  # a settled resync (the same spec, nothing drifted) leaves these as the pass before set them
            self.drifted.labels(stack).set(drifted(passed))
            self.managed.labels(stack).set(managed)
            self.suspended.labels(stack).set(1 if passed.suspended is not None else 0)
            self._filesystem(stack, passed)
        if result == "converged":
            self.last_success.labels(stack).set(time.time())
            if settled:
                self.settled.labels("events" if passed.trusted else "observed").inc()
        elif result in ("failed", "error", "invalid", "source_error"):
            self.failures.labels(stack).inc()

    def forget(self, stack: str) -> None:
        """``stack`` is gone (a preview removed): its series go, so no gauge goes on showing it."""
        series = [(self.syncs, (stack, result)) for result in RESULTS]
        series += [(metric, (stack,)) for metric in (self.failures, self.duration, self.drifted, self.managed,
                                                      self.last_success, self.suspended)]
        series += [(self.filesystem, (stack, name)) for name in self._layer_drifted.pop(stack, set())]
        for metric, labels in series:
            try:
                metric.remove(*labels)
            except KeyError:  # never observed
                pass

    def _filesystem(self, stack: str, passed: Pass) -> None:
        """``reconciler_filesystem_drift``: one series per drifted container, removed once it no longer drifts."""
        plan = passed.suspended if passed.suspended is not None else passed.report
        if plan is None:  # the pass planned nothing: what was known stays
            return
        now = set(plan.drifted)
        for name in self._layer_drifted.get(stack, set()) - now:
            self.filesystem.remove(stack, name)
        for name in now:
            self.filesystem.labels(stack, name).set(1)
        self._layer_drifted[stack] = now

    def follow_pool(self, scheduler) -> None:
        """Read the pool gauges from the daemon's ``scheduler.Scheduler`` when scraped (the last one given)."""
        self._pool = scheduler

    def follow_streams(self, hub) -> None:
        """Read ``reconciler_event_streams`` from the daemon's ``events.EventHub`` when scraped."""
        self._hub = hub

    def _pool_gauges(self) -> None:
        r = self.registry
        self._pool = None

        def read(what):
            return lambda: what(self._pool) if self._pool is not None else 0

        Gauge("reconciler_pass_workers", "Passes the daemon runs at once at most (daemon.yaml workers:).",
              registry=r).set_function(read(lambda pool: pool.workers))
        Gauge("reconciler_passes_running", "Passes running now.", registry=r).set_function(read(lambda p: p.busy()))
        Gauge("reconciler_stacks_waiting", "Stacks due for a pass and waiting for a worker.",
              registry=r).set_function(read(lambda pool: pool.waiting()))
        self._hub = None
        Gauge("reconciler_event_streams", "Event streams open now: one per engine, whatever the number of stacks "
              "(plus one per stack for a third-party driver that can only follow one stack).",
              registry=r).set_function(lambda: self._hub.streams() if self._hub is not None else 0)
        Gauge("reconciler_passes_run", "Passes run since the daemon started, looks after an event stream opened "
              "included (reconciler_syncs counts only the passes worth reporting).",
              registry=r).set_function(read(lambda pool: pool.passes))

    def worker_error(self, thread: str) -> None:
        """Count one unexpected exception caught in ``thread`` (``stack-repo:app``, ``poll-repo``, ``events-…``)."""
        self.worker_errors.labels(thread).inc()

    def feedback_failed(self, kind: str) -> None:
        """Count one git note or commit status that could not be written (``daemon.feedback``)."""
        self.feedback_failures.labels(kind).inc()

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
