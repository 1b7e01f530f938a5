"""The record survives real concurrency and SIGKILL: it never corrupts and never loses an object (issue 21, §6).

The state database was once found "malformed" in CI: a test had opened and
closed a descriptor on ``state.db``, which drops every POSIX lock its process
held on the file through SQLite, so another process took itself for the last
user and checkpointed the WAL away under a live connection. Nothing in the
product opens the file except through SQLite (tests/unit/test_state_files.py);
this test proves the record under the load it meets: on one state directory,
``apply`` loops on two stacks (each apply replaces the container), a
``watch`` of a third whose spec keeps changing, ``history`` readers,
``suspend``/``resume`` toggles, a ``reconcile daemon`` keeping a fourth stack
(a local directory source whose spec keeps changing) with its API on, a thread
reading that API, and threads of this process writing and reading through
``StateStore``, while a killer SIGKILLs one of the processes every few hundred
milliseconds (the daemon too, once its API has answered: it is restarted on
the same directory, its lock freed by its death). Then the database passes ``PRAGMA
integrity_check``, an apply of each stack converges without ``--adopt`` (an
object the record lost would be refused as "claims this stack … the record
does not list it"), the record lists every live object, and ``destroy``
removes everything; the API answered 200 during the storm. Nothing is asserted
on timing.
"""
from __future__ import annotations

import os
import random
import sqlite3
import json
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from reconciler.labels import owner_selector
from reconciler.state import DB_NAME, StateStore

from .conftest import BASE_IMAGE

STRESS_SECONDS = 12.0
SPEC = """\
name: {name}
containers:
  app: {{image: {image}, command: ["sleep", "3600"], init: true, stop_grace_period: 1s, env: {{V: "{version}"}}}}
"""
CORRUPT = ("malformed", "not a database", "disk I/O error")


def _write_spec(path: Path, name: str, version: int) -> None:
    """Write the spec whole (a new file renamed into place), so a reader never sees half of it."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(SPEC.format(name=name, image=BASE_IMAGE, version=version))
    os.replace(temporary, path)


class Loop(threading.Thread):
    """Runs one command after another until told to stop; the killer may SIGKILL the one running."""

    def __init__(self, name: str, command, env: dict, cwd: Path, between=None) -> None:
        super().__init__(name=name, daemon=True)
        self.command, self.env, self.cwd, self.between = command, env, cwd, between
        self.stopping = threading.Event()
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()
        self.outputs: list[str] = []
        self.codes: list[int] = []
        self.runs = self.killed = 0

    def run(self) -> None:
        turn = 0
        while not self.stopping.is_set():
            if self.between is not None:
                self.between(turn)
            with self.lock:
                if self.stopping.is_set():
                    return
                self.proc = subprocess.Popen([sys.executable, "-m", "reconciler", *self.command(turn)],
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                             env=self.env, cwd=self.cwd)
            out, _ = self.proc.communicate()
            self.outputs.append(out)
            self.codes.append(self.proc.returncode)
            self.runs += 1
            turn += 1

    def kill(self) -> bool:
        """SIGKILL the process running now, if any; whether one was."""
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                return False
            self.proc.kill()
            self.killed += 1
            return True

    def stop(self) -> None:
        """Stop looping; the process running now is killed too (it is a crash like any other)."""
        self.stopping.set()
        self.kill()
        self.join(timeout=60)


class DaemonLoop(Loop):
    """``reconcile daemon`` started again each time it dies; ``url`` is its API's while this life has one."""

    def __init__(self, config: Path, env: dict, cwd: Path) -> None:
        super().__init__("daemon", lambda turn: ["daemon", "--config", str(config), "--log-format", "json"], env, cwd)
        self.url: str | None = None

    def run(self) -> None:
        while not self.stopping.is_set():
            with self.lock:
                if self.stopping.is_set():
                    return
                self.url = None
                self.proc = subprocess.Popen([sys.executable, "-m", "reconciler", *self.command(self.runs)],
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                             env=self.env, cwd=self.cwd)
            lines = []
            for line in self.proc.stdout:
                lines.append(line)
                if self.url is None and line.startswith("{"):
                    try:
                        self.url = json.loads(line).get("api")
                    except ValueError:
                        pass
            self.url = None
            self.proc.wait()
            self.outputs.append("".join(lines))
            self.codes.append(self.proc.returncode)
            self.runs += 1


