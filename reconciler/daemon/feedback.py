"""Feedback in git: each pass that applies a commit says so where people look, on the commit itself.

Two ways, per git source: ``notes: true`` appends the pass's result to the
commit's git note (``gitnotes``: ``git log --notes=reconciler`` shows what was
deployed where), and ``status:`` sets a commit status on GitHub, GitLab or
Gitea (``commitstatus``): pending when a pass starts on a new commit, success
or failure when it ends.

Which passes are told (the daemon passes a stack every ``resync`` and on
every engine event; the commit does not change with them):

- the pass that ends at a revision new to the stack, whatever its result;
- at the same revision, a pass whose result differs from the last one told,
  as long as the revision has not converged yet (a failed pass, then its retry
  that converged or was rolled back);
- after the daemon starts, its first pass of each stack only if it changed
  something or did not converge: a restart on a converged host writes nothing.

A pass that is suspended, or whose source could not be fetched, applied no
commit and is never told. Drift repaired at a revision that converged is the
history's business, not the commit's.

Nothing here runs on a pass's thread but a few dictionary look-ups and a
``put`` on a bounded queue: one thread (``feedback``) writes the notes and
sends the statuses, so a slow forge or remote never delays a pass. A failure
there is logged and counted (``reconciler_feedback_failures_total{kind}``),
never a pass's failure.
"""
from __future__ import annotations

import enum
import logging
import queue
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ReconcilerError, RolledBack
from ..following import unexpected
from ..loop import Pass
from ..redact import redact
from ..report import Status
from .commitstatus import StatusState, read_status_token, send_status, status_request
from .config import CommitStatus, Source
from .gitnotes import NoteWriter

__all__ = ["Deployed", "Feedback", "Result", "deployed", "worth_telling"]

log = logging.getLogger(__name__)

#: Jobs waiting for the feedback thread, at most; more are dropped (and counted) rather than hold a pass.
QUEUE = 1000
#: Changes a note names one by one; more are counted.
NAMED = 50
#: Lines of a failure's message a note keeps.
WHY_LINES = 20


class Result(enum.StrEnum):
    """How a pass that applied a commit ended, as a note and a status say it."""

    CONVERGED = "converged"
    FAILED = "failed"
    ROLLED_BACK = "rolled back"  # a replacement failed its rollout and the old container was put back


@dataclass(frozen=True)
class Deployed:
    """What one pass did with one commit: a block of the commit's note, and its commit status."""

    stack: str
    revision: str
    result: Result
    #: ``ACTION KIND:NAME`` per change the pass made or tried, a failed or skipped one marked so.
    changes: tuple[str, ...]
    #: Each action and how many, ``replace 1, create 2`` ("no changes" when none).
    counts: str
    #: Why it did not converge ("" when it did).
    why: str
    at: float
    host: str

    def note(self) -> str:
        """The block appended to the commit's note: one ``key: value`` line each, a long ``why`` indented."""
        shown = ", ".join(self.changes[:NAMED]) + (f", and {len(self.changes) - NAMED} more"
                                                    if len(self.changes) > NAMED else "")
        lines = [f"stack: {self.stack}", f"result: {self.result}",
                 f"changes: {len(self.changes)}" + (f" ({shown})" if shown else ""),
                 f"time: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.at))}", f"host: {self.host}"]
        if self.why:
            why = [line.rstrip() for line in self.why.splitlines() if line.strip()]
            kept = why[:WHY_LINES] + ([f"({len(why) - WHY_LINES} more lines)"] if len(why) > WHY_LINES else [])
            lines.append("why: " + "\n  ".join(line.strip() for line in kept))
        return "\n".join(lines)

    def summary(self) -> str:
        """One line for a commit status: the result, the plan's counts and why, on one line (the forge cuts it)."""
        why = " ".join(line.strip() for line in self.why.splitlines() if line.strip())
        return f"{self.result}: {self.counts}" + (f": {why}" if why else "")


def deployed(stack: str, revision: str, result: Pass, *, host: str, at: float | None = None) -> Deployed | None:
    """What pass ``result`` did with ``revision``; None when it applied no commit (no revision,
    suspended, its source not fetched)."""
    if not revision or result.suspended is not None or result.source_failed:
        return None
    outcomes = result.report.outcomes if result.report is not None else ()
    changes, counts = [], {}
    for outcome in outcomes:
        action = outcome.change.action.value
        counts[action] = counts.get(action, 0) + 1
        mark = "" if outcome.status is Status.OK else f" ({outcome.status})"
        changes.append(f"{action} {outcome.change.id}{mark}")
    failed = [o for o in outcomes if o.status is Status.FAILED]
    why = result.error or "\n".join(f"{o.change.id}: {o.error}" for o in failed)
    if result.ok:
        verdict = Result.CONVERGED
    elif any(isinstance(o.exception, RolledBack) for o in failed):
        verdict = Result.ROLLED_BACK
    else:
        verdict = Result.FAILED
    return Deployed(stack, revision, verdict, tuple(changes),
                    ", ".join(f"{action} {n}" for action, n in counts.items()) or "no changes",
                    "" if verdict is Result.CONVERGED else why or "the pass did not converge",
                    time.time() if at is None else at, host)


