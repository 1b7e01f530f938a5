"""The reconciler's own record: which objects it created, and what each sync did.

An engine object's labels say what it *claims*; anyone who can reach the
engine can copy them onto an object of their own. This record says what the
reconciler *did*, so deleting data never rests on a label alone
(DESIGN.md, "State"). The GitOps loop keeps its history in the same store.

Where: one SQLite database, ``state.db``, in the state directory:
``$RECONCILER_STATE_DIR``; else ``/var/lib/reconciler`` when running as root
(or when it is writable); else ``$XDG_STATE_HOME/reconciler``, by default
``~/.local/state/reconciler``. The directory is made with mode 0700 and must
belong to the user running the reconciler; the database is 0600, in WAL mode,
so a reader never blocks the writer.

What: ids, names, hashes, revisions and outcomes. Never a spec, a config, an
environment value or a secret.

Its tables, and every change to them in order, are ``reconciler.statedb``'s;
the record of one stack (``StackBook``) is ``reconciler.stackbook``'s.

Use::

    store = StateStore.open()                     # the default directory
    book = store.stack(engine_key(url), "web")    # one stack on one engine
    record = book.record(live)                    # a model.Record, for plan_changes
    book.creating(Kind.CONTAINER, "web-app-1", driver="docker", config_hash=h)
    book.created(Kind.CONTAINER, "web-app-1", container_id, driver="docker", config_hash=h)
    book.removed(Kind.CONTAINER, "web-app-1", container_id)
    store.add_sync(Sync(...)); store.syncs(stack="web")

History is kept per (engine, stack) within ``HistoryLimits``: at most ``keep`` rows,
none older than ``max_age``, the newest always; rows beyond are deleted in the
transaction that appends a sync, so the file stays the same size at any age.
Only kept revisions can be named to ``rollback --to`` by their first digits.
"""
from __future__ import annotations

import enum
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Sequence

from .errors import SpecError, StateError
from .model.previews import Preview
from .stackbook import StackBook
from .private import NotPrivate, create_private, private_dir
from .statedb import migrate, prune_statement, schema_version, transaction
from .values import value

__all__ = [
    "HistoryLimits",
    "StackBook",
    "StateStore",
    "Sync",
    "SyncResult",
    "default_state_dir",
    "engine_key",
]

STATE_DIR_ENV = "RECONCILER_STATE_DIR"
DB_NAME = "state.db"
#: A hold's ``data``: its volumes are to be restored (``rollback --with-data``), or were.
HOLD_DATA_PENDING, HOLD_DATA_RESTORED = "pending", "restored"
SYSTEM_DIR = Path("/var/lib/reconciler")

def default_state_dir() -> Path:
    """``$RECONCILER_STATE_DIR``, else ``/var/lib/reconciler`` for root, else the user's XDG state folder."""
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured)
    if os.geteuid() == 0 or os.access(SYSTEM_DIR, os.W_OK):
        return SYSTEM_DIR
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "reconciler"


def engine_key(engine: str | None) -> str:
    """The engine a record belongs to: its identity, else its URL, else ``$DOCKER_HOST``, else the local socket.

    ``engine`` is what ``Reconciler.engine_identity`` answers: the engine's own
    id (``docker info``) when the runtime driver tells it, read with the
    connection every pass makes anyway, so one engine has one record whatever
    URL reaches it. Where only a URL is known, two URLs for one engine give two
    records; the second starts empty and is rebuilt from labels without
    deleting anything, which errs on the safe side.
    """
    key = engine or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    return key.rstrip("/")


class SyncResult(enum.StrEnum):
    """How one apply or destroy ended."""

    CONVERGED = "converged"  # every change applied (or none was needed)
    FAILED = "failed"  # some change failed or was skipped
    REFUSED = "refused"  # nothing applied: a flag was missing, a policy vetoed, a spec was empty
    ERROR = "error"  # nothing or not everything applied: the engine, a lock or a plugin failed


@value
class Sync:
    """One row of the sync history."""

    engine: str
    stack: str
    #: The spec's git revision ("" outside a repository).
    revision: str
    #: The plan in a few words, e.g. ``create 2, delete 1`` (never values).
    summary: str
    result: SyncResult
    seconds: float
    #: UTC, ISO 8601; filled in when empty.
    started_at: str = ""
    #: What started the pass: a loop's ``Trigger`` value, or ``manual`` (the CLI); "" when not recorded.
    trigger: str = ""