class ApiReader(threading.Thread):
    """Polls the daemon's API while it is up; a refused or cut connection is the daemon being down."""

    def __init__(self, daemon: DaemonLoop, token: str, stack: str, stopping: threading.Event) -> None:
        super().__init__(name="api reader", daemon=True)
        self.daemon_loop, self.token, self.stack, self.stopping = daemon, token, stack, stopping
        self.answered = threading.Event()
        self.statuses: list[int] = []
        self.failures: list[str] = []

    def run(self) -> None:
        turn = 0
        while not self.stopping.is_set():
            url = self.daemon_loop.url
            if url is not None:
                path = ("/api/stacks?limit=1000", f"/api/stacks/{self.stack}/history?limit=5")[turn % 2]
                turn += 1
                request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {self.token}"})
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        status, body = response.status, response.read().decode()
                except urllib.error.HTTPError as exc:
                    status, body = exc.code, exc.read().decode(errors="replace")
                except (OSError, ValueError):  # refused, reset, timed out: killed, or not listening yet
                    status, body = None, ""
                if status is not None:
                    self.statuses.append(status)
                    if status == 200:
                        self.answered.set()
                    elif status >= 500 or any(word in body for word in CORRUPT):
                        self.failures.append(f"{path}: {status} {body[:500]}")
            time.sleep(0.1)


def _daemon_config(tmp_path: Path, state_dir: Path, source: Path) -> tuple[Path, str]:
    """A daemon config on ``state_dir`` with its API on a free port, keeping ``source``'s ``app``; its read token."""
    token = secrets.token_urlsafe(24)
    tokens = tmp_path / "tokens"
    tokens.write_text(f"viewer read {token}\n")
    tokens.chmod(0o600)
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({
        "state_dir": str(state_dir), "resync": 2,
        "api": {"listen": "127.0.0.1:0", "tokens_file": str(tokens)},
        "sources": [{"name": "local", "dir": str(source), "paths": ["app"]}]}))
    return config, token


def _in_process(state_dir: Path, stack: str, stopping: threading.Event, errors: list[BaseException]) -> list:
    """Threads of this process: one long-lived store writing, one opening a fresh store for every read."""

    def writer() -> None:
        with StateStore.open(state_dir) as store:
            while not stopping.is_set():
                store.suspend(stack)
                store.syncs(stack=stack, limit=5)
                store.resume(stack)
                time.sleep(0.05)

    def reader() -> None:
        while not stopping.is_set():
            with StateStore.open(state_dir) as store:
                store.syncs(limit=50)
                store.suspended()
            time.sleep(0.05)

    def guarded(body):
        def run() -> None:
            try:
                body()
            except BaseException as exc:  # reported by the test, never lost in a thread
                errors.append(exc)
        return run

    threads = [threading.Thread(target=guarded(body), daemon=True) for body in (writer, reader)]
    for thread in threads:
        thread.start()
    return threads


