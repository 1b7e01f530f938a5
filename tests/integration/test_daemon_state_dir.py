"""One daemon per state directory: a second refuses to start, naming the first; the record's other users go on."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from .daemons import Repo, RunningDaemon, stack_spec


def _config(tmp_path: Path, repo: Repo, name: str) -> Path:
    config = tmp_path / f"{name}.yaml"
    config.write_text(json.dumps({
        "state_dir": str(tmp_path / "state"), "resync": 300,
        "sources": [{"name": "repo", "git": {"url": repo.url, "ref": "main", "interval": 0.5}, "paths": ["app"]}],
    }))
    return config


def test_a_second_daemon_on_one_state_directory_refuses_to_start_naming_the_first(stack, repo, tmp_path):
    first = repo.commit({"app/stack.yaml": stack_spec(stack.name, "1")})
    state = tmp_path / "state"
    daemon = RunningDaemon(_config(tmp_path, repo, "one"))
    try:
        daemon.wait_for(lambda l: l.get("revision") == first and l.get("ok"))
        second = RunningDaemon(_config(tmp_path, repo, "two"))
        try:
            assert second.proc.wait(timeout=30) == 1
        finally:
            if second.proc.poll() is None:  # it started: what this test is here to catch
                second.stop()
        second._reader.join(timeout=5)
        assert second.text == [f"error: another reconcile daemon (pid {daemon.proc.pid}) uses state directory "
                               f"{state}; stop it first, or give this one a state_dir of its own\n"]
        # The commands that read the record, or write a row of it, work beside the daemon.
        where = ["--state-dir", str(state)]
        history = stack.cli("history", stack.name, *where, "--output", "json", spec=False)
        assert history.code == 0 and json.loads(history.out)[0]["revision"] == first, history
        for command in ("suspend", "resume"):
            assert stack.cli(command, stack.name, *where, spec=False).code == 0
        assert stack.cli("rollback", stack.name, "--to", first, *where, spec=False).code == 0
        assert stack.cli("release", stack.name, *where, spec=False).code == 0
        # The first daemon went on: it still applies what the source says.
        newer = repo.commit({"app/stack.yaml": stack_spec(stack.name, "2")})
        daemon.wait_for(lambda l: l.get("revision") == newer and l.get("ok"))
    finally:
        os.kill(daemon.proc.pid, signal.SIGKILL)  # however it ends, the kernel drops its lock
        daemon.proc.wait(timeout=30)
    after = RunningDaemon(_config(tmp_path, repo, "two"))
    try:
        after.wait_for(lambda l: l.get("trigger") == "start" and l.get("ok"))
    finally:
        assert after.stop() == 0
