"""Preview stacks per branch: a git source's ``previews:`` gives each branch that matches its own copy of each stack.

Why the daemon does it, not a CI job: the daemon already follows the
repository with its credentials, knows every stack's spec and owns what it
creates, so it can make a preview, keep it converged and repaired like any
stack, and remove it, volumes included, when the branch goes.

How: every poll round of a source (and once at start) lists the remote's
branches with one ``git ls-remote --heads`` (the source's credentials). Each
branch that matches ``branches`` (never the source's own ref) gets, per stack
path, a ``StackWorker`` of its own: a shallow checkout of the branch, and a
spec loaded as the stack's and rebuilt under the preview's name
(``reconciler.previews``: its own names, networks and volumes, host ports
from ``port_range`` or none, the caps of ``limits``). The record
(``StateStore.previews``) keeps each preview's name, ports, URLs, state and
when its branch last moved, so a restarted daemon gives a preview the same
names and ports. A branch that moved is fetched and its previews' passes run;
one deleted, merged (its head is among the last ``MERGE_DEPTH`` commits of the
source's ref, having been ahead of it), or idle past ``ttl`` is removed: its
worker stops, its stack is destroyed with its volumes, its checkout deleted.
A merged or expired preview stays in the record (``expired``) until its
branch moves again. Beyond ``max`` branches, a branch waits, and says so.
Plugins are told (``reconciler_preview_changed``).
"""
from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import logging
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ReconcilerError, SourceError
from ..following import unexpected
from ..loop import Trigger
from ..model import DesiredState, Preview, PreviewRules
from ..plugins import PluginError, call_hook
from ..previews import allocate_ports, port_keys, preview_name, preview_of, preview_urls
from ..reconcile import ApplyRequest
from ..redact import without_credentials
from ..units import age_text
from .config import Source
from .gitenv import git_message, source_git
from .sources import GitCheckout
from .stackworker import StackWorker

__all__ = ["MERGE_DEPTH", "PreviewSlot", "Previews", "engine_host"]

log = logging.getLogger(__name__)

#: How far back in the source's ref a branch's head is looked for, to tell it was merged.
MERGE_DEPTH = 50
#: Seconds a removal waits for the preview's pass in flight to end.
PASS_WAIT = 120.0


@dataclasses.dataclass
class PreviewSlot:
    """What the daemon holds of one running preview beside its worker (``StackWorker.preview``)."""

    origin: Source  # the source whose branch it previews
    rules: PreviewRules
    record: Preview
    #: The branch's head has commits the source's ref does not (None: not known yet): a later head of the ref that
    #: contains it means the branch was merged.
    ahead: bool | None = None
    #: The runtime of its stack's last spec (what ``destroy`` keys the record on).
    runtime: str | None = None


