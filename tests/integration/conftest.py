"""Fixtures for tests against the real Docker engine.

Every stack a test creates is named ``rtest-<random>``; the fixture removes
what it owns afterwards, and a session start removes what a crashed earlier
run left behind, so one run never confuses the next.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import docker
import pytest

from reconciler.labels import STACK as STACK_LABEL, owner_selector

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("RECONCILER_BASE_IMAGE", "reconciler/busybox:latest")
PREFIX = "rtest-"
STALE_SECONDS = 1800  # a crashed run's leftovers, never a run still going on beside this one


ENGINE_LOCK = "RECONCILER_ENGINE_LOCK"  # scripts/test.sh: a file its other lane holds a shared flock on


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that stop the default engine (marked ``restarts_engine``) run last, in their order."""
    items.sort(key=lambda item: item.get_closest_marker("restarts_engine") is not None)


_engine_to_ourselves: list = []  # the open lock file, once held: kept until this process ends


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before the first test that stops the default engine: wait until no other lane of scripts/test.sh uses it.

    The lane of the modules on engines of their own (fleet, swarms) still talks to the default engine (its
    ``engine`` fixture, each ``stack`` fixture's cleanup, the base image scripts/engines.sh loads from it): it
    holds a shared lock on ``$RECONCILER_ENGINE_LOCK`` while it runs; a restart takes it exclusively.
    """
    path = os.environ.get(ENGINE_LOCK)
    if (not path or _engine_to_ourselves or item.get_closest_marker("restarts_engine") is None
            or not os.environ.get("RECONCILER_ENGINE_RESTARTABLE")):
        return
    lock = open(path, "a")  # noqa: SIM115  held for the rest of the session
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        started = time.monotonic()
        fcntl.flock(lock, fcntl.LOCK_EX)
        capture = item.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print(f"\n(waited {time.monotonic() - started:.0f}s for the other lane to be done with the default "
                  f"engine before {item.name})", flush=True)
    _engine_to_ourselves.append(lock)


@pytest.fixture(scope="session")
def engine() -> docker.APIClient:
    client = docker.from_env(version="auto").api
    try:
        client.ping()
    except Exception as exc:  # the suite needs a real engine: say how to get one
        pytest.fail(f"no Docker engine answers ({exc}); run scripts/engine.sh up", pytrace=False)
    try:
        client.inspect_image(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        subprocess.run(["bash", str(REPO / "scripts/engine.sh"), "up"], check=True)
    # Leftovers of a crashed earlier run; a run going on beside this one is left alone.
    _remove_stacks(client, lambda stack: stack.startswith(PREFIX), older_than=STALE_SECONDS)
    return client


def _remove_stacks(client: docker.APIClient, wanted, *, older_than: float = 0) -> None:
    """Remove the containers, then the networks and volumes, of the stacks ``wanted`` names; each kind's removals
    go 8 at a time (a test of a hundred stacks would otherwise spend half a minute removing them one by one)."""
    label = {"label": [STACK_LABEL]}
    cutoff = time.time() - older_than
    stale, running, doomed = set(), set(), []
    for c in client.containers(all=True, filters=label):
        stack = c["Labels"].get(STACK_LABEL, "")
        if wanted(stack) and c.get("Created", 0) <= cutoff:
            stale.add(stack)
            doomed.append(c["Id"])
        else:
            running.add(stack)
    _each(lambda container: client.remove_container(container, force=True), doomed)
    # A network no container of its stack uses was left behind (each holds one of the engine's address pools);
    # with ``older_than``, only one made before the cutoff: another run beside this one (scripts/test.sh's
    # second lane) may have just made a network and not yet attached a container to it.
    _each(lambda network: _remove_network(client, network),
          [n["Id"] for n in client.networks(filters=label)
           if wanted(stack := (n.get("Labels") or {}).get(STACK_LABEL, ""))
           and (stack in stale or not older_than or (stack not in running and _created(n) <= cutoff))])
    _each(lambda volume: client.remove_volume(volume, force=True),
          [v["Name"] for v in client.volumes(filters=label).get("Volumes") or []
           if wanted(stack := (v.get("Labels") or {}).get(STACK_LABEL, "")) and (stack in stale or not older_than)])


def _each(remove, names: list[str]) -> None:
    """``remove(name)`` for each name, 8 at once; the first failure is raised once all have been tried."""
    if len(names) <= 1:
        for name in names:
            remove(name)
        return
    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(remove, name) for name in names]:
            future.result()


def _created(network: dict) -> float:
    """When the engine made ``network`` (epoch seconds; its listing gives RFC 3339 text with nanoseconds)."""
    text = re.sub(r"\.\d+", "", network.get("Created") or "").replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return time.time()  # unreadable: taken as new, so never swept as a leftover


def _remove_network(client: docker.APIClient, network: str) -> None:
    try:
        client.remove_network(network)
    except docker.errors.APIError:
        pass  # in use by a run that is starting now


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@dataclass
class Stack:
    """A stack under test: its name, its spec folder, and a way to run the CLI on it."""

    name: str
    dir: Path
    engine: docker.APIClient

    def write(self, text: str, filename: str = "stack.yaml") -> Path:
        path = self.dir / filename
        path.write_text(textwrap.dedent(text).replace("STACK", self.name).replace("BASE", BASE_IMAGE))
        return path

    def cli(self, *args: str, env: dict | None = None, spec: bool = True, timeout: float = 180) -> Result:
        command = [sys.executable, "-m", "reconciler", *args]
        if spec and "-f" not in args:
            command += ["-f", str(self.dir / "stack.yaml")]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})}, cwd=self.dir)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def cli_within(self, seconds: float, *args: str, env: dict | None = None) -> tuple[Result, float]:
        """``cli(*args)`` and the seconds it took; the test fails (naming the command) if it is still running
        after ``seconds``: a command that should end within a bound must not hang the suite."""
        started = time.monotonic()
        try:
            result = self.cli(*args, env=env, timeout=seconds)
        except subprocess.TimeoutExpired:
            pytest.fail(f"reconcile {' '.join(args)} still hung after {seconds:g}s")
        return result, time.monotonic() - started

    def apply(self, *args: str, **kw) -> Result:
        return self.cli("apply", *args, **kw)

    def exec(self, container: str, *command: str) -> str:
        """What ``command`` prints inside the running ``container`` (stdout and stderr)."""
        exec_id = self.engine.exec_create(container, list(command))["Id"]
        return self.engine.exec_start(exec_id).decode()

    def containers(self) -> dict[str, dict]:
        found = self.engine.containers(all=True, filters={"label": [owner_selector(self.name)]})
        return {c["Names"][0].lstrip("/"): c for c in found}

    def container_ids(self) -> dict[str, str]:
        return {name: c["Id"] for name, c in self.containers().items()}

    def networks(self) -> set[str]:
        return {n["Name"] for n in self.engine.networks(filters={"label": [owner_selector(self.name)]})}

    def volumes(self) -> set[str]:
        found = self.engine.volumes(filters={"label": [owner_selector(self.name)]}).get("Volumes") or []
        return {v["Name"] for v in found}

    def events_since(self, since: float) -> list[dict]:
        """Engine events about this stack's objects since ``since`` (a real record of writes)."""
        until = time.time() + 0.5
        time.sleep(0.6)
        events = self.engine.events(since=int(since), until=int(until) + 1, decode=True,
                                    filters={"label": [owner_selector(self.name)]})
        # Healthchecks run as execs: those are the engine's own doing, not ours.
        return [e for e in events if e.get("timeNano", 0) >= since * 1e9
                and not e.get("Action", "").startswith(("exec_", "health_status"))]


@pytest.fixture
def stack(engine, tmp_path) -> Stack:
    name = PREFIX + uuid.uuid4().hex[:8]
    spec_dir = tmp_path / name
    spec_dir.mkdir()
    yield Stack(name, spec_dir, engine)
    # Tests may make stacks of their own beside it, named after it (``<name>x``): those go too, networks
    # included, or each run would hold on to an address pool of the engine's few.
    _remove_stacks(engine, lambda s: s.startswith(name))
    _remove_files(name)


def _remove_files(stack: str) -> None:
    """The config and secret files the stack's containers mounted: removing containers by hand leaves them."""
    root = Path(os.environ.get("RECONCILER_FILES_DIR") or "/run/reconciler")
    for folder in root.glob(f"{stack}*"):
        if folder.name == stack or folder.name.startswith(stack + "@"):
            shutil.rmtree(folder, ignore_errors=True)


# At the end: registry.py imports this module's constants.
from .registry import registry  # noqa: E402,F401  (a session fixture: a real registry with htpasswd auth)
from .daemons import api, repo  # noqa: E402,F401  (a daemon with its API on, and the git repository it follows)
