"""One daemon per state directory: an exclusive lock held for the daemon's lifetime, naming its pid.

Two daemons on one state directory would fetch into the same bare
repositories (each failing on the other's git locks) and apply alternate
revisions of the same stacks. So ``reconcile daemon`` takes ``daemon.lock``
in its state directory before it opens anything else, and holds it until it
exits; a second one refuses to start, naming the first's pid. The lock is a
``flock`` on an open file description: the kernel drops it when the holder
dies, however it dies, so a stale file never blocks a restart. The descriptor
is close-on-exec, so a git child never inherits (and outlives us holding) it.

Only daemons take this lock. ``history`` reads the record and
``suspend``/``resume``/``rollback`` write small rows of it through SQLite,
which serializes writers on its own; they keep working beside a daemon.

The state directory is private (``reconciler.state``), and the lock file is
made by ``private.create_private`` and opened without following a symbolic
link, as ``reconciler.lock`` does for stack locks.
"""
from __future__ import annotations

import errno
import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import LockError
from ..lock import unsafe_lock_file
from ..private import NotPrivate, create_private
from ..waiting import PollTimeout, poll_until

__all__ = ["LOCK_NAME", "hold_state_dir"]

LOCK_NAME = "daemon.lock"
#: How long a second daemon waits for the first to have written its pid (it writes it right after locking).
PID_WAIT = 1.0


@contextmanager
def hold_state_dir(state_dir: Path) -> Iterator[None]:
    """Hold ``state_dir`` for the block, as its one daemon; LockError naming the holder's pid if another has it."""
    path = Path(state_dir) / LOCK_NAME
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockError(f"another reconcile daemon ({_holder(fd)}) uses state directory {state_dir}; "
                            "stop it first, or give this one a state_dir of its own") from None
        problem = unsafe_lock_file(os.fstat(fd))  # checked once ours: a file being made has two names for an instant
        if problem:
            raise LockError(f"the daemon's lock file {path} {problem}; refusing to write to it "
                            "(remove it if you did not put it there)")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # the pid of a daemon gone would mislead whoever reads the file
    finally:
        os.close(fd)  # drops the lock


def _open(path: Path) -> int:
    """A descriptor of the lock file, made 0600 if missing; never through a symbolic link."""
    try:
        create_private(path)
        return os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except NotPrivate:
        raise LockError(f"the daemon's lock file {path} is a symbolic link; refusing to follow it "
                        "(remove it if you did not put it there)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LockError(f"the daemon's lock file {path} is a symbolic link; refusing to follow it "
                            "(remove it if you did not put it there)") from None
        raise LockError(f"cannot open the daemon's lock file {path}: {exc.strerror or exc}") from None


def _holder(fd: int) -> str:
    """``pid N`` of the daemon holding the lock (it writes its pid right after taking it)."""
    def pid() -> str | None:
        text = os.pread(fd, 64, 0).decode(errors="replace").strip()
        return text if text.isdigit() else None

    try:
        return f"pid {poll_until(pid, timeout=PID_WAIT, interval=0.05)}"
    except PollTimeout:
        return "pid unknown"
