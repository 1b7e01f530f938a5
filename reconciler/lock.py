"""One writer per stack and engine: an advisory file lock that names its holder.

The lock lives in ``RECONCILER_LOCK_DIR`` (default ``/run/lock/reconciler`` when
writable, else a folder in the temp dir), one file per engine and stack. The
holder writes its pid, host, command and start time into the file so the
process that waits can say who holds it.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import LockError

__all__ = ["stack_lock"]


def _lock_dir() -> Path:
    configured = os.environ.get("RECONCILER_LOCK_DIR")
    candidates = [Path(configured)] if configured else [Path("/run/lock/reconciler"),
                                                         Path(tempfile.gettempdir()) / "reconciler-locks"]
    for candidate in candidates:
        try:
            candidate.mkdir(parents=True, exist_ok=True)
            if os.access(candidate, os.W_OK):
                return candidate
        except OSError:
            continue
    raise LockError(f"no writable lock directory (tried {', '.join(map(str, candidates))})")


def lock_path(stack: str, engine: str | None) -> Path:
    engine_id = hashlib.sha256((engine or os.environ.get("DOCKER_HOST", "local")).encode()).hexdigest()[:12]
    return _lock_dir() / f"{stack}-{engine_id}.lock"


@contextmanager
def stack_lock(stack: str, engine: str | None, *, timeout: float = 10.0, poll: float = 0.1) -> Iterator[None]:
    """Hold the stack's lock for the block; wait up to ``timeout`` seconds, then raise LockError."""
    path = lock_path(stack, engine)
    handle = open(path, "a+")
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "an unknown process"
                    raise LockError(f"stack {stack!r} is locked by {holder} (lock file {path}); "
                                    f"waited {timeout:g}s") from None
                time.sleep(poll)
        handle.seek(0)
        handle.truncate()
        command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv[:4]))
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} ({command}) since "
                     f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()
