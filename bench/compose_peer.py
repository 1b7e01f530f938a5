"""What the benches that measure against docker-compose v1 share: the peer, the children's environment,
the teardown of a side's objects, and the run from engine to report.

``bench_compose.py`` (a no-op up) and ``bench_lifecycle.py`` (replace and destroy) both drive the same
objects with ``reconcile`` and with ``docker-compose``, each side under its own stack or project label, and
both must leave nothing behind, also on an error or Ctrl-C. Keeping that here means a fix to the teardown or
to the children's environment reaches both figures.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Protocol, TypeVar

from bench_apply import Engine, log, open_engine, run_child, run_guarded

REPO = Path(__file__).resolve().parents[1]
COMPOSE_LABEL = "com.docker.compose.project"


def compose_peer(parser: argparse.ArgumentParser, command: str) -> str:
    """The full path of the Compose v1 command the Compose benches compare against; a usage error when missing."""
    found = shutil.which(command)
    if not found:
        parser.error(f"{command} not found (apt-get install docker-compose)")
    return found


def show_compose_peer(command: str) -> None:
    """Print which Compose the figures are measured against."""
    version = run_child([command, "version", "--short"], env=dict(os.environ), cwd="/").out.strip()
    print(f"peer:    {command} {version}", flush=True)


def child_env(tmp: Path) -> dict[str, str]:
    """The environment both sides' commands run in.

    Ours is this checkout's code, whatever is installed; both sides cache bytecode in a
    temp dir (the bench's untimed warm-up fills it), and the reconciler's lock, cache and
    record live there too, so nothing is written into the repository or the user's state.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "plugins"), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    env["RECONCILER_LOCK_DIR"] = str(tmp / "locks")
    env["RECONCILER_CACHE_DIR"] = str(tmp / "cache")
    env["RECONCILER_STATE_DIR"] = str(tmp / "state")
    return env


def remove_labelled(engine: Engine, label: str) -> None:
    """Every container, network and volume carrying ``label`` (key=value), whichever side made it.

    A network the engine refuses to free (see bench_lifecycle's STALE_ENDPOINT) is logged and
    left: the other objects are still removed.
    """
    removed = engine.remove(label)
    if removed:
        log(f"cleanup: removed {removed} containers labelled {label}")
    for net in engine.api.networks(filters={"label": [label]}):
        try:
            engine.api.remove_network(net["Id"])
        except engine.docker.errors.APIError as exc:
            log(f"cleanup: the engine keeps network {net['Name']}: {exc.explanation}")
    for vol in engine.api.volumes(filters={"label": [label]}).get("Volumes") or []:
        engine.api.remove_volume(vol["Name"], force=True)


class PeerBench(Protocol):
    """What ``run_against_peer`` asks of a bench."""

    interrupted: bool

    def names(self) -> str:
        """The stack and project names, for the log line that starts the run."""

    def measure(self) -> None:
        """Everything timed (and its untimed warm-up)."""

    def cleanup(self) -> None:
        """Remove what both sides made; runs also on an error or Ctrl-C."""


B = TypeVar("B", bound=PeerBench)


def run_against_peer(args: argparse.Namespace, make: Callable[[argparse.Namespace, Engine, Path], B], *,
                     temp_prefix: str, report: Callable[[B, float], str]) -> int:
    """Open the engine, name the peer, ``measure`` in a temp dir with ``cleanup`` guaranteed, print the report.

    The exit code: 0, 1 when something failed (no engine, a command's error), 130 on Ctrl-C.
    """
    started = time.monotonic()
    engine = open_engine()
    if engine is None:
        return 1
    show_compose_peer(args.compose)
    with tempfile.TemporaryDirectory(prefix=temp_prefix) as tmpdir:
        bench = make(args, engine, Path(tmpdir))
        log(f"{bench.names()}, temp dir {tmpdir}")
        code, _ = run_guarded(bench, bench.measure, cleanup=bench.cleanup)
        if code:
            return code
    print(report(bench, time.monotonic() - started), flush=True)
    return 0
