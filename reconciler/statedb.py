"""The state database underneath the record: its tables, every change to them, and its transactions.

``reconciler.state`` says what the record means (objects created, syncs,
suspensions, holds); this module says how the SQLite file is laid out and
brought up to date, so a schema change is read and reviewed in one place.

The schema is versioned with ``PRAGMA user_version``: ``MIGRATIONS`` lists
every change since the first, in order, and opening a database applies the
ones it lacks. A database written by a newer reconciler is refused rather
than guessed at. Tables (version 1)::

    stacks   (engine, stack, first_seen)                 the stacks this record knows
    objects  (engine, stack, kind, name, object_id,      each object the reconciler created
              driver, config_hash, origin, created_at)   or adopted; object_id "" while a
                                                         create is under way
    syncs    (id, engine, stack, revision, started_at,   one row per apply or destroy
              seconds, summary, result)

Version 2 adds::

    suspended (stack, since)                             stacks the loop must not apply
                                                         (``reconcile suspend``)

Version 3 adds::

    holds    (stack, revision, source_revision, since)   stacks held at an older revision
                                                         (``reconcile rollback``) until their
                                                         source moves past source_revision

Version 4 adds to ``objects``::

    claims TEXT                                          for an object adopted from another tool
                                                         (``reconcile adopt``), whose labels cannot
                                                         change: the labels the record vouches for
                                                         in their place, and the foreign labels it
                                                         must still carry (JSON); "" otherwise

Version 5 adds to ``syncs``::

    trigger TEXT                                         what started the pass: a loop's trigger
                                                         (source, engine, resync, api, …), or
                                                         manual (the CLI); "" for older rows

Version 6 adds an index::

    syncs_by_engine_stack ON syncs (engine, stack, id)   so the pruning that follows each appended
                                                         sync (``prune_statement``) reads one stack's
                                                         newest rows, not the whole history

Version 7 adds::

    quarantine (stack, image, version, since, reason)    image versions automation must not propose again

Version 8 adds::

    snapshots (engine, stack, volume, snapshot_id,       each volume snapshot a release took (issue 26),
               driver, created, size, content, details,  as its storage driver described it (details: JSON,
               container, revision, from_revision,       never secrets), the container it was taken for, the
               state, taken_at)                          revision the pass applied and the one the stack ran
                                                         before; state "taken", "restoring" (a restore under
                                                         way: write-ahead) or "restored"
    snapshots_restoring ON snapshots (engine, stack)     a partial index of the rows in state "restoring",
               WHERE state = 'restoring'                 so each pass finds an unfinished restore in one read

Version 9 adds to ``holds``::

    data TEXT                                            a ``rollback --with-data``: "pending" until the stack's
                                                         next pass restored the volumes' snapshots, then
                                                         "restored"; "" for a hold of image and config only
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import StateError

__all__ = ["MIGRATIONS", "migrate", "prune_statement", "schema_version", "transaction"]

#: Every schema change, in order: the database's ``user_version`` is how many it has had.
#: Append only; never edit a migration that has shipped.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE stacks (
            engine TEXT NOT NULL,
            stack TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            PRIMARY KEY (engine, stack))""",
        """CREATE TABLE objects (
            engine TEXT NOT NULL,
            stack TEXT NOT NULL,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            object_id TEXT NOT NULL,
            driver TEXT NOT NULL DEFAULT '',
            config_hash TEXT NOT NULL DEFAULT '',
            origin TEXT NOT NULL CHECK (origin IN ('created', 'adopted')),
            created_at TEXT NOT NULL,
            PRIMARY KEY (engine, stack, kind, name, object_id))""",
        """CREATE TABLE syncs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            engine TEXT NOT NULL,
            stack TEXT NOT NULL,
            revision TEXT NOT NULL DEFAULT '',
            started_at TEXT NOT NULL,
            seconds REAL NOT NULL,
            summary TEXT NOT NULL DEFAULT '',
            result TEXT NOT NULL)""",
        "CREATE INDEX syncs_by_stack ON syncs (stack, id)",
    ),
    (
        """CREATE TABLE suspended (
            stack TEXT PRIMARY KEY,
            since TEXT NOT NULL)""",
    ),
    (
        """CREATE TABLE holds (
            stack TEXT PRIMARY KEY,
            revision TEXT NOT NULL,
            source_revision TEXT NOT NULL,
            since TEXT NOT NULL)""",
    ),
    (
        "ALTER TABLE objects ADD COLUMN claims TEXT NOT NULL DEFAULT ''",
    ),
    (
        "ALTER TABLE syncs ADD COLUMN trigger TEXT NOT NULL DEFAULT ''",
    ),
    (
        "CREATE INDEX syncs_by_engine_stack ON syncs (engine, stack, id)",
    ),
    (
        """CREATE TABLE quarantine (
            stack TEXT NOT NULL,
            image TEXT NOT NULL,
            version TEXT NOT NULL,
            since TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (stack, image, version))""",
    ),
    (
        """CREATE TABLE snapshots (
            engine TEXT NOT NULL,
            stack TEXT NOT NULL,
            volume TEXT NOT NULL,
            snapshot_id TEXT NOT NULL,
            driver TEXT NOT NULL DEFAULT '',
            created REAL NOT NULL,
            size INTEGER NOT NULL DEFAULT 0,
            content INTEGER NOT NULL DEFAULT 0,
            details TEXT NOT NULL DEFAULT '{}',
            container TEXT NOT NULL DEFAULT '',
            revision TEXT,
            from_revision TEXT,
            state TEXT NOT NULL CHECK (state IN ('taken', 'restoring', 'restored')),
            taken_at TEXT NOT NULL,
            PRIMARY KEY (engine, stack, volume, snapshot_id))""",
        "CREATE INDEX snapshots_restoring ON snapshots (engine, stack) WHERE state = 'restoring'",
    ),
    (
        "ALTER TABLE holds ADD COLUMN data TEXT NOT NULL DEFAULT ''",
    ),
    (
        """CREATE TABLE previews (
            source TEXT NOT NULL,
            branch TEXT NOT NULL,
            path TEXT NOT NULL,
            stack TEXT NOT NULL DEFAULT '',
            base TEXT NOT NULL DEFAULT '',
            revision TEXT NOT NULL DEFAULT '',
            created REAL NOT NULL,
            pushed REAL NOT NULL,
            state TEXT NOT NULL,
            ports TEXT NOT NULL DEFAULT '{}',
            urls TEXT NOT NULL DEFAULT '[]',
            reason TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (source, branch, path))""",
    ),
)

