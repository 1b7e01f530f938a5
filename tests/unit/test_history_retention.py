"""The sync history at scale: pruned per stack by count and age, and one transaction per converged pass."""
from __future__ import annotations

import sqlite3

import pytest

from reconciler import statedb
from reconciler.reconcile import ApplyRequest
from reconciler.report import ApplyOptions
from reconciler.retry import RetryPolicy
from reconciler.spec import load_desired
from reconciler.state import HistoryLimits, StateStore, Sync, SyncResult
from reconciler.testing import make_reconciler

FAST = ApplyOptions(retry=RetryPolicy(attempts=3, base=0.001, cap=0.002))
SPEC = """
name: demo
networks:
  back: {}
containers:
  web:
    image: busybox:1
    networks: [back]
"""


def _sync(stack: str, revision: str, *, engine: str = "e", at: str = "") -> Sync:
    return Sync(engine, stack, revision, "no changes", SyncResult.CONVERGED, 0.1, started_at=at)


def test_each_stack_keeps_its_newest_rows_up_to_keep_and_other_stacks_are_untouched():
    store = StateStore(":memory:", history=HistoryLimits(keep=3, max_age=None))
    for n in range(5):
        store.add_sync(_sync("web", f"w{n}"))
    store.add_sync(_sync("db", "d0"))
    store.add_sync(_sync("web", "other-engine", engine="e2"))
    assert [s.revision for s in store.syncs(stack="web", engine="e")] == ["w4", "w3", "w2"]
    assert [s.revision for s in store.syncs(stack="db")] == ["d0"]
    assert [s.revision for s in store.syncs(stack="web", engine="e2")] == ["other-engine"]


def test_rows_older_than_max_age_go_but_the_newest_row_is_always_kept():
    store = StateStore(":memory:", history=HistoryLimits(keep=100, max_age=86400))
    store.add_sync(_sync("web", "old1", at="2020-01-01T00:00:00Z"))
    store.add_sync(_sync("web", "new"))
    assert [s.revision for s in store.syncs(stack="web")] == ["new"]
    store.add_sync(_sync("db", "ancient", at="2020-01-01T00:00:00Z"))  # the only row of its stack
    assert [s.revision for s in store.syncs(stack="db")] == ["ancient"]


def test_the_limits_can_be_set_after_opening_and_keep_is_at_least_one():
    store = StateStore.in_memory()
    assert store.history == HistoryLimits(keep=100, max_age=30 * 86400.0)
    store.history = HistoryLimits(keep=0, max_age=None)
    for n in range(3):
        store.add_sync(_sync("web", f"w{n}"))
    assert [s.revision for s in store.syncs(stack="web")] == ["w2"]


def test_a_rollback_names_only_revisions_the_history_kept():
    store = StateStore(":memory:", history=HistoryLimits(keep=1, max_age=None))
    store.add_sync(_sync("web", "a" * 40))
    store.add_sync(_sync("web", "b" * 40))
    with pytest.raises(Exception, match="no revision"):
        store.hold_at("web", "a" * 12)
    assert store.hold_at("web", "a" * 40) == "b" * 40  # a full commit id still works


def test_a_version_5_database_is_migrated_to_6_with_the_index_and_its_rows_kept(tmp_path):
    path = tmp_path / "state.db"
    db = sqlite3.connect(path, isolation_level=None)
    for migration in statedb.MIGRATIONS[:5]:
        for statement in migration:
            db.execute(statement)
    db.execute("PRAGMA user_version = 5")
    db.execute("INSERT INTO syncs (engine, stack, revision, started_at, seconds, summary, result) "
               "VALUES ('e', 'web', 'r', '2026-12-01T00:00:00Z', 1, '', 'converged')")
    db.close()
    with StateStore(path) as store:
        assert store.schema_version == len(statedb.MIGRATIONS)  # 6 and any later
        indexes = [name for (name,) in store._read("SELECT name FROM sqlite_master WHERE type = 'index'")]
        assert "syncs_by_engine_stack" in indexes
        assert [s.revision for s in store.syncs(stack="web")] == ["r"]
        plan = " ".join(str(row) for row in store._read(
            "EXPLAIN QUERY PLAN " + statedb.prune_statement("e", "web", keep=3, cutoff="")[0],
            ("e", "web", 2, "")))
        assert "syncs_by_engine_stack" in plan


class CountingConnection:
    """A connection that counts the transactions begun through it."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db, self.transactions = db, 0

    def execute(self, sql: str, *args):
        if sql.startswith("BEGIN"):
            self.transactions += 1
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str):
        return getattr(self.db, name)


def test_a_converged_pass_writes_exactly_one_transaction(tmp_path, memory_engine):
    reconciler = make_reconciler(memory_engine)
    (tmp_path / "stack.yaml").write_text(SPEC)
    desired = load_desired([tmp_path / "stack.yaml"], drivers=reconciler.driver_names(), environ={})
    assert reconciler.apply(desired, ApplyRequest(options=FAST)).ok  # creates: write-ahead rows
    store = reconciler.state
    counting = store._db = CountingConnection(store._db)
    report = reconciler.apply(desired, ApplyRequest(options=FAST))
    assert report.ok and not report.outcomes
    assert counting.transactions == 1
    assert store.syncs(stack="demo", limit=1)[0].summary == "no changes"


def test_a_pass_holds_back_the_settled_ids_and_writes_them_with_its_sync_row(tmp_path, memory_engine):
    reconciler = make_reconciler(memory_engine)
    (tmp_path / "stack.yaml").write_text(SPEC)
    desired = load_desired([tmp_path / "stack.yaml"], drivers=reconciler.driver_names(), environ={})
    assert reconciler.apply(desired, ApplyRequest(options=FAST)).ok
    engine = reconciler.engine_identity(reconciler.drivers("demo"))
    book = reconciler.book("demo", engine)
    web = next(row for row in book.objects() if row.kind.value == "container")
    # as if the process died between the create and the write of its id
    store = reconciler.state
    store._write(("UPDATE objects SET object_id = '' WHERE name = ? AND kind = 'container'", (web.name,)))
    counting = store._db = CountingConnection(store._db)
    assert reconciler.apply(desired, ApplyRequest(options=FAST)).ok
    assert counting.transactions == 1
    assert [row.object_id for row in book.objects() if row.name == web.name] == [web.object_id]


def test_daemon_yaml_sets_the_history_limits_and_a_bad_one_is_named_at_its_line(tmp_path):
    from reconciler.daemon.config import load_config
    from reconciler.errors import SpecError

    path = tmp_path / "daemon.yaml"
    path.write_text(f"state_dir: {tmp_path}\nsources:\n  - name: s\n    dir: .\n")
    assert load_config(path).history == HistoryLimits(keep=100, max_age=30 * 86400.0)
    path.write_text(f"state_dir: {tmp_path}\nsources:\n  - name: s\n    dir: .\nhistory: {{keep: 10, max_age: 3600}}\n")
    assert load_config(path).history == HistoryLimits(keep=10, max_age=3600.0)
    path.write_text(f"state_dir: {tmp_path}\nsources:\n  - name: s\n    dir: .\nhistory:\n  keep: 0\n  age: 1\n")
    with pytest.raises(SpecError) as caught:
        load_config(path)
    text = str(caught.value)
    assert f"{path}:6:" in text and "history.keep" in text and "age" in text
