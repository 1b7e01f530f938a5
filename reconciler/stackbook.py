"""The record of one stack on one engine: what ``reconciler.state`` keeps per stack, read and written.

``StateStore.stack(engine, stack)`` hands out a ``StackBook``: the planner's
``model.Record`` is read from it (created and adopted objects, with the claims
of objects adopted from another tool), and an apply writes into it as
objects come and go, through ``BookRecorder`` (the executor's ``Recorder``).
Kept apart from the store, which owns the database file, its schema and the
sync history, so each stays one concern.

A pass's book (``for_pass``) holds back what is not write-ahead (the settled
ids of creates that were under way, the objects adopted or released) and
writes it in the transaction of the pass's sync row (``synced``), or of the
first write-ahead row before it (``creating`` before a create, ``created``
after it, a removal): those stay one transaction each, in order, as they
make a SIGKILL mid-apply recoverable. A converged pass writes once.
The snapshots a release takes are the book's too (``reconciler.snapshotrecord``).
"""
from __future__ import annotations

import json
import threading
import time
from typing import Any, Iterable

from .labels import CONFIG_HASH, DRIVER, is_owned
from .model import Claim, DesiredState, Kind, LiveObject, LiveState, Record
from .snapshotrecord import SnapshotRecord, SnapshotRow
from .values import value

__all__ = ["ADOPTED", "CREATED", "BookRecorder", "ObjectRow", "QuietPasses", "SnapshotRow", "StackBook"]

CREATED, ADOPTED = "created", "adopted"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@value
class ObjectRow:
    """One object in the record."""

    kind: Kind
    name: str
    #: The id the object's driver reports ("" while its create is under way).
    object_id: str
    driver: str
    config_hash: str
    #: ``created`` or ``adopted``.
    origin: str
    created_at: str
    #: An object adopted from another tool: the ``Claim`` the record holds for it, as JSON ("" for others).
    claims: str = ""