#: The history rows of one (engine, stack) beyond the newest ``keep``, or started before ``cutoff`` (ISO 8601,
#: UTC; "" for no age limit); the newest row is never among them. Parameters: see ``prune_statement``.
_PRUNE = (
    "DELETE FROM syncs WHERE engine = ?1 AND stack = ?2 "
    "AND id < (SELECT max(id) FROM syncs WHERE engine = ?1 AND stack = ?2) "
    "AND (id < coalesce((SELECT id FROM syncs WHERE engine = ?1 AND stack = ?2 ORDER BY id DESC "
    "LIMIT 1 OFFSET ?3), -1) OR started_at < ?4)"
)


def prune_statement(engine: str, stack: str, *, keep: int, cutoff: str) -> tuple[str, tuple]:
    """The (sql, parameters) that trims one stack's history to its newest ``keep`` rows, none started before
    ``cutoff`` (ISO 8601, UTC; "" for no age limit), its newest row always kept."""
    return _PRUNE, (engine, stack, max(keep, 1) - 1, cutoff)


def schema_version(db: sqlite3.Connection) -> int:
    """How many of ``MIGRATIONS`` the database has had."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, path: Path | str) -> None:
    """Apply the migrations ``db`` (the database file ``path``) lacks; refuse one newer than this reconciler."""
    if schema_version(db) == len(MIGRATIONS):
        return  # the common case: no write lock taken
    with transaction(db):
        version = schema_version(db)  # again, under the lock: another process may have migrated
        if version > len(MIGRATIONS):
            raise StateError(f"the state database {path} has schema version {version}, newer than "
                             f"this reconciler knows ({len(MIGRATIONS)}): upgrade the reconciler")
        for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in statements:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` on an exception (which goes on up)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
