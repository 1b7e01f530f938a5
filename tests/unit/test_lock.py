"""The stack lock trusts nothing it finds in its directory: no symlink, no foreign file, no open directory."""
from __future__ import annotations

import fcntl
import os
import stat

import pytest

from reconciler.errors import LockError
from reconciler.lock import lock_path, stack_lock
from reconciler.testing import MemoryEngine, make_reconciler


@pytest.fixture
def lock_dir(tmp_path, monkeypatch):
    path = tmp_path / "private" / "locks"
    monkeypatch.setenv("RECONCILER_LOCK_DIR", str(path))
    return path


def test_the_lock_directory_is_created_private(lock_dir):
    with stack_lock("shop", "engine-a"):
        pass
    assert stat.S_IMODE(os.stat(lock_dir).st_mode) == 0o700


def test_the_holder_is_written_while_held_and_cleared_after(lock_dir):
    path = lock_path("shop", "engine-a")
    with stack_lock("shop", "engine-a"):
        assert path.read_text().startswith(f"pid {os.getpid()} on ")
    assert path.read_text() == ""
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_planted_symlink_never_empties_its_target(lock_dir, tmp_path):
    lock_dir.mkdir(parents=True, mode=0o700)
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    lock_path("shop", "engine-a").symlink_to(target)
    with pytest.raises(LockError, match="is a symbolic link; refusing to follow it"):
        with stack_lock("shop", "engine-a"):
            pass
    assert target.read_text() == "keep me\n"


def test_a_planted_hard_link_is_not_written_to(lock_dir, tmp_path):
    lock_dir.mkdir(parents=True, mode=0o700)
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    os.link(target, lock_path("shop", "engine-a"))
    with pytest.raises(LockError, match="has other names"):
        with stack_lock("shop", "engine-a"):
            pass
    assert target.read_text() == "keep me\n"


def test_a_directory_others_may_write_to_is_refused(lock_dir):
    lock_dir.mkdir(parents=True)
    lock_dir.chmod(0o777)
    with pytest.raises(LockError, match=r"writable by others without the sticky bit \(mode 777\)") as caught:
        with stack_lock("shop", "engine-a"):
            pass
    assert "RECONCILER_LOCK_DIR" in str(caught.value)
    lock_dir.chmod(0o1777)  # the sticky bit keeps others from replacing our files: like /tmp, allowed
    with stack_lock("shop", "engine-a"):
        pass


def test_a_symlinked_lock_directory_is_refused(tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    monkeypatch.setenv("RECONCILER_LOCK_DIR", str(tmp_path / "link"))
    with pytest.raises(LockError, match="is a symbolic link"):
        with stack_lock("shop", "engine-a"):
            pass


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_a_directory_owned_by_another_user_is_refused(lock_dir):
    lock_dir.mkdir(parents=True, mode=0o700)
    os.chown(lock_dir, 65534, 65534)
    with pytest.raises(LockError, match=r"is owned by another user \(uid 65534\)"):
        with stack_lock("shop", "engine-a"):
            pass


@pytest.mark.parametrize("stack", ["../../../tmp/x", "bad/../name", "a" * 300])
def test_a_stack_name_that_is_no_name_never_becomes_a_path(lock_dir, stack):
    with pytest.raises(LockError, match="invalid stack name"):
        lock_path(stack, "engine-a")


def _locked(path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@pytest.mark.parametrize("identity", ["3F2A:ENGINE", None])
def test_the_lock_is_keyed_on_what_the_runtime_says_the_engine_is(lock_dir, identity):
    engine = MemoryEngine()
    engine.id = identity  # None: a runtime that cannot say, so the engine URL's text is the key
    reconciler = make_reconciler(engine)
    key = identity or reconciler.engine_url
    seen = []
    reconciler.destroy("shop", on_plan=lambda plan: seen.append(_locked(lock_path("shop", key))))
    assert seen == [True]