class StackBook(SnapshotRecord):
    """The record of one stack on one engine: read it for the planner, write it as objects come and go,
    and the volume snapshots its releases took (``SnapshotRecord``)."""

    def __init__(self, store: Any, engine: str, stack: str) -> None:
        """``store``: the ``state.StateStore`` holding the database."""
        self.store = store
        self.engine = engine
        self.stack = stack
        self._held: list[tuple[str, tuple]] | None = None  # None: every write at once
        self._lock = threading.Lock()

    def for_pass(self) -> StackBook:
        """This book, from now on holding back its writes that are not write-ahead until ``synced``."""
        with self._lock:
            if self._held is None:
                self._held = []
        return self

    def synced(self, sync: Any, *, history: bool = True) -> None:
        """Append ``sync`` (a ``state.Sync``) to the history with what the pass held back, in one transaction;
        ``history`` false: only what the pass held back (nothing at all when it held nothing back)."""
        with self._lock:
            held, self._held = self._held or [], None
        if history:
            self.store.add_sync(sync, before=held)
        elif held:
            self.store._write(*held, stack=self.stack)

    def _later(self, *statements: tuple[str, tuple]) -> None:
        """Write ``statements`` now, or with the pass's next write (for a pass's book)."""
        with self._lock:
            if self._held is not None:
                self._held.extend(statements)
                return
        self.store._write(*statements, stack=self.stack)

    def _now_with_held(self, *statements: tuple[str, tuple]) -> None:
        """Write ``statements`` now (write-ahead), after what the pass held back, in one transaction."""
        with self._lock:
            held = self._held or []
            if self._held is not None:
                self._held = []
            if held or statements:
                self.store._write(*held, *statements, stack=self.stack)

    def known(self) -> bool:
        """Whether the record has ever held anything for this stack on this engine."""
        return bool(self.store._read("SELECT 1 FROM stacks WHERE engine = ? AND stack = ?", (self.engine, self.stack)))

    def objects(self) -> list[ObjectRow]:
        """Every object recorded for the stack, pending creates included."""
        rows = self.store._read(
            "SELECT kind, name, object_id, driver, config_hash, origin, created_at, claims FROM objects "
            "WHERE engine = ? AND stack = ? ORDER BY kind, name", (self.engine, self.stack))
        return [ObjectRow(Kind(kind), *rest) for kind, *rest in rows]

    def record(self, live: LiveState | None = None, *, settle: bool = False) -> Record:
        """What the planner needs: the (kind, name, id) the reconciler created or adopted.

        A create whose id is not known yet (under way when the process died)
        counts for the live object of that name that claims the stack with the
        config hash it was created with. With ``settle`` (an apply, holding the stack's lock) those ids
        are written down, and pending creates that match nothing are dropped:
        they failed, and must not vouch for an object someone makes later.
        """
        rows = self.objects()
        resolved: list[tuple[ObjectRow, str]] = []
        created, adopted, claims = set(), set(), {}
        for row in rows:
            object_id = row.object_id
            if not object_id:
                object_id = _match(row, live, self.stack) if live is not None else ""
                resolved.append((row, object_id))
                if not object_id:
                    continue
            (created if row.origin == CREATED else adopted).add((row.kind, row.name, object_id))
            if row.claims:
                claims[(row.kind, row.name, object_id)] = _claim(row.claims)
        if settle and resolved:
            self._settle(resolved)
        return Record(created=frozenset(created), adopted=frozenset(adopted), missing=not rows and not self.known(),
                      where="" if str(self.store.path) == ":memory:" else str(self.store.path), claims=claims)

    def _settle(self, resolved: list[tuple[ObjectRow, str]]) -> None:
        drop = [self._drop_pending(row.kind, row.name) for row, _ in resolved]
        found = [(row.kind, row.name, object_id, row.driver, row.config_hash) for row, object_id in resolved if object_id]
        self._later(*drop, *self._inserts(CREATED, found))

    def creating(self, kind: Kind, name: str, *, driver: str, config_hash: str) -> None:
        """Note a create about to happen, so an id learnt later (or never) can be matched to it."""
        self._now_with_held(*self._inserts(CREATED, [(kind, name, "", driver, config_hash)]))

    def created(self, kind: Kind, name: str, object_id: str, *, driver: str, config_hash: str) -> None:
        """Record an object the reconciler created, by the id its driver returned (in place of its pending row)."""
        self._now_with_held(self._drop_pending(kind, name),
                            *self._inserts(CREATED, [(kind, name, object_id, driver, config_hash)]))

    def adopted(self, objects: Iterable[LiveObject]) -> None:
        """Record objects taken over without being created (``--adopt``, or a record rebuilt from labels)."""
        rows = [(o.kind, o.name, o.id, o.labels.get(DRIVER, ""), o.config_hash) for o in objects]
        if rows:
            self._later(*self._inserts(ADOPTED, rows))

    def taken_over(self, taken: Iterable[tuple[LiveObject, str, Claim]]) -> None:
        """Record objects adopted from another tool: each (live object, driver, the ``Claim`` vouched for it).

        A container kept as it runs under a new name is recorded under that name.
        """
        rows = [(obj.kind, obj.name, obj.id, driver, claim.labels.get(CONFIG_HASH, ""),
                 json.dumps({"labels": dict(claim.labels), "requires": dict(claim.requires),
                             "images": dict(claim.images)}, sort_keys=True))
                for obj, driver, claim in taken]
        if rows:
            self._later(*self._inserts(ADOPTED, rows))

    def same_image(self, container_id: str, image_id: str, same_as: str) -> None:
        """Note in an adopted container's claim that the image it runs holds what ``same_as`` (the build) holds."""
        self._now_with_held()  # the claims this reads may have been written by this pass
        rows = self.store._read("SELECT name, claims FROM objects WHERE engine = ? AND stack = ? AND kind = ? "
                                "AND object_id = ? AND claims != ''",
                                (self.engine, self.stack, Kind.CONTAINER.value, container_id))
        for name, text in rows:
            claim = _claim(text)
            data = {"labels": dict(claim.labels), "requires": dict(claim.requires),
                    "images": {**claim.images, image_id: same_as}}
            self._now_with_held(("UPDATE objects SET claims = ? WHERE engine = ? AND stack = ? AND kind = ? "
                                 "AND name = ? AND object_id = ?", (json.dumps(data, sort_keys=True), self.engine,
                                 self.stack, Kind.CONTAINER.value, name, container_id)))

    def release_external(self, desired: DesiredState, record: Record) -> None:
        """Take out of the record what the spec now calls external: a later ``destroy``, which reads no spec,
        must not remove a network or volume the stack made (or adopted) and then handed over."""
        listed = {(kind, name) for kind, name, _ in record.created | record.adopted}
        external = [(kind, spec.name) for kind in (Kind.NETWORK, Kind.VOLUME)
                    for spec in desired.section(kind).values()
                    if getattr(spec, "external", False) and (kind, spec.name) in listed]
        if external:
            self.released(external)

    def released(self, objects: Iterable[tuple[Kind, str]]) -> None:
        """Forget objects the spec now calls external (by kind and name): the stack no longer owns them."""
        self._later(*(("DELETE FROM objects WHERE engine = ? AND stack = ? AND kind = ? AND name = ?",
                             (self.engine, self.stack, Kind(kind).value, name)) for kind, name in objects))

    def removed(self, kind: Kind, name: str, object_id: str) -> None:
        """Forget an object the reconciler deleted (a container by its id: it may have been renamed aside)."""
        if Kind(kind) is Kind.CONTAINER and object_id:
            self._now_with_held(("DELETE FROM objects WHERE engine = ? AND stack = ? AND kind = ? AND object_id = ?",
                               (self.engine, self.stack, Kind.CONTAINER.value, object_id)))
            return
        self._now_with_held(("DELETE FROM objects WHERE engine = ? AND stack = ? AND kind = ? AND name = ? "
                             "AND object_id = ?", (self.engine, self.stack, Kind(kind).value, name, object_id)))

    def _drop_pending(self, kind: Kind, name: str) -> tuple[str, tuple]:
        return ("DELETE FROM objects WHERE engine = ? AND stack = ? AND kind = ? AND name = ? AND object_id = ''",
                (self.engine, self.stack, Kind(kind).value, name))

    def _inserts(self, origin: str, rows: list[tuple]) -> list[tuple[str, tuple]]:
        """The stack's row (once) and one row per (kind, name, id, driver, hash[, claims]); an existing one is replaced."""
        key, now = (self.engine, self.stack), _now()
        stack = ("INSERT OR IGNORE INTO stacks (engine, stack, first_seen) VALUES (?, ?, ?)", (*key, now))
        sql = ("INSERT OR REPLACE INTO objects (engine, stack, kind, name, object_id, driver, config_hash, origin, "
               "created_at, claims) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        return [stack] + [(sql, (*key, Kind(kind).value, name, object_id, driver, config_hash, origin, now,
                                 claims[0] if claims else ""))
                          for kind, name, object_id, driver, config_hash, *claims in rows]


