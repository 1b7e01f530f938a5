"""One stack the daemon serves: where its spec is in its source, and the loop that keeps it converged.

A module of its own because the daemon's parts that are told of passes (the
API's view, feedback, previews) name it, and the runner that makes the
workers imports them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..loop import Pass, StackLoop
from ..model import DesiredState
from .config import Source
from .sources import Checkout

__all__ = ["StackWorker"]


@dataclass
class StackWorker:
    """One stack: where its spec is in its source, and the loop that keeps it converged."""

    source: Source
    path: str
    checkout: Checkout
    loop: StackLoop | None = None
    #: The revision its last loaded spec came from, and whether that was a held (rolled back) one.
    revision: str = ""
    held: bool = False
    #: The last pass, when it ended (Unix time) and the revision it ran at, for the API and metrics.
    last: Pass | None = None
    last_at: float = 0.0
    last_revision: str = ""
    #: The last pass that changed something, when it ended and its revision (what "last sync" shows).
    changed: tuple[Pass, float, str] | None = None
    #: The last spec loaded, by (where, revision): a resync or an engine event does not read and validate it again.
    spec: tuple[tuple[str, str], DesiredState] | None = None
    #: A preview's (``daemon.previews``): its branch, rules and record; None for a stack of a source's own ref.
    preview: Any = None

    @property
    def id(self) -> str:
        return f"{self.source.name}:{self.path}"

    @property
    def stack(self) -> str:
        """The stack's name once its spec has loaded, else ""."""
        return self.loop.desired.stack if self.loop and self.loop.desired else ""
