"""The daemon's Prometheus metrics, kept in a registry of their own (``prometheus-client``)."""
from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.syncs = Counter("reconciler_syncs", "Passes of the reconcile loop, by stack and result.",
                             ["stack", "result"], registry=r)
        self.failures = Counter("reconciler_sync_failures", "Passes that failed (spec, engine or apply).",
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

    def observe_pass(self, stack: str, result: str, *, seconds: float, drifted: int, managed: int,
                     suspended: bool) -> None:
        self.syncs.labels(stack, result).inc()
        self.duration.labels(stack).observe(seconds)
        self.drifted.labels(stack).set(drifted)
        self.managed.labels(stack).set(managed)
        self.suspended.labels(stack).set(1 if suspended else 0)
        if result == "converged":
            self.last_success.labels(stack).set(time.time())
        elif result in ("failed", "error", "invalid"):
            self.failures.labels(stack).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