@value
class HistoryLimits:
    """How much sync history each (engine, stack) keeps; its newest row is always kept."""

    #: At most this many rows per stack (at least 1).
    keep: int = 100
    #: None older than this, in seconds (30 days); None: no age limit.
    max_age: float | None = 30 * 86400.0

    def cutoff(self, now: float | None = None) -> str:
        """The oldest ``started_at`` kept (ISO 8601, UTC), "" when there is no age limit."""
        if self.max_age is None:
            return ""
        return _now(time.time() if now is None else now, -self.max_age)


def _now(at: float | None = None, delta: float = 0.0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((time.time() if at is None else at) + delta))


def _private_dir(path: Path) -> None:
    """Make ``path`` (mode 0700) or check that it is a directory of ours, tightening its mode."""
    try:
        private_dir(path)
    except NotPrivate as exc:
        if exc.owner is not None:
            raise StateError(f"the state directory {path} belongs to uid {exc.owner}, not to this user "
                             f"({os.geteuid()}); set {STATE_DIR_ENV} to a directory you own") from None
        raise StateError(f"the state directory {path} is not a directory (a symlink is refused)") from None
    except OSError as exc:
        raise StateError(f"cannot use the state directory {path}: {exc.strerror or exc}; "
                         f"set {STATE_DIR_ENV} to a directory you own") from exc


def _create_private(path: Path) -> None:
    """Make the database file (0600) if it is missing; refuse a symlink in its place.

    No descriptor of ours is ever opened on an existing database: closing one would drop the
    POSIX locks of every SQLite connection of this process on it (``private.create_private``).
    """
    try:
        create_private(path)
    except NotPrivate:
        raise StateError(f"the state database {path} is a symlink: refused") from None