def _integrity(db: Path) -> str:
    """``PRAGMA integrity_check`` on the database, opened read-only through SQLite."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return "\n".join(row[0] for row in connection.execute("PRAGMA integrity_check"))
    finally:
        connection.close()


def _recorded_ids(db: Path, stack: str) -> set[str]:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {row[0] for row in connection.execute(
            "SELECT object_id FROM objects WHERE stack = ? AND kind IN ('container', 'network')", (stack,))}
    finally:
        connection.close()


def _live_ids(engine, stack: str) -> set[str]:
    selector = {"label": [owner_selector(stack)]}
    return ({c["Id"] for c in engine.containers(all=True, filters=selector)}
            | {n["Id"] for n in engine.networks(filters=selector)})


def _reconcile(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=180)


def test_the_record_survives_concurrent_processes_killed_at_random(stack, tmp_path):
    state_dir = tmp_path / "state"
    env = {**os.environ, "RECONCILER_STATE_DIR": str(state_dir)}
    names = [f"{stack.name}{suffix}" for suffix in "abwd"]
    specs = {name: [stack.dir / f"{name}-1.yaml", stack.dir / f"{name}-2.yaml"] for name in names[:2]}
    for name, (one, two) in specs.items():
        _write_spec(one, name, 1)
        _write_spec(two, name, 2)
    watched = stack.dir / f"{names[2]}.yaml"
    _write_spec(watched, names[2], 1)
    (tmp_path / "source" / "app").mkdir(parents=True)
    kept = tmp_path / "source" / "app" / "stack.yaml"  # the daemon's stack
    _write_spec(kept, names[3], 1)
    config, token = _daemon_config(tmp_path, state_dir, tmp_path / "source")
    spec_of = {**{name: files[0] for name, files in specs.items()}, names[2]: watched, names[3]: kept}
    reader: ApiReader | None = None
    loops: list[Loop] = []
    threads: list[threading.Thread] = []
    stopping, errors = threading.Event(), []
    try:
        # Each stack exists before the storm, so every apply in it replaces a container.
        for name, (one, _) in specs.items():
            first = _reconcile("apply", "-f", str(one), env=env, cwd=stack.dir)
            assert first.returncode == 0, first.stdout + first.stderr
        applies = [Loop(f"apply {name}", lambda turn, files=files: ["apply", "-f", str(files[turn % 2]),
                                                                     "--lock-timeout", "60"],
                        env, stack.dir) for name, files in specs.items()]
        watch = Loop("watch", lambda turn: ["watch", "-f", str(watched), "--resync", "2", "--lock-timeout", "60"],
                     env, stack.dir)
        history = Loop("history", lambda turn: ["history", "--output", "json"], env, stack.dir,
                       between=lambda turn: time.sleep(0.1))
        toggle = Loop("suspend", lambda turn: ["suspend" if turn % 2 == 0 else "resume", names[2]], env, stack.dir,
                      between=lambda turn: time.sleep(0.2))
        daemon = DaemonLoop(config, env, stack.dir)
        loops = [*applies, watch, history, toggle, daemon]
        for loop in loops:
            loop.start()
        threads = _in_process(state_dir, names[2], stopping, errors)
        reader = ApiReader(daemon, token, names[3], stopping)
        reader.start()
        chance = random.Random()
        deadline, version = time.monotonic() + STRESS_SECONDS, 1
        # The storm lasts until the API has answered once (at most a minute more on a slow machine); the daemon is
        # spared until then, so that it always gets there, and killed like any other process afterwards.
        while time.monotonic() < deadline or (not reader.answered.is_set() and time.monotonic() < deadline + 60):
            time.sleep(chance.uniform(0.15, 0.5))
            chance.choice(loops if reader.answered.is_set() else loops[:-1]).kill()
            version = 3 - version
            _write_spec(watched, names[2], version)  # the watch applies (and replaces) again
            _write_spec(kept, names[3], version)  # and so does the daemon
    finally:
        stopping.set()
        for loop in loops:
            loop.stop()
        if reader is not None:
            reader.join(timeout=60)
    assert reader.answered.is_set(), (reader.statuses, daemon.outputs[-3:])
    assert not reader.failures, reader.failures
    # Every life of the daemon ended by SIGKILL: none refused to start (its lock outlived a dead daemon) or failed.
    assert set(daemon.codes) == {-9}, daemon.outputs[-3:]
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    outputs = "\n".join(out for loop in loops for out in loop.outputs)
    assert not any(word in outputs for word in CORRUPT), outputs[-4000:]
    print({loop.name: (loop.runs, loop.killed, sorted(set(loop.codes))) for loop in loops},
          {"api": sorted(set(reader.statuses)), "answers": len(reader.statuses)})
    assert sum(loop.killed for loop in loops) > 0, [(loop.name, loop.runs) for loop in loops]

    db = state_dir / DB_NAME
    assert _integrity(db) == "ok"
    # The fixture removes every stack named after ``stack`` afterwards, whatever fails here.
    for name in names:
        spec = spec_of[name]
        final = _reconcile("apply", "-f", str(spec), env=env, cwd=stack.dir)  # no --adopt: nothing was lost
        assert final.returncode == 0, final.stdout + final.stderr
        # Every live object is in the record. The record may still hold the id of one removed just before a
        # kill, before the removal was written down: an id no object has any more vouches for nothing.
        assert _live_ids(stack.engine, name) <= _recorded_ids(db, name), name
        converged = _reconcile("plan", "-f", str(spec), "--detailed-exitcode", env=env, cwd=stack.dir)
        assert converged.returncode == 0, converged.stdout + converged.stderr
    assert _integrity(db) == "ok"
    for name in names:
        spec = spec_of[name]
        destroyed = _reconcile("destroy", "-f", str(spec), env=env, cwd=stack.dir)
        assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
        assert _live_ids(stack.engine, name) == set(), name