def _claim(text: str) -> Claim:
    """A record row's ``claims`` column, read back (a row it cannot read vouches for nothing)."""
    try:
        data = json.loads(text)
        return Claim(labels=dict(data.get("labels") or {}), requires=dict(data.get("requires") or {}),
                     images=dict(data.get("images") or {}))
    except (ValueError, AttributeError, TypeError):
        return Claim(requires={"\0": "unreadable"})


def _match(row: ObjectRow, live: LiveState, stack: str) -> str:
    """The id of the live object a pending create made: same kind and name, claiming the stack, same hash."""
    obj = live.of(row.kind).get(row.name)
    if obj is None or not is_owned(obj.labels, stack, kind=row.kind) or obj.config_hash != row.config_hash:
        return ""
    return obj.id


class BookRecorder:
    """The executor's ``Recorder``, writing into the stack's record as objects come and go."""

    def __init__(self, book: StackBook) -> None:
        self.book = book

    def creating(self, change: Any, config_hash: str) -> None:
        self.book.creating(change.kind, change.name, driver=change.driver, config_hash=config_hash)

    def created(self, change: Any, config_hash: str, object_id: str) -> None:
        self.book.created(change.kind, change.name, object_id, driver=change.driver, config_hash=config_hash)

    def removed(self, change: Any) -> None:
        self.book.removed(change.kind, change.name, change.live_id or change.name)

    def kept(self, change: Any, image_id: str, same_as: str) -> None:
        self.book.same_image(change.live_id, image_id, same_as)


class QuietPasses:
    """Which passes need no history row: a loop's resyncs and looks (``QUIET_TRIGGERS``) that find nothing to
    do, pass after pass at the same revision, are the one row the first of them wrote. A thousand converged
    stacks then write nothing a minute, and their real changes stay in the kept history."""

    QUIET_TRIGGERS = ("resync", "engine")  # ``loop.Trigger`` values: passes nobody asked for by name

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._revisions: dict[tuple[str, str], str] = {}  # (engine, stack) → the revision its quiet row is at

    def repeated(self, book: StackBook, revision: str, *, quiet: bool, trigger: str) -> bool:
        """Whether this pass (``quiet``: converged, nothing to do) repeats the stack's last quiet row; remembers it."""
        key = (book.engine, book.stack)
        with self._lock:
            repeated = quiet and trigger in self.QUIET_TRIGGERS and self._revisions.get(key) == revision
            if quiet:
                self._revisions[key] = revision
            else:
                self._revisions.pop(key, None)
        return repeated