class Previews:
    """The previews of every git source with ``previews:``; ``daemon`` is the runner's ``Daemon`` (typed ``Any``:
    the runner imports this module)."""

    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon
        self.sources = [s for s in daemon.config.sources if s.git and s.previews]
        self.engine_host = engine_host(daemon.config.engine)
        self._root = Path(daemon.config.state_dir) / "previews"
        self._rounds = {s.name: threading.Lock() for s in self.sources}  # one round of a source at a time
        self._lock = threading.Lock()  # the slots and the record's previews
        self._main: dict[str, str] = {}  # source → the revision of its ref the last round saw

    @property
    def enabled(self) -> bool:
        return bool(self.sources)

    def start(self, pool: Any) -> None:
        """A first round of each source now, on ``pool`` (the fetchers): previews come back as the daemon starts;
        the previews of a git source whose ``previews:`` was taken out are removed."""
        for source in self.daemon.config.sources:
            if source.git and (source.previews or self.daemon.reconciler.state.previews(source.name)):
                pool.submit(self._first_round, source)

    def _first_round(self, source: Source) -> None:
        try:
            if source.previews:
                self.round(source)
            else:
                for record in self.daemon.reconciler.state.previews(source.name):
                    self._remove(record, "previews are off for this source", forget=True)
        except Exception as exc:  # reported and counted; the poll rounds go on
            unexpected(exc, self.daemon.metrics.worker_error)

    # -- one round ---------------------------------------------------------------------------------

    def poll(self, source: Source) -> None:
        """A poll round of ``source`` fetched its ref: a round of its previews, if it has ``previews:``; a remote
        that cannot be listed is logged (its previews stay as they are)."""
        if source.previews is None:
            return
        try:
            self.round(source)
        except SourceError as exc:
            log.warning("%s", exc)

    def round(self, source: Source) -> None:
        """List the source's branches; make, update, expire and remove its previews. ``SourceError`` when the
        remote cannot be listed (nothing is removed then: an unreachable remote deletes no branch)."""
        rules = source.previews
        if rules is None or not source.git:
            return
        with self._rounds[source.name]:
            heads = self._heads(source)
            wanted = {branch: head for branch, head in heads.items()
                      if branch != source.git.ref and any(fnmatch.fnmatchcase(branch, p) for p in rules.branches)}
            records = {(p.branch, p.path): p for p in self.daemon.reconciler.state.previews(source.name)}
            main = self.daemon.checkouts[source.name].revision
            merged = self._merged(source, main) if main and main != self._main.get(source.name) else set()
            self._main[source.name] = main
            now = time.time()
            for (branch, path), record in sorted(records.items()):
                if branch not in wanted:
                    self._remove(record, "branch deleted", forget=True)
                elif branch in merged and record.state != "expired":
                    self._remove(record, "branch merged", forget=False)
                elif (rules.ttl is not None and record.state in ("starting", "up", "failed")
                      and wanted[branch] == record.revision and now - record.pushed > rules.ttl):
                    self._remove(record, f"idle past its ttl ({age_text(rules.ttl)})", forget=False)
            records = {(p.branch, p.path): p for p in self.daemon.reconciler.state.previews(source.name)}
            active = {branch for (branch, _), p in records.items() if p.state in ("starting", "up", "failed")}
            for branch in sorted(wanted, key=lambda b: (b not in active, b)):
                self._branch(source, rules, branch, wanted[branch], records, active, now)

    def _branch(self, source: Source, rules: PreviewRules, branch: str, head: str, records: dict,
                active: set[str], now: float) -> None:
        """One branch that matches: its previews made, fetched when it moved, or told to wait."""
        for path in source.paths:
            record = records.get((branch, path)) or Preview(source=source.name, branch=branch, path=path,
                                                          created=now, pushed=now, state="waiting")
            moved = head != record.revision
            if record.state == "expired" and not moved:
                continue  # merged or idle: back at the branch's next push
            if branch not in active and len(active) >= rules.max:
                reason = f"{source.name} has its {rules.max} previews already: this branch waits for one to go"
                if (record.state, record.reason) != ("waiting", reason):
                    self._save(dataclasses.replace(record, state="waiting", reason=reason, urls=()))
                continue
            active.add(branch)
            if record.state in ("waiting", "expired"):
                record = dataclasses.replace(record, state="starting", reason="", created=now, pushed=now)
                self._save(record)
            worker = self._worker(source, rules, record)
            if moved or worker.checkout.revision != head:
                self._fetch(worker, head, now)

    def _fetch(self, worker: StackWorker, head: str, now: float) -> None:
        """The branch moved: fetch its checkout, and run a pass of its preview."""
        slot: PreviewSlot = worker.preview
        try:
            self.daemon.refresh(worker.source)
        except SourceError as exc:
            self.daemon.not_fetched(worker, exc)
            return
        fetched = worker.checkout.revision or head
        if fetched != slot.record.revision:
            pushed = now if slot.record.revision else slot.record.pushed
            self._save(dataclasses.replace(slot.record, revision=fetched, pushed=pushed), slot)
            slot.ahead = not self._contains(worker, self.daemon.checkouts[slot.origin.name].revision, fetched)
        worker.loop.trigger(Trigger.SOURCE)

    # -- the preview's worker ----------------------------------------------------------------------

    def _worker(self, source: Source, rules: PreviewRules, record: Preview) -> StackWorker:
        key = (source.name, record.branch, record.path)
        with self._lock:
            for worker in self.daemon.workers:
                if worker.preview is not None and _key(worker.preview) == key:
                    return worker
        git = dataclasses.replace(source.git, ref=record.branch)
        branch_source = dataclasses.replace(source, name=f"{source.name}:{record.branch}", git=git,
                                            paths=(record.path,), previews=None, write=None, notes=False,
                                            status=None, adopt_compose=False)
        checkout = GitCheckout(branch_source, Path(self.daemon.config.state_dir))
        checkout.root = self._root / source.name / _folder(record.branch)
        worker = StackWorker(branch_source, record.path, checkout,
                             preview=PreviewSlot(origin=source, rules=rules, record=record))
        self.daemon.add_worker(worker)
        return worker

    def read(self, worker: StackWorker, where: Path, tree: Path | None, revision: str) -> DesiredState:
        """A preview's spec: the stack's, read at the branch's revision and rebuilt under the preview's name, with
        its own ports and caps (``reconciler.previews.preview_of``). Its name, ports and URLs go in the record."""
        slot: PreviewSlot = worker.preview
        base = self.daemon.read_spec(worker, where, tree, revision).stack
        record = slot.record
        name = record.stack if record.stack and record.base == base else \
            preview_name(base, record.branch, self._taken_names(worker))
        desired = self.daemon.read_spec(worker, where, tree, revision, stack=name)
        with self._lock:
            ports = self._ports(worker, desired, record)
        adapted = preview_of(desired, slot.rules, ports, tree=tree)
        urls = preview_urls(adapted.desired, slot.rules, self.engine_host)
        slot.runtime = adapted.desired.runtime
        if (name, base, dict(ports), urls) != (record.stack, record.base, dict(record.ports), record.urls):
            self._save(dataclasses.replace(record, stack=name, base=base, ports=ports, urls=urls), slot)
        for note in adapted.notes:
            log.info("preview %s: %s", name, note)
        return adapted.desired

    def passed(self, worker: StackWorker, result: Any) -> None:
        """After each pass of a preview: its state in the record; ``up`` told once it first applies."""
        slot: PreviewSlot | None = worker.preview
        if slot is None or result.source_failed or worker not in self.daemon.workers:  # removed meanwhile
            return
        record = slot.record
        state = "up" if result.ok else "failed"
        reason = "" if result.ok else (result.error or "the pass failed")
        if (state, reason) == (record.state, record.reason) or record.state in ("waiting", "expired"):
            return
        came_up = state == "up" and record.state == "starting"
        self._save(dataclasses.replace(record, state=state, reason=reason[:500]), slot)
        if came_up:
            self._tell(slot.record, "up")

    # -- removal -----------------------------------------------------------------------------------

    def _remove(self, record: Preview, reason: str, *, forget: bool) -> None:
        """Stop the preview's worker, destroy its stack with its volumes, delete its checkout; the record forgets
        it (``forget``) or keeps it ``expired``. A destroy that fails keeps the record as it was: the next round
        tries again."""
        key = (record.source, record.branch, record.path)
        worker = next((w for w in self.daemon.workers if w.preview is not None and _key(w.preview) == key), None)
        runtime = worker.preview.runtime if worker is not None else None
        if worker is not None:
            self.daemon.drop_worker(worker, wait=PASS_WAIT)
        if record.stack:
            try:
                report = self.daemon.reconciler.destroy(record.stack, ApplyRequest(prune_volumes=True),
                                                        runtime=runtime)
            except ReconcilerError as exc:
                log.warning("preview %s (%s): not removed yet: %s", record.stack, record.branch, exc)
                return
            if not report.ok:
                log.warning("preview %s (%s): not removed yet: %s", record.stack, record.branch,
                            "; ".join(o.error for o in report.outcomes if o.error)[:500])
                return
            self.daemon.metrics.forget(record.stack)
        shutil.rmtree(self._root / record.source / _folder(record.branch), ignore_errors=True)
        gone = dataclasses.replace(record, state="expired", reason=reason, urls=())
        if forget:
            with self._lock:
                self.daemon.reconciler.state.forget_preview(record.source, record.branch, record.path)
        else:
            self._save(gone)
        if record.state != "waiting":
            log.info("preview %s (%s) removed: %s", record.stack or record.branch, record.branch, reason)
            self._tell(gone, "down")

    # -- helpers -----------------------------------------------------------------------------------

    def _heads(self, source: Source) -> dict[str, str]:
        """branch → head, from the remote (``git ls-remote --heads``, with the source's credentials)."""
        git = source.git
        askpass = self._root / source.name
        askpass.mkdir(parents=True, exist_ok=True, mode=0o700)
        done, token = source_git(source.name, git, askpass, ["ls-remote", "--heads", git.url])
        if done.returncode != 0:
            raise SourceError(f"source {source.name}: listing the branches of {without_credentials(git.url)} "
                              f"failed:\n{git_message(done.stderr, done.returncode, token)}")
        heads = {}
        for line in done.stdout.decode(errors="replace").splitlines():
            head, _, ref = line.partition("\t")
            if ref.startswith("refs/heads/"):
                heads[ref[len("refs/heads/"):]] = head
        return heads

    def _merged(self, source: Source, main: str) -> set[str]:
        """The branches whose previews were ahead of the source's ref, and whose heads its head ``main`` now
        contains."""
        merged = set()
        for worker in list(self.daemon.workers):
            slot = worker.preview
            if slot is not None and slot.origin.name == source.name and slot.ahead and slot.record.revision \
                    and self._contains(worker, main, slot.record.revision):
                merged.add(slot.record.branch)
        return merged

    def _contains(self, worker: StackWorker, main: str, head: str) -> bool:
        """Whether ``head`` is among the last ``MERGE_DEPTH`` commits of the source's ref (at ``main``), fetched
        into the preview's repository; false when git cannot tell."""
        if not main or not head:
            return False
        if main == head:
            return True
        git, name = worker.source.git, worker.source.name
        repo = str(worker.checkout.root / "repo.git")
        ref = worker.preview.origin.git.ref
        try:
            fetched, _ = source_git(name, git, worker.checkout.root, ["--git-dir", repo, "fetch", "--depth",
                                    str(MERGE_DEPTH), "--no-tags", "--quiet", git.url, f"+{ref}:refs/reconciler/main"])
            if fetched.returncode != 0:
                return False
            found, _ = source_git(name, git, worker.checkout.root,
                                  ["--git-dir", repo, "merge-base", "--is-ancestor", head, "refs/reconciler/main"])
            return found.returncode == 0
        except SourceError:  # git could not run: not known, so not merged
            return False

    def _ports(self, worker: StackWorker, desired: DesiredState, record: Preview) -> dict[str, int]:
        """The preview's host ports: those it has kept, new ones free in ``port_range``. Holds ``_lock``."""
        rules: PreviewRules = worker.preview.rules
        keys = port_keys(desired) if rules.ports == "remap" else []
        taken = self._taken_ports(worker)
        for _ in range(32):  # a port found busy on the host is skipped, and the allocation made again
            ports = allocate_ports(keys, record.ports, taken, rules)
            busy = {port for key, port in ports.items() if key not in record.ports and not self._free(port)}
            if not busy:
                return ports
            taken |= busy
        return ports

    def _taken_ports(self, worker: StackWorker) -> set[int]:
        """Host ports other stacks publish, as their specs say, and other previews were given."""
        taken: set[int] = set()
        for other in list(self.daemon.workers):
            desired = other.loop.desired if other is not worker and other.loop else None
            for spec in desired.containers.values() if desired else ():
                taken.update(port.published for port in spec.ports if port.published)
        mine = _key(worker.preview)
        for record in self.daemon.reconciler.state.previews():
            if (record.source, record.branch, record.path) != mine:
                taken.update(record.ports.values())
        return taken

    def _free(self, port: int) -> bool:
        """Whether nothing listens on ``port`` here, when the engine is this machine (else: not known, so free)."""
        if self.engine_host not in ("localhost", "127.0.0.1"):
            return True
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                return False
        return True

    def _taken_names(self, worker: StackWorker) -> set[str]:
        names = {w.stack for w in list(self.daemon.workers) if w is not worker and w.stack}
        mine = _key(worker.preview)
        names.update(r.stack for r in self.daemon.reconciler.state.previews()
                     if r.stack and (r.source, r.branch, r.path) != mine)
        return names

    def _save(self, record: Preview, slot: PreviewSlot | None = None) -> None:
        with self._lock:
            self.daemon.reconciler.state.save_preview(record)
            if slot is not None:
                slot.record = record

    def _tell(self, record: Preview, event: str) -> None:
        try:
            call_hook(self.daemon.reconciler.pm, "reconciler_preview_changed", preview=record, event=event)
        except PluginError as exc:
            log.warning("%s", exc)


def _key(slot: PreviewSlot) -> tuple[str, str, str]:
    return slot.origin.name, slot.record.branch, slot.record.path


def _folder(branch: str) -> str:
    """A folder name for ``branch`` (which may hold ``/``): readable, and unique by its hash."""
    readable = "".join(c if c.isalnum() or c in "-_." else "-" for c in branch)[:40]
    return f"{readable}-{hashlib.sha256(branch.encode()).hexdigest()[:8]}"


def engine_host(engine: str | None) -> str:
    """The host name of the engine the previews run on: a ``tcp://`` or ``ssh://`` engine's host, else
    ``localhost`` (a local socket; several managers or a fleet: their first)."""
    import os

    url = (engine or os.environ.get("DOCKER_HOST") or "").split(",")[0]
    parts = urlsplit(url) if "://" in url else None
    if parts is not None and parts.scheme in ("tcp", "ssh", "http", "https") and parts.hostname:
        return parts.hostname
    return "localhost"

