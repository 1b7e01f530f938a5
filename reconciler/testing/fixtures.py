"""The kit's pytest fixtures: a fresh stack's ``DriverContext``, its progress lines, names, a dead backend.

They reach every test through the ``pytest11`` entry point (``reconciler.testing``
imports them), so a plugin author's tests use them without an import. They
live apart from the in-memory engine because they need pytest, which
``reconciler.testing`` itself does not.
"""
from __future__ import annotations

import os
import socket
import threading
import uuid

import pytest

from ..drivers import DriverContext
from .contract import STACK_PREFIX
from .memory import MemoryEngine

__all__ = ["ProgressLines", "driver_context", "memory_engine", "progress_lines", "unique_name",
           "unreachable_context"]


class ProgressLines:
    """The kit contexts' ``progress``: collects each ``(name, line)`` a driver reports, from any thread.

    A run shows these lines as they come (``DriverContext.progress``); under
    the kit a driver's calls are checked (two strings, one line) and kept, so a
    test can look at ``lines`` or ``of(name)``.
    """

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, name: str, line: str) -> None:
        if not isinstance(name, str) or not isinstance(line, str):
            raise TypeError(f"progress takes (name: str, line: str), not ({type(name).__name__}, "
                            f"{type(line).__name__})")
        if "\n" in line.rstrip("\n"):
            raise ValueError(f"progress takes one line at a time, not {line!r}")
        with self._lock:
            self.lines.append((name, line))

    def of(self, name: str) -> list[str]:
        """The lines reported about ``name``, in order."""
        with self._lock:
            return [line for about, line in self.lines if about == name]


@pytest.fixture
def progress_lines() -> ProgressLines:
    """What drivers built from ``driver_context`` (or ``unreachable_context``) report as progress."""
    return ProgressLines()


@pytest.fixture
def driver_context(progress_lines: ProgressLines, tmp_path) -> DriverContext:
    """A ``DriverContext`` for a fresh stack ``contract-<hex>``; engine from ``DOCKER_HOST``, else the default.

    Its ``progress`` is ``progress_lines``, as a run's context has one; its ``state_dir`` is the
    test's own folder, so the files a driver keeps (snapshots) go with the test.
    """
    return DriverContext(stack=STACK_PREFIX + uuid.uuid4().hex[:10], engine_url=os.environ.get("DOCKER_HOST") or None,
                         progress=progress_lines, state_dir=tmp_path / "state")


@pytest.fixture
def unique_name(driver_context: DriverContext) -> str:
    """An object name no other test uses, starting with the stack's name (so leftovers are recognisable)."""
    return f"{driver_context.stack}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def unreachable_context(driver_context: DriverContext) -> DriverContext:
    """Like ``driver_context`` but with ``engine_url`` a local TCP port where nothing listens."""
    with socket.socket() as probe:  # a port the kernel just handed out and nobody has taken since
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return DriverContext(stack=driver_context.stack, engine_url=f"tcp://127.0.0.1:{port}",
                         progress=driver_context.progress)


@pytest.fixture
def memory_engine() -> MemoryEngine:
    """A fresh, empty ``MemoryEngine``."""
    return MemoryEngine()