class StateStore:
    """The state database: one connection, safe to share between the apply's worker threads."""

    def __init__(self, path: Path | str, *, history: HistoryLimits = HistoryLimits()) -> None:
        """Open (creating and migrating) the database file ``path``; its folder must exist.

        ``":memory:"`` keeps the record in memory, for tests (``in_memory``). ``history``: how much
        sync history each stack keeps (settable later: ``store.history = HistoryLimits(...)``).
        """
        self.path = path
        self.history = history
        self._lock = threading.Lock()
        self._writes = 0  # ``version``: this store's own writes, but for a stack's record alone
        self._stack_writes: dict[str, int] = {}  # ``version``: a stack's record's, by stack
        try:
            if str(path) != ":memory:":
                _create_private(Path(path))
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            migrate(self._db, self.path)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the state database {path}: {exc}") from exc

    @classmethod
    def in_memory(cls) -> StateStore:
        """A store that lives as long as this object: for tests, and for an engine held in memory."""
        return cls(":memory:")

    @classmethod
    def open(cls, directory: Path | None = None, *, history: HistoryLimits = HistoryLimits()) -> StateStore:
        """The store in ``directory`` (default: ``default_state_dir()``), made private if new."""
        directory = Path(directory) if directory is not None else default_state_dir()
        _private_dir(directory)
        return cls(directory / DB_NAME, history=history)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return schema_version(self._db)

    def _write(self, *statements: tuple[str, tuple], stack: str | None = None) -> None:
        """Run (sql, parameters) statements in one transaction; ``stack``: they write that stack's record alone
        (a ``StackBook``'s), which ``version`` tells apart from every other write."""
        with self._lock:
            if stack is None:
                self._writes += 1
            else:
                self._stack_writes[stack] = self._stack_writes.get(stack, 0) + 1
            try:
                with transaction(self._db):
                    for sql, params in statements:
                        self._db.execute(sql, params)
            except sqlite3.Error as exc:
                raise StateError(f"cannot write the state database {self.path}: {exc}") from exc

    def version(self, stack: str | None = None) -> tuple[int, int, int]:
        """What changes whenever ``stack``'s record may have: a commit of another connection (SQLite's
        ``data_version``), a write of this store's own that is not another stack's alone, or one of ``stack``'s.
        Equal twice: nothing that stack plans from was written between (another stack's passes do not count: at a
        thousand stacks one commit would otherwise make every other stack plan again at its next resync)."""
        with self._lock:
            try:
                return (self._db.execute("PRAGMA data_version").fetchone()[0], self._writes,
                        self._stack_writes.get(stack, 0) if stack is not None else sum(self._stack_writes.values()))
            except sqlite3.Error as exc:
                raise StateError(f"cannot read the state database {self.path}: {exc}") from exc

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"cannot read the state database {self.path}: {exc}") from exc

    # -- objects ---------------------------------------------------------------------------

    def stack(self, engine: str, stack: str) -> StackBook:
        """The record of one stack on one engine (``engine``: see ``engine_key``)."""
        return StackBook(self, engine, stack)

    def engines(self, stack: str) -> list[str]:
        """The engines (``engine_key``) on which the record holds ``stack``."""
        return [engine for (engine,) in self._read("SELECT engine FROM stacks WHERE stack = ? ORDER BY engine",
                                                   (stack,))]

    # -- history ---------------------------------------------------------------------------

    def add_sync(self, sync: Sync, *, before: Sequence[tuple[str, tuple]] = ()) -> None:
        """Append one apply's or destroy's outcome to the history, and trim the stack's history to
        ``self.history``, in one transaction; ``before``: (sql, parameters) of the pass's record to write
        first in the same transaction (``StackBook.synced``)."""
        limits = self.history
        self._write(*before,
                    ("INSERT INTO syncs (engine, stack, revision, started_at, seconds, summary, result, trigger) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (sync.engine, sync.stack, sync.revision, sync.started_at or _now(), round(sync.seconds, 3),
                      sync.summary, str(sync.result), sync.trigger)),
                    prune_statement(sync.engine, sync.stack, keep=limits.keep, cutoff=limits.cutoff()),
                    stack=sync.stack)

    # -- suspension ------------------------------------------------------------------------

    def suspend(self, stack: str) -> None:
        """Stop the loop from applying ``stack`` (it still reports drift) until ``resume``."""
        self._write(("INSERT OR IGNORE INTO suspended (stack, since) VALUES (?, ?)", (stack, _now())))

    def resume(self, stack: str) -> None:
        self._write(("DELETE FROM suspended WHERE stack = ?", (stack,)))

    def suspended(self) -> dict[str, str]:
        """Suspended stacks and since when (UTC, ISO 8601)."""
        return dict(self._read("SELECT stack, since FROM suspended"))

    # -- holds (rollback) ------------------------------------------------------------------

    def hold(self, stack: str, revision: str, *, source_revision: str, with_data: bool = False) -> None:
        """Keep ``stack`` at ``revision`` until its source moves past ``source_revision`` (or ``release``);
        ``with_data``: its volumes' data is to be restored as it was at ``revision`` (``data_restored`` after)."""
        self._write(("INSERT OR REPLACE INTO holds (stack, revision, source_revision, since, data) "
                     "VALUES (?, ?, ?, ?, ?)", (stack, revision, source_revision, _now(),
                                                HOLD_DATA_PENDING if with_data else "")))

    def hold_at(self, stack: str, revision: str, *, with_data: bool = False) -> str:
        """Hold ``stack`` at ``revision`` until its source moves past the revision returned: its last sync's, or
        a hold's already there (a second rollback keeps the first's).

        ``revision`` is a full commit id, or the start of one this stack has synced (``history`` shows 12 digits).
        ``with_data``: refused unless the record holds a snapshot taken when the stack left ``revision``.
        """
        revision = self._full_revision(stack, revision)
        held, last = self.holds().get(stack), self.syncs(stack=stack, limit=1)
        source = held[1] if held else (last[0].revision if last else "")
        if not source:
            raise SpecError(f"stack {stack!r} has no synced git revision in this state directory")
        if with_data and not self._read("SELECT 1 FROM snapshots WHERE stack = ? AND from_revision = ? LIMIT 1",
                                        (stack, revision)):
            raise SpecError(f"no snapshot was taken when {stack} left {revision[:12]}: there is no data to roll "
                            f"back to (roll back without --with-data to keep the volumes as they are)")
        self.hold(stack, revision, source_revision=source, with_data=with_data)
        return source

    def hold_data(self, stack: str) -> str:
        """Whether ``stack``'s hold restores data: ``pending`` (its next pass does), ``restored``, or ""."""
        found = self._read("SELECT data FROM holds WHERE stack = ?", (stack,))
        return found[0][0] if found else ""

    def data_restored(self, stack: str, revision: str) -> None:
        """The data of ``stack``'s hold at ``revision`` is restored: no later pass restores it again."""
        self._write(("UPDATE holds SET data = ? WHERE stack = ? AND revision = ? AND data = ?",
                     (HOLD_DATA_RESTORED, stack, revision, HOLD_DATA_PENDING)))

    def _full_revision(self, stack: str, revision: str) -> str:
        import re

        if re.fullmatch(r"[0-9a-f]{40}", revision):
            return revision
        if not re.fullmatch(r"[0-9a-f]{7,39}", revision):
            raise SpecError(f"--to: {revision!r} is not a commit id (7 to 40 hex digits)")
        found = sorted({rev for (rev,) in self._read(
            "SELECT DISTINCT revision FROM syncs WHERE stack = ? AND substr(revision, 1, ?) = ?",
            (stack, len(revision), revision))})
        if len(found) == 1:
            return found[0]
        if not found:
            raise SpecError(f"--to: no revision of stack {stack!r} synced in this state directory starts with "
                            f"{revision} (see 'reconcile history {stack}'), and it is not a full commit id")
        raise SpecError(f"--to: {revision} starts {len(found)} synced revisions of stack {stack!r}: give more digits")

    def release(self, stack: str) -> None:
        self._write(("DELETE FROM holds WHERE stack = ?", (stack,)))

    def holds(self) -> dict[str, tuple[str, str]]:
        """Held stacks: stack → (revision held at, the source's revision when it was held)."""
        return {stack: (rev, source) for stack, rev, source in
                self._read("SELECT stack, revision, source_revision FROM holds")}

    def quarantine(self, stack: str, image: str, version: str, reason: str) -> bool:
        """Never propose ``version`` of ``image`` (its key) for ``stack`` again, until released; false when it was
        quarantined already."""
        if version in self.quarantined(stack).get(image, {}):
            return False
        self._write(("INSERT OR IGNORE INTO quarantine (stack, image, version, since, reason) VALUES (?, ?, ?, ?, ?)",
                     (stack, image, version, _now(), reason)))
        return True

    def release_quarantine(self, stack: str, image: str, version: str) -> bool:
        """Let ``version`` be proposed again; false when it was not quarantined."""
        if version not in self.quarantined(stack).get(image, {}):
            return False
        self._write(("DELETE FROM quarantine WHERE stack = ? AND image = ? AND version = ?", (stack, image, version)))
        return True

    def quarantined(self, stack: str | None = None) -> dict[str, dict[str, tuple[str, str]]]:
        """Quarantined versions of ``stack`` (of every stack when None, keyed ``stack/image``):
        image key → version → (since, reason)."""
        out: dict[str, dict[str, tuple[str, str]]] = {}
        for name, image, version, since, reason in self._read(
                "SELECT stack, image, version, since, reason FROM quarantine WHERE ? IS NULL OR stack = ? "
                "ORDER BY stack, image, since", (stack, stack)):
            out.setdefault(image if stack is not None else f"{name}/{image}", {})[version] = (since, reason)
        return out

    # -- previews --------------------------------------------------------------------------

    def save_preview(self, preview: Preview) -> None:
        """Keep ``preview`` (a new one, or what changed of one: its key is source, branch and path)."""
        self._write(("INSERT OR REPLACE INTO previews (source, branch, path, stack, base, revision, created, pushed, "
                     "state, ports, urls, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (preview.source, preview.branch, preview.path, preview.stack, preview.base, preview.revision,
                      preview.created, preview.pushed, preview.state, json.dumps(dict(preview.ports), sort_keys=True),
                      json.dumps(list(preview.urls)), preview.reason)))

    def forget_preview(self, source: str, branch: str, path: str) -> None:
        """The preview is gone (its stack destroyed): the record forgets it, and the host ports it had."""
        self._write(("DELETE FROM previews WHERE source = ? AND branch = ? AND path = ?", (source, branch, path)))

    def previews(self, source: str | None = None) -> list[Preview]:
        """The previews of ``source`` (of every source when None), by source, branch and path."""
        rows = self._read("SELECT source, branch, path, stack, base, revision, created, pushed, state, ports, urls, "
                          "reason FROM previews WHERE ? IS NULL OR source = ? ORDER BY source, branch, path",
                          (source, source))
        return [Preview(source=src, branch=branch, path=path, stack=stack, base=base, revision=revision,
                        created=created, pushed=pushed, state=state, ports=json.loads(ports),
                        urls=tuple(json.loads(urls)), reason=reason)
                for src, branch, path, stack, base, revision, created, pushed, state, ports, urls, reason in rows]

    def syncs(self, *, stack: str | None = None, engine: str | None = None, limit: int = 20) -> list[Sync]:
        """The latest syncs, newest first, optionally of one stack and/or engine."""
        rows = self._read(
            "SELECT engine, stack, revision, summary, result, seconds, started_at, trigger FROM syncs "
            "WHERE (? IS NULL OR stack = ?) AND (? IS NULL OR engine = ?) ORDER BY id DESC LIMIT ?",
            (stack, stack, engine, engine, limit))
        return [Sync(e, s, rev, summary, SyncResult(result), secs, at, why)
                for e, s, rev, summary, result, secs, at, why in rows]
