"""The reconciler's own record (reconciler.state): where it lives, its schema, what it remembers. No engine."""
from __future__ import annotations

import os
import sqlite3
import stat
import threading

import pytest

from reconciler import state, statedb
from reconciler.errors import StateError
from reconciler.labels import CONFIG_HASH, KIND, STACK
from reconciler.model import Kind, LiveObject, LiveState, Record
from reconciler.state import StateStore, Sync, SyncResult, default_state_dir, engine_key

ENGINE = "unix:///var/run/docker.sock"


@pytest.fixture
def store(tmp_path):
    with StateStore.open(tmp_path / "state") as opened:
        yield opened


def _container(name: str, id: str, *, stack: str = "s", config_hash: str = "h1") -> LiveObject:
    return LiveObject(Kind.CONTAINER, name, id, labels={STACK: stack, KIND: "container", CONFIG_HASH: config_hash},
                      owned=True)


def test_the_directory_is_private_and_the_database_is_wal_at_the_latest_schema(tmp_path):
    directory = tmp_path / "deep" / "state"
    with StateStore.open(directory) as store:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_IMODE((directory / "state.db").stat().st_mode) == 0o600
        assert store.schema_version == len(statedb.MIGRATIONS)
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_loose_directory_of_ours_is_tightened(tmp_path):
    directory = tmp_path / "state"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    StateStore.open(directory).close()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_a_symlinked_or_foreign_directory_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(StateError, match="symlink is refused"):
        StateStore.open(tmp_path / "link")
    if os.geteuid() == 0:
        foreign = tmp_path / "foreign"
        foreign.mkdir()
        os.chown(foreign, 65534, 65534)
        with pytest.raises(StateError, match="belongs to uid 65534"):
            StateStore.open(foreign)


def test_default_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("RECONCILER_STATE_DIR", str(tmp_path / "x"))
    assert default_state_dir() == tmp_path / "x"
    monkeypatch.delenv("RECONCILER_STATE_DIR")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_state_dir() == state.SYSTEM_DIR
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(state, "SYSTEM_DIR", tmp_path / "not-writable" / "reconciler")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir() == tmp_path / "xdg" / "reconciler"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_state_dir() == tmp_path / "home" / ".local" / "state" / "reconciler"


