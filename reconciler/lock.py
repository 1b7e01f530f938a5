"""One writer per stack and engine: an advisory file lock that names its holder.

The lock lives in ``RECONCILER_LOCK_DIR`` (default ``/run/lock/reconciler`` when
writable, else a folder in the temp dir), one file per engine and stack. The
holder writes its pid, host, command and start time into the file so the
process that waits can say who holds it.

Those default places are shared with every user of the machine, so the lock
trusts nothing it finds there: the directory is made private (0700) and
refused when someone else owns it (root aside, who could do anything anyway)
or anyone else may write into it without the sticky bit; the file is opened
without following a symbolic link, and written only when it is a regular file
of ours with no other name, so a planted link can never make us empty
another file.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import socket
import stat
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import LockError
from .names import stack_name_problem
from .private import NotPrivate, private_dir
from .waiting import PollTimeout, poll_until

__all__ = ["lock_path", "stack_lock", "unsafe_lock_file"]

_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # never O_TRUNC


def _lock_dir() -> Path:
    configured = os.environ.get("RECONCILER_LOCK_DIR")
    candidates = [Path(configured)] if configured else [Path("/run/lock/reconciler"), None]
    refused = []
    for candidate in candidates:
        if candidate is None:  # the temp folder, asked only when /run/lock would not do (tempfile costs ~2 ms)
            import tempfile

            candidate = Path(tempfile.gettempdir()) / "reconciler-locks"
        try:
            private_dir(candidate, shared=True)  # a folder such as /tmp: root's, or others' with the sticky bit
            problem = None
        except NotPrivate as exc:
            problem = str(exc)
        except OSError as exc:
            problem = exc.strerror or str(exc)
        if problem is None and not os.access(candidate, os.W_OK):
            problem = "not writable"
        if problem is None:
            return candidate
        refused.append(f"{candidate} {problem}")
    raise LockError(f"no usable lock directory: {'; '.join(refused)} "
                    "(set RECONCILER_LOCK_DIR to a directory only you can write to)")


def lock_path(stack: str, engine: str | None) -> Path:
    """The lock file of ``stack`` on ``engine`` (the engine's identity, else its URL; None: the default engine)."""
    problem = stack_name_problem(stack)
    if problem:  # the name becomes part of a path: never build one from an unchecked name
        raise LockError(f"cannot lock stack {stack[:64]!r}: invalid stack name: {problem}")
    engine_id = hashlib.sha256((engine or os.environ.get("DOCKER_HOST", "local")).encode()).hexdigest()[:12]
    return _lock_dir() / f"{stack}-{engine_id}.lock"


def _open_lock_file(path: Path) -> int:
    """A descriptor of the lock file, created if missing; LockError unless it is a plain file of ours."""
    try:
        fd = os.open(path, _OPEN_FLAGS, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LockError(f"lock file {path} is a symbolic link; refusing to follow it "
                            "(remove it if you did not put it there)") from None
        raise LockError(f"cannot open lock file {path}: {exc.strerror or exc}") from None
    problem = unsafe_lock_file(os.fstat(fd))
    if problem:
        os.close(fd)
        raise LockError(f"lock file {path} {problem}; refusing to write to it (remove it if you did not put it there)")
    return fd


def unsafe_lock_file(info: os.stat_result) -> str | None:
    """Why writing to this file (its ``fstat``) could harm something that is not our lock, or None."""
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if info.st_uid != os.geteuid():
        return f"is owned by another user (uid {info.st_uid})"
    if info.st_nlink != 1:
        return "has other names (hard links)"
    return None


def _holder() -> bytes:
    command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv[:4]))
    return (f"pid {os.getpid()} on {socket.gethostname()} ({command}) since "
            f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}").encode()


def _try_lock(fd: int) -> bool:
    """Take the lock on ``fd`` if nobody holds it; never blocks."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def stack_lock(stack: str, engine: str | None, *, timeout: float = 10.0, poll: float = 0.1) -> Iterator[None]:
    """Hold the stack's lock for the block; wait up to ``timeout`` seconds, then raise LockError."""
    path = lock_path(stack, engine)
    fd = _open_lock_file(path)
    try:
        try:
            poll_until(lambda: _try_lock(fd), timeout=timeout, interval=poll)
        except PollTimeout:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "an unknown process"
            raise LockError(f"stack {stack!r} is locked by {holder} (lock file {path}); "
                            f"waited {timeout:g}s") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