def worth_telling(known: tuple[str, Result] | None, now: Deployed) -> bool:
    """Whether a pass is told, given the (revision, result) last told of its stack (None: none since the start)."""
    if known is None:
        return bool(now.changes) or now.result is not Result.CONVERGED
    revision, result = known
    return revision != now.revision or (result is not Result.CONVERGED and now.result is not result)


@dataclass(frozen=True)
class _Job:
    source: str
    revision: str
    stack: str
    note: str = ""  # a note block, or a status:
    state: StatusState | None = None
    description: str = ""


class Feedback:
    """The daemon's feedback in git: told of every pass's start and end (on its thread), written on its own."""

    def __init__(self, sources: Sequence[Source], state_dir: Path, *,
                 on_failure: Callable[[str], None] | None = None, on_error: Callable[[str], None] | None = None,
                 host: str | None = None) -> None:
        """``on_failure(kind)`` counts a note or status not written; ``on_error(thread)`` a bug caught."""
        self.notes = {s.name: NoteWriter(s, state_dir) for s in sources if s.git and s.notes}
        self.statuses: dict[str, CommitStatus] = {s.name: s.status for s in sources if s.git and s.status}
        self.host = host or socket.gethostname()
        self.on_failure = on_failure or (lambda kind: None)
        self.on_error = on_error
        self._told: dict[str, tuple[str, Result]] = {}  # stack worker → (revision, result) last told
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=QUEUE)

    @property
    def enabled(self) -> bool:
        return bool(self.notes or self.statuses)

    # -- told on a pass's thread: cheap, never raises -------------------------------------------------------------

    def starting(self, worker: Any, desired: Any) -> None:
        """A pass of ``worker``'s stack is about to apply ``desired``: pending, if its revision is new to it."""
        try:
            status = self.statuses.get(worker.source.name)
            with self._lock:
                known = self._told.get(worker.id)
            if status is not None and desired.revision and known is not None and known[0] != desired.revision:
                self._put(_Job(worker.source.name, desired.revision, desired.stack or worker.path,
                               state=StatusState.PENDING, description=f"applying {desired.revision[:12]}"))
        except Exception as exc:  # feedback never fails a pass
            unexpected(exc, self.on_error)

    def passed(self, worker: Any, result: Pass) -> None:
        """A pass of ``worker``'s stack ended: its note and final status, if it is told (``worth_telling``).

        ``worker`` is the runner's ``StackWorker`` (typed ``Any``: the runner imports this module)."""
        try:
            source = worker.source.name
            if source not in self.notes and source not in self.statuses:
                return
            now = deployed(worker.stack or worker.path, worker.revision, result, host=self.host)
            if now is None:
                return
            with self._lock:
                known = self._told.get(worker.id)
                tell = worth_telling(known, now)
                if tell or known is None:
                    self._told[worker.id] = (now.revision, now.result)
            if not tell:
                return
            if source in self.statuses:
                state = StatusState.SUCCESS if now.result is Result.CONVERGED else StatusState.FAILURE
                self._put(_Job(source, now.revision, now.stack, state=state, description=now.summary()))
            if source in self.notes:
                self._put(_Job(source, now.revision, now.stack, note=now.note()))
        except Exception as exc:  # feedback never fails a pass
            unexpected(exc, self.on_error)

    def _put(self, job: _Job) -> None:
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            log.warning("feedback for %s@%s: %d jobs wait already, this one is dropped", job.stack,
                        job.revision[:12], QUEUE)
            self.on_failure("dropped")

    # -- the feedback thread ---------------------------------------------------------------------------------------

    def run(self) -> None:
        """Write notes and send statuses as they come, until ``close``; what was queued before it is done first."""
        while True:
            job = self._queue.get()
            jobs = [job]
            while job is not None:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                jobs.append(job)
            try:
                self._work([j for j in jobs if j is not None])
            except Exception as exc:  # a bug: the thread goes on
                unexpected(exc, self.on_error)
            if jobs[-1] is None:
                return

    def close(self) -> None:
        """End ``run`` once the jobs queued before now are done (the daemon stops)."""
        if self.enabled:
            try:
                self._queue.put(None, timeout=60)
            except queue.Full:  # the thread is stuck on a remote: it is a daemon thread, the process ends anyway
                log.warning("feedback: %d notes and statuses were not written before stopping", QUEUE)

    def _work(self, jobs: list[_Job]) -> None:
        """One round: every status in order (pending before the end), then each source's notes in one push."""
        for job in jobs:
            if job.state is not None:
                self._send(job)
        by_source: dict[str, list[tuple[str, str]]] = {}
        for job in jobs:
            if job.note:
                by_source.setdefault(job.source, []).append((job.revision, job.note))
        for source, blocks in by_source.items():
            try:
                self.notes[source].append(blocks)
            except ReconcilerError as exc:
                log.warning("source %s: %d git note(s) not written: %s", source, len(blocks), exc)
                self.on_failure("note")

    def _send(self, job: _Job) -> None:
        config = self.statuses[job.source]
        try:
            token = read_status_token(config)
            request = status_request(config, token, sha=job.revision, state=job.state, stack=job.stack,
                                     description=redact(job.description.replace(token, "(secret)")))
            send_status(request)
        except ReconcilerError as exc:
            log.warning("source %s: the %s status of %s on %s was not set: %s", job.source, job.state,
                        job.stack, job.revision[:12], exc)
            self.on_failure("status")
