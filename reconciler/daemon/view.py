"""What the daemon's doors (API, status page, metrics) see of its stacks, as plain data.

``stacks`` and ``summary`` never call the engine: they read what the last pass
of each stack left behind, so listing stays fast however many clients ask while
a sync runs. ``detail`` plans the stack afresh (one list call per kind) to show
every object's desired against live state; it never asks the engine about one
object (its logs, its health output): only ``with_health_output`` does, for the
one object the status page opened.

At a thousand stacks neither reads the database either: which stacks are
suspended or held comes from an in-memory copy (``refresh``), which the
daemon renews as it polls the record, and the API's own writes (suspend,
resume, rollback, release) update at once. Nobody refreshed it for over
``STALE_AFTER`` seconds: it is read from the store again. ``page`` answers
``/api/stacks?limit=&offset=&state=`` from it, and ``find`` is a dict lookup.

The record's previews (which stacks are previews of a branch, their URLs and
state, as the daemon writes them) are in that copy too, read with the
suspensions each second: a listing shows them without a read of its own.
``GET /api/previews`` reads the record itself (once per request).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Iterable, Sequence

from ..drivers import RuntimeDriver
from ..errors import ReconcilerError, StateError
from ..model import Kind, Preview
from ..redact import without_credentials
from ..render import plan_data, sync_data
from ..render_previews import preview_link, previews_data
from ..render_snapshots import snapshots_data, volume_summaries
from ..status import status_rows
from .metrics import drifted, pass_result
from .runner import Daemon
from .stackworker import StackWorker
from .stackgraph import edges

__all__ = ["STALE_AFTER", "STATES", "DaemonView"]

log = logging.getLogger(__name__)

#: Seconds after which a copy of the suspensions and holds nobody refreshed is read from the store again.
STALE_AFTER = 2.0
#: What ``?state=`` may ask for: a stack's ``state``, or ``suspended`` / ``held`` (its flags).
STATES = ("pending", "converged", "degraded", "failed", "error", "invalid", "source_error", "suspended", "held")


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def _last_change(worker: StackWorker) -> dict[str, Any] | None:
    """The last pass that changed something: what started it, when, at which revision (not the no-op after it)."""
    if worker.changed is None:
        return None
    result, at, revision = worker.changed
    return {"at": _iso(at), "trigger": result.trigger.value, "revision": revision or None,
            "changes": len(result.report.outcomes) if result.report is not None else 0}


class DaemonView:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.state = daemon.reconciler.state
        self._lock = threading.Lock()
        self._suspended: dict[str, str] = {}
        self._holds: dict[str, tuple[str, str]] = {}
        self._previews: tuple[Preview, ...] = ()
        self._refreshed = float("-inf")  # monotonic; never: the first read goes to the store
        self._written = float("-inf")  # monotonic: when this view last wrote the record (an API write)
        self._index: dict[str, StackWorker] = {}
        self._indexed: list[StackWorker] | None = None

    # -- suspensions and holds, from memory ---------------------------------------------------

    def refresh(self, suspended: dict[str, str], holds: dict[str, tuple[str, str]],
                previews: Sequence[Preview] | None = None, *, read_at: float | None = None) -> None:
        """The record's suspended stacks (``StateStore.suspended``), holds (``holds``) and previews (``previews``;
        None: the copy's are kept) as read just now.

        ``read_at`` (monotonic): when the reads began; a copy read before this view's own last write is older
        than what the view holds, and is ignored.
        """
        with self._lock:
            if read_at is not None and read_at < self._written:
                return
            self._suspended, self._holds, self._refreshed = dict(suspended), dict(holds), time.monotonic()
            if previews is not None:
                self._previews = tuple(previews)

    @property
    def stale(self) -> bool:
        """Whether nobody refreshed the copy for over ``STALE_AFTER`` seconds (the next read renews it)."""
        return time.monotonic() - self._refreshed > STALE_AFTER

    def marks(self) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
        """(suspended, holds): the copy, read from the store first when it is stale."""
        if self.stale:
            self._reread()
        with self._lock:
            return self._suspended, self._holds

    def suspend(self, stack: str) -> None:
        """Suspend ``stack`` in the record, and in the copy at once."""
        self.state.suspend(stack)
        self._renew()

    def resume(self, stack: str) -> None:
        self.state.resume(stack)
        self._renew()

    def hold_at(self, stack: str, revision: str, *, with_data: bool = False) -> tuple[str, str]:
        """Hold ``stack`` at ``revision`` (``StateStore.hold_at``): (revision held at, source revision)."""
        source = self.state.hold_at(stack, revision, with_data=with_data)
        self._renew()
        return self.marks()[1][stack][0], source

    def release(self, stack: str) -> None:
        self.state.release(stack)
        self._renew()

    def _renew(self) -> None:
        self._written = time.monotonic()
        self._reread()

    def _reread(self) -> None:
        self.refresh(self.state.suspended(), self.state.holds(), self._read_previews())

    def _read_previews(self) -> list[Preview]:
        """The record's previews; none, and a line in the log, when they cannot be read: a listing of stacks
        must not fail for the previews alone."""
        try:
            return self.preview_records()
        except StateError as exc:
            log.warning("stacks listed without their previews: %s", exc)
            return []

    def listed_previews(self) -> tuple[Preview, ...]:
        """The copy's previews (read from the store first when it is stale): the overview's ``Previews``."""
        self.marks()
        with self._lock:
            return self._previews

    # -- stacks --------------------------------------------------------------------------------

    def find(self, name: str) -> StackWorker | None:
        """The worker of stack ``name`` (or of id ``source:path``, before its spec ever loaded).

        A dict lookup; a miss (or a stack renamed since) indexes the workers again, as names appear
        when specs load.
        """
        worker = self._index.get(name)
        if worker is not None and name in (worker.stack, worker.id) and self._indexed is self.daemon.workers:
            return worker
        index = self._reindex()
        return index.get(name)

    def _reindex(self) -> dict[str, StackWorker]:
        workers = self.daemon.workers
        index = {w.id: w for w in workers}
        index.update({w.stack: w for w in reversed(workers) if w.stack})  # names win; of two alike, the first
        self._index, self._indexed = index, workers
        return index

    def ready(self) -> list[str]:
        """The stacks that have not finished a first pass yet (empty once the daemon is ready)."""
        return [w.stack or w.id for w in self.daemon.workers if w.last is None]

    def stacks(self) -> list[dict[str, Any]]:
        """Every stack's summary."""
        return self.page()[0]

    def page(self, *, limit: int | None = None, offset: int = 0, states: Iterable[str] = (),
             previews: Sequence[Preview] | None = None) -> tuple[list[dict[str, Any]], int]:
        """(summaries of ``limit`` stacks from ``offset``, how many match): those in one of ``states`` (``STATES``)
        when given; ``previews``: the copy's (``listed_previews``) taken already. From memory: neither the
        database (but a stale copy, ``marks``) nor the engine."""
        suspended, holds = self.marks()
        index = self._preview_index(previews)
        wanted = set(states)
        workers = self.daemon.workers
        if wanted:
            flags = {"suspended": suspended, "held": holds}
            workers = [w for w in workers if self._state(w) in wanted
                       or any(w.stack in flags[flag] for flag in wanted & flags.keys())]
        chosen = workers[offset:] if limit is None else workers[offset:offset + limit]
        return [self.summary(w, suspended, holds, index) for w in chosen], len(workers)

    @staticmethod
    def _state(worker: StackWorker) -> str:
        last = worker.last
        state = "pending" if last is None else pass_result(last)
        return "degraded" if last is not None and last.degraded and state == "converged" else state

    def summary(self, worker: StackWorker, suspended: dict | None = None, holds: dict | None = None,
                previews: dict[str, Preview] | None = None) -> dict[str, Any]:
        """What the stack's last pass left, from memory; a preview stack's with its ``preview`` (``previews``: the
        copy's previews by stack, indexed once for a whole listing; None: index them now)."""
        if suspended is None or holds is None:
            suspended, holds = self.marks()
        source = worker.source
        name = worker.stack
        last = worker.last
        desired = worker.loop.desired if worker.loop else None
        state = self._state(worker)
        preview = (self._preview_index() if previews is None else previews).get(name) if name else None
        data = {
            "name": name or None,
            "id": worker.id,
            "source": {"name": source.name, "kind": "git" if source.git else "dir",
                       "url": without_credentials(source.git.url) if source.git else None,
                       "ref": source.git.ref if source.git else None, "path": worker.path},
            "revision": worker.last_revision or None,
            "source_revision": worker.checkout.revision or None,
            "held": name in holds if name else False,
            "held_at": holds[name][0] if name in holds else None,
            "suspended": name in suspended if name else False,
            "state": state,
            "drift": drifted(last) if last is not None else None,
            "managed": sum(len(desired.of(kind)) for kind in Kind) if desired else 0,
            "degraded": sorted(last.crash_looping) if last is not None else [],
            "last_sync": None if last is None else {
                "at": _iso(worker.last_at), "trigger": last.trigger.value, "result": pass_result(last),
                "seconds": round(last.seconds, 3), "error": last.error or None,
                "changes": len(last.report.outcomes) if last.report is not None else 0,
            },
            "last_change": _last_change(worker),
        }
        if preview is not None:
            data["preview"] = preview_link(preview)
        return data

    # -- previews, from the record -------------------------------------------------------------

    def preview_records(self, source: str | None = None) -> list[Preview]:
        """The record's previews (of ``source`` only when given), by source, branch and path: one read."""
        return self.state.previews(source)

    def previews(self, source: str | None = None) -> list[dict[str, Any]]:
        """The record's previews as ``GET /api/previews`` answers them (``render_previews.preview_data``)."""
        return previews_data(self.preview_records(source))

    def _preview_index(self, previews: Sequence[Preview] | None = None) -> dict[str, Preview]:
        """The previews by their stack's name (those whose spec has loaded): ``previews``, else the copy's."""
        return {p.stack: p for p in (self.listed_previews() if previews is None else previews) if p.stack}

    def detail(self, worker: StackWorker, *, detailed: bool = False) -> dict[str, Any]:
        """The summary, plus every object desired against live, and the plan a pass would apply now;
        ``detailed``: with the paths changed in containers' writable layers (``?detailed=1``), and
        each image's layers (``imagelayers.image_layers``)."""
        data = self.summary(worker)
        desired = worker.loop.desired if worker.loop else None
        data["objects"], data["plan"], data["observe_error"], data["edges"] = [], None, None, []
        if desired is None:
            return data
        try:
            plan, live = self.daemon.reconciler.plan(desired, prune_volumes=worker.source.prune_volumes)
        except ReconcilerError as exc:
            data["observe_error"] = str(exc)
            return data
        layers = sizes = None
        if detailed:
            from ..imagelayers import image_layers
            from ..observe import writable_sizes

            drivers = self.daemon.reconciler.drivers(desired.stack)
            layers, sizes = image_layers(drivers, desired, live), writable_sizes(desired, drivers)
        data["objects"] = status_rows(desired, live, plan, detailed=detailed, layers=layers, sizes=sizes)
        data["plan"] = plan_data(plan)
        data["edges"] = edges(desired)
        data["snapshots"] = self._snapshot_counts(worker.stack, desired)
        return data

    def with_health_output(self, worker: StackWorker, row: dict[str, Any]) -> dict[str, Any]:
        """A container's row with ``health_output``: its last health probe's output (one inspect), when it has one.

        Asked only for the one object the status page shows (``?object=``): never per row.
        """
        if row.get("kind") not in ("container", "service") or not row.get("live") or "health_output" in row:
            return row
        spec = worker.loop.desired.containers.get(row["name"]) if worker.loop and worker.loop.desired else None
        try:
            drivers = self.daemon.reconciler.drivers(worker.stack)
            runtimes = [drivers.get(Kind.CONTAINER, spec.driver)] if spec is not None else drivers.all(Kind.CONTAINER)
            for runtime in runtimes:
                output = runtime.health_output(row["name"]) if isinstance(runtime, RuntimeDriver) else None
                if output is not None:
                    return {**row, "health_output": output}
        except ReconcilerError:  # a panel shows "–" rather than fail: the engine may be gone mid-read
            pass
        return {**row, "health_output": None}

    def _snapshot_counts(self, stack: str, desired) -> dict[str, dict[str, Any]]:
        """Each volume's snapshots, counted, and the newest, from the record alone (no engine call): the page's."""
        rows = [row for engine in self.state.engines(stack) for row in self.state.stack(engine, stack).snapshots()]
        counts = {spec.name: {"count": 0, "newest": None, "newest_at": None} for spec in desired.volumes.values()
                  if not getattr(spec, "external", False)}
        return {**counts, **volume_summaries(snapshots_data(rows))}

    def snapshots(self, worker: StackWorker) -> list[dict[str, Any]]:
        """The stack's volume snapshots as ``snapshots list --output json`` shows them: the record's, and those its
        storage drivers hold that the record does not know (one engine read for its identity, one list per volume)."""
        from ..stacksnapshots import open_snapshots

        desired = worker.loop.desired if worker.loop else None
        snaps = open_snapshots(self.daemon.reconciler, worker.stack, runtime=desired.runtime if desired else None)
        return snapshots_data(snaps.snapshots())

    def history(self, worker: StackWorker, limit: int = 20) -> list[dict[str, Any]]:
        if not worker.stack:
            return []
        return [sync_data(s) for s in self.state.syncs(stack=worker.stack, limit=limit)]
