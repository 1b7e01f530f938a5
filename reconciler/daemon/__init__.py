"""``reconcile daemon``: follow git repositories and directories, keep every stack converged.

``config`` reads and checks ``daemon.yaml``; ``sources`` fetches git sources
with the git CLI (and says why not a library); ``runner`` runs one worker per
stack and one poller per git source, on top of the same ``StackLoop`` as
``reconcile watch``.
"""
from __future__ import annotations

from .config import DaemonConfig, load_config
from .runner import Daemon
from .stackworker import StackWorker

__all__ = ["Daemon", "DaemonConfig", "StackWorker", "load_config"]
