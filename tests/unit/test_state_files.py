"""Nothing opens the state database except SQLite (issue 21, §6).

Closing any descriptor on ``state.db`` drops every POSIX lock its process
holds on the file, those of SQLite's connections included: another process
then takes itself for the last user and checkpoints the WAL away under a live
connection, and the record loses commits or is found "malformed". So the
database's name is known only to the record's modules, they never open a file
themselves, the one file they make is made by ``private.create_private``
(a new file under a temporary name, linked into place), and at run time no
Python-level open of the database, its WAL or its shared memory happens.
tests/integration/test_record_stress.py proves the record under real load.
"""
from __future__ import annotations

import ast
import builtins
import io
import os
from pathlib import Path

import pytest

from reconciler.state import DB_NAME, StateStore, Sync, SyncResult
from reconciler.model import Kind

ROOT = Path(__file__).resolve().parents[2]
RECORD = {"reconciler/state.py", "reconciler/statedb.py"}
#: Calls that open (or make, or rewrite) a file by its path, as a function or as a method of a path.
OPENERS = {"open", "fdopen", "touch", "read_bytes", "read_text", "write_bytes", "write_text", "truncate",
           "copy", "copy2", "copyfile", "replace", "rename", "link", "unlink", "remove", "chmod"}


def _sources() -> dict[str, ast.Module]:
    found = {}
    for folder in ("reconciler", "plugins"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            found[str(path.relative_to(ROOT))] = ast.parse(path.read_text(), str(path))
    return found


def _names_the_database(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith(
                ("state.db", "state.db-wal", "state.db-shm")):
            return True
        if isinstance(node, ast.Name) and node.id == "DB_NAME" or isinstance(node, ast.Attribute) and node.attr == "DB_NAME":
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(alias.name == "sqlite3" for alias in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "sqlite3":
            return True
    return False


def test_only_the_record_modules_name_the_state_database_or_use_sqlite():
    naming = {path for path, tree in _sources().items() if _names_the_database(tree)}
    assert naming <= RECORD, f"{sorted(naming - RECORD)} name the state database or use sqlite3: go through StateStore"
    assert "reconciler/state.py" in naming  # the scan sees the one that does


def test_the_record_modules_open_no_file_themselves():
    sources = _sources()
    for path in sorted(RECORD):
        for node in ast.walk(sources[path]):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
            if name == "open" and isinstance(receiver, ast.Name) and receiver.id in ("cls", "StateStore"):
                continue  # StateStore.open, the classmethod
            assert name not in OPENERS, f"{path}:{node.lineno} calls {name}(): the database is opened by SQLite only"


def test_the_database_file_is_made_only_by_create_private():
    sources = _sources()
    callers = {path for path, tree in sources.items() for node in ast.walk(tree)
               if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "create_private"}
    assert "reconciler/state.py" in callers
    # create_private opens only its temporary name, never the path it is given.
    function = next(node for node in ast.walk(sources["reconciler/private.py"])
                    if isinstance(node, ast.FunctionDef) and node.name == "create_private")
    opened = [ast.unparse(node.args[0]) for node in ast.walk(function)
              if isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.open", "open")]
    assert opened == ["temporary"], opened


@pytest.fixture
def opened(monkeypatch) -> list[str]:
    """Every path this process opens through Python while the test runs (SQLite's own opens are not seen)."""
    seen: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file, *args, **kwargs):
        seen.append(os.fspath(file) if isinstance(file, (str, bytes, os.PathLike)) else str(file))
        return real_open(file, *args, **kwargs)

    def spy_os_open(path, *args, **kwargs):
        seen.append(os.fspath(path))
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(io, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    return seen


def test_the_store_never_opens_the_database_file_through_python(tmp_path, opened):
    for _ in range(2):  # a new database, then an existing one
        with StateStore.open(tmp_path) as store, StateStore.open(tmp_path) as other:
            store.add_sync(Sync("engine", "web", "", "create 1", SyncResult.CONVERGED, 0.1))
            store.suspend("web")
            book = other.stack("engine", "web")
            book.creating(Kind.CONTAINER, "web-app-1", driver="docker", config_hash="h")
            assert other.syncs(stack="web") and book.objects()
    database = {str(tmp_path / name) for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", f"{DB_NAME}-journal")}
    assert not database & {os.path.abspath(path) for path in opened}, opened
    assert (tmp_path / DB_NAME).exists()