def test_engine_key_is_the_url_given_else_docker_host_else_the_local_socket(monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert engine_key(None) == ENGINE
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.5:2375/")
    assert engine_key(None) == "tcp://10.0.0.5:2375"
    assert engine_key("ssh://box") == "ssh://box"


def test_migrations_run_in_order_once_and_a_newer_database_is_refused(tmp_path, monkeypatch):
    directory = tmp_path / "state"
    StateStore.open(directory).close()
    later = statedb.MIGRATIONS + (("ALTER TABLE syncs ADD COLUMN note TEXT NOT NULL DEFAULT ''",),)
    monkeypatch.setattr(statedb, "MIGRATIONS", later)
    with StateStore.open(directory) as store:
        assert store.schema_version == len(later)
        columns = [row[1] for row in store._db.execute("PRAGMA table_info(syncs)")]
        assert columns[-1] == "note"
    StateStore.open(directory).close()  # already migrated: nothing runs twice
    monkeypatch.setattr(statedb, "MIGRATIONS", later[:1])
    with pytest.raises(StateError, match=f"schema version {len(later)}, newer than this reconciler knows"):
        StateStore.open(directory)


def test_it_keeps_ids_hashes_and_outcomes_never_configs():
    columns = " ".join(statement for migration in statedb.MIGRATIONS for statement in migration).lower()
    for forbidden in ("env", "secret", "password", "options", "config ", "spec"):
        assert forbidden not in columns


def test_a_new_stack_is_missing_then_known(store):
    book = store.stack(ENGINE, "s")
    assert book.record() == Record(missing=True)
    book.created(Kind.CONTAINER, "s-web-1", "c1", driver="docker", config_hash="h1")
    record = book.record()
    assert record.created == {(Kind.CONTAINER, "s-web-1", "c1")} and not record.missing
    assert record.made(_container("s-web-1", "c1")) and not record.lists(_container("s-web-1", "forged"))
    book.removed(Kind.CONTAINER, "s-web-1", "c1")
    assert book.record() == Record(missing=False), "once known, an empty record is not a missing one"


def test_records_are_per_engine_and_stack(store):
    store.stack(ENGINE, "s").created(Kind.NETWORK, "s_n", "n1", driver="bridge", config_hash="h")
    assert store.stack(ENGINE, "other").record().missing
    assert store.stack("tcp://elsewhere:2375", "s").record().missing


def test_adopted_objects_are_listed_but_not_made(store):
    book = store.stack(ENGINE, "s")
    volume = LiveObject(Kind.VOLUME, "s_data", "s_data", labels={STACK: "s", KIND: "volume", CONFIG_HASH: "h"},
                        owned=True)
    book.adopted([volume])
    record = book.record()
    assert record.lists(volume) and not record.made(volume)
    assert book.objects()[0].origin == "adopted" and book.objects()[0].config_hash == "h"


def test_a_pending_create_is_matched_by_name_and_hash_then_settled(store):
    book = store.stack(ENGINE, "s")
    book.creating(Kind.CONTAINER, "s-web-1", driver="docker", config_hash="h1")  # then the apply was interrupted
    live = LiveState(containers={"s-web-1": _container("s-web-1", "c9")})
    assert book.record(live).created == {(Kind.CONTAINER, "s-web-1", "c9")}
    assert book.objects()[0].object_id == "", "a plan only reads"
    book.record(live, settle=True)
    assert [row.object_id for row in book.objects()] == ["c9"]


def test_a_pending_create_never_vouches_for_another_hash_and_is_dropped_when_settled(store):
    book = store.stack(ENGINE, "s")
    book.creating(Kind.CONTAINER, "s-web-1", driver="docker", config_hash="h1")
    live = LiveState(containers={"s-web-1": _container("s-web-1", "c9", config_hash="forged")})
    assert book.record(live, settle=True) == Record()
    assert book.objects() == []
    later = LiveState(containers={"s-web-1": _container("s-web-1", "c10")})
    assert book.record(later) == Record(), "a failed create must not vouch for an object made later"


def test_the_id_replaces_the_pending_row(store):
    book = store.stack(ENGINE, "s")
    book.creating(Kind.VOLUME, "s_data", driver="local", config_hash="h")
    book.created(Kind.VOLUME, "s_data", "u1", driver="local", config_hash="h")
    assert [(r.name, r.object_id, r.origin) for r in book.objects()] == [("s_data", "u1", "created")]


def test_the_sync_history_is_newest_first(store):
    for n, result in enumerate((SyncResult.CONVERGED, SyncResult.FAILED, SyncResult.REFUSED)):
        store.add_sync(Sync(ENGINE, "s", f"rev{n}", f"create {n}", result, 1.5 + n))
    store.add_sync(Sync(ENGINE, "other", "", "no changes", SyncResult.CONVERGED, 0.1))
    history = store.syncs(stack="s")
    assert [(s.revision, s.result, s.seconds) for s in history] == [
        ("rev2", SyncResult.REFUSED, 3.5), ("rev1", SyncResult.FAILED, 2.5), ("rev0", SyncResult.CONVERGED, 1.5)]
    assert history[0].started_at.endswith("Z")
    assert len(store.syncs()) == 4 and len(store.syncs(limit=1)) == 1


def test_the_apply_workers_write_from_many_threads(store):
    book = store.stack(ENGINE, "s")

    def create(n: int) -> None:
        book.creating(Kind.CONTAINER, f"s-c-{n}", driver="docker", config_hash="h")
        book.created(Kind.CONTAINER, f"s-c-{n}", f"id{n}", driver="docker", config_hash="h")

    threads = [threading.Thread(target=create, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(book.record().created) == 16


def test_a_second_process_sees_what_the_first_wrote(tmp_path):
    directory = tmp_path / "state"
    with StateStore.open(directory) as first, StateStore.open(directory) as second:
        first.stack(ENGINE, "s").created(Kind.NETWORK, "s_n", "n1", driver="bridge", config_hash="h")
        assert second.stack(ENGINE, "s").record().created == {(Kind.NETWORK, "s_n", "n1")}


def test_opening_the_store_again_in_a_process_never_costs_another_connection_its_writes(tmp_path):
    # Opening a store once opened (and closed) a descriptor of its own on the database, which drops
    # every POSIX lock the process holds on the file: another process's close then took itself for
    # the last user, checkpointed and deleted the WAL under the first connection, whose later
    # commits were lost (or the file reported malformed, as a CI run once saw).
    import subprocess
    import sys

    directory = tmp_path / "state"
    with StateStore.open(directory) as first:
        book = first.stack(ENGINE, "s")
        book.created(Kind.NETWORK, "s_a", "a1", driver="bridge", config_hash="h")
        StateStore.open(directory).close()  # a second reader in this process (a daemon's, an apply's)
        peek = ("import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
                "db.execute('SELECT count(*) FROM objects').fetchall(); db.close()")
        subprocess.run([sys.executable, "-c", peek, str(directory / "state.db")], check=True)
        assert (directory / "state.db-wal").exists()  # the other process knew it was not the last
        book.created(Kind.NETWORK, "s_b", "b1", driver="bridge", config_hash="h")
    with StateStore.open(directory) as later:
        assert later.stack(ENGINE, "s").record().created == {(Kind.NETWORK, "s_a", "a1"), (Kind.NETWORK, "s_b", "b1")}


def test_a_symlink_in_place_of_the_database_is_refused(tmp_path):
    directory = tmp_path / "state"
    directory.mkdir(mode=0o700)
    (directory / "state.db").symlink_to(tmp_path / "elsewhere.db")
    with pytest.raises(StateError, match="symlink"):
        StateStore.open(directory)
    assert not (tmp_path / "elsewhere.db").exists()


def test_a_corrupt_database_is_a_state_error(tmp_path):
    directory = tmp_path / "state"
    directory.mkdir(mode=0o700)
    (directory / "state.db").write_bytes(b"not a database" * 100)
    with pytest.raises(StateError, match="cannot open the state database"):
        StateStore.open(directory)
    assert isinstance(StateError("x"), Exception) and sqlite3.sqlite_version


def test_a_stack_is_suspended_until_resumed(tmp_path):
    with StateStore.open(tmp_path / "state") as store:
        store.suspend("web")
        store.suspend("web")  # twice is once
        assert list(store.suspended()) == ["web"]
        store.resume("web")
        assert store.suspended() == {}


def test_a_hold_is_kept_until_released(tmp_path):
    with StateStore.open(tmp_path / "state") as store:
        store.hold("web", "a" * 40, source_revision="b" * 40)
        assert store.holds() == {"web": ("a" * 40, "b" * 40)}
        store.release("web")
        assert store.holds() == {}
