"""reconcile daemon against real git repositories (file://) and the real engine."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ..waiting import seconds_until
from .conftest import BASE_IMAGE
from .daemons import Repo, RunningDaemon, stack_spec



def _config(tmp_path: Path, repo: Repo, paths: list[str]) -> Path:
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({
        "state_dir": str(tmp_path / "state"), "resync": 300,
        "sources": [{"name": "repo", "git": {"url": repo.url, "ref": "main", "interval": 0.5}, "paths": paths}],
    }))
    return config


def _env(stack, key: str = "web") -> list[str]:
    return stack.engine.inspect_container(f"{stack.name}-{key}-1")["Config"]["Env"]


@pytest.fixture
def repo(tmp_path) -> Repo:
    return Repo(tmp_path)


def test_commits_are_applied_and_a_force_push_is_followed(stack, repo, tmp_path):
    first = repo.commit({"app/stack.yaml": stack_spec(stack.name, "1")})
    daemon = RunningDaemon(_config(tmp_path, repo, ["app"]))
    try:
        daemon.wait_for(lambda l: l.get("revision") == first and l.get("ok"))
        assert "VERSION=1" in _env(stack)
        second = repo.commit({"app/stack.yaml": stack_spec(stack.name, "2")})
        daemon.wait_for(lambda l: l.get("revision") == second and l.get("ok"))
        assert "VERSION=2" in _env(stack)
        forced = repo.commit({"app/stack.yaml": stack_spec(stack.name, "3")}, amend_from=first)  # history rewritten
        daemon.wait_for(lambda l: l.get("revision") == forced and l.get("ok"))
        assert "VERSION=3" in _env(stack)
    finally:
        assert daemon.stop() == 0


def test_a_broken_stack_keeps_its_last_good_state_and_the_others_keep_converging(stack, repo, tmp_path):
    other = f"{stack.name}x"
    repo.commit({"a/stack.yaml": stack_spec(stack.name, "1"), "b/stack.yaml": stack_spec(other, "1")})
    daemon = RunningDaemon(_config(tmp_path, repo, ["a", "b"]))
    try:
        daemon.wait_for(lambda l: l.get("path") == "b" and l.get("ok"))
        daemon.wait_for(lambda l: l.get("path") == "a" and l.get("ok"))
        before = stack.container_ids()
        broken = repo.commit({"a/stack.yaml": "containers: {web: {image: [oops\n", "b/stack.yaml": stack_spec(other, "2")})
        failure = daemon.wait_for(lambda l: l.get("path") == "a" and l.get("revision") == broken and l.get("error"))
        assert f"repo@{broken[:12]}:a/stack.yaml:2:1" in failure["error"]
        daemon.wait_for(lambda l: l.get("path") == "b" and l.get("revision") == broken and l.get("ok"))
        assert stack.container_ids() == before  # the broken stack was left exactly as it was
        gone = repo.commit({"a/stack.yaml": stack_spec(stack.name, "1")}, amend_from=broken)
        subprocess.run(["git", "rm", "-q", "-r", "a"], cwd=repo.work, check=True)
        subprocess.run(["git", "-c", "user.email=t@e.invalid", "-c", "user.name=t", "commit", "-qm", "rm"],
                       cwd=repo.work, check=True)
        subprocess.run(["git", "push", "-q", "origin", "main"], cwd=repo.work, check=True)
        removed = daemon.wait_for(lambda l: l.get("path") == "a" and l.get("revision") not in (broken, gone, None)
                                  and l.get("error"))
        assert "nothing was changed" in removed["error"]
        assert stack.container_ids() == before  # a missing spec never deletes a stack
    finally:
        assert daemon.stop() == 0
        stack.engine.remove_container(f"{other}-web-1", force=True)


def test_a_restart_on_a_converged_host_writes_nothing(stack, repo, tmp_path):
    revision = repo.commit({"app/stack.yaml": stack_spec(stack.name, "1")})
    config = _config(tmp_path, repo, ["app"])
    daemon = RunningDaemon(config)
    try:
        daemon.wait_for(lambda l: l.get("revision") == revision and l.get("ok"))
    finally:
        assert daemon.stop() == 0
    ids = stack.container_ids()
    again = RunningDaemon(config)
    try:
        first = again.wait_for(lambda l: l.get("trigger") == "start")
        assert first["ok"] and first["report"]["changes"] == []
        assert first["report"]["engine_calls"]["write"] == 0
        assert stack.container_ids() == ids
    finally:
        assert again.stop() == 0


def test_a_suspended_stack_reports_drift_and_applies_nothing_until_resumed(stack, repo, tmp_path):
    first = repo.commit({"app/stack.yaml": stack_spec(stack.name, "1")})
    daemon = RunningDaemon(_config(tmp_path, repo, ["app"]))
    state = ["--state-dir", str(tmp_path / "state")]
    try:
        daemon.wait_for(lambda l: l.get("revision") == first and l.get("ok"))
        assert stack.cli("suspend", stack.name, *state, spec=False).code == 0
        second = repo.commit({"app/stack.yaml": stack_spec(stack.name, "2")})
        held = daemon.wait_for(lambda l: l.get("revision") == second and l.get("suspended"))
        assert held["drift"] == {"replace": 1}
        assert "VERSION=1" in _env(stack)
        assert stack.cli("resume", stack.name, *state, spec=False).code == 0
        repo.commit({"app/stack.yaml": stack_spec(stack.name, "2") + "# resume\n"})
        daemon.wait_for(lambda l: l.get("revision") not in (first, second) and l.get("ok")
                        and not l.get("suspended"))
        assert "VERSION=2" in _env(stack)
    finally:
        assert daemon.stop() == 0


def test_rollback_holds_a_stack_at_an_older_revision_until_release_or_a_new_commit(stack, repo, tmp_path):
    first = repo.commit({"app/stack.yaml": stack_spec(stack.name, "1")})
    daemon = RunningDaemon(_config(tmp_path, repo, ["app"]))
    state = ["--state-dir", str(tmp_path / "state")]
    try:
        daemon.wait_for(lambda l: l.get("revision") == first and l.get("ok"))
        second = repo.commit({"app/stack.yaml": stack_spec(stack.name, "2")})
        daemon.wait_for(lambda l: l.get("revision") == second and l.get("ok"))
        mark = daemon.mark()
        rolled = stack.cli("rollback", stack.name, "--to", first, *state, spec=False)
        assert rolled.code == 0, rolled.err
        daemon.wait_for(lambda l: l.get("revision") == first and l.get("held") and l.get("ok"), after=mark)
        assert "VERSION=1" in _env(stack)
        mark = daemon.mark()
        assert stack.cli("release", stack.name, *state, spec=False).code == 0
        daemon.wait_for(lambda l: l.get("revision") == second and not l.get("held") and l.get("ok"), after=mark)
        assert "VERSION=2" in _env(stack)
        mark = daemon.mark()
        assert stack.cli("rollback", stack.name, "--to", first, *state, spec=False).code == 0
        daemon.wait_for(lambda l: l.get("revision") == first and l.get("held") and l.get("ok"), after=mark)
        assert "VERSION=1" in _env(stack)
        third = repo.commit({"app/stack.yaml": stack_spec(stack.name, "3")})  # the source moves past the hold
        daemon.wait_for(lambda l: l.get("revision") == third and not l.get("held") and l.get("ok"), after=mark)
        assert "VERSION=3" in _env(stack)
    finally:
        assert daemon.stop() == 0


def test_sigterm_during_an_apply_then_a_restart_converges_without_duplicates(stack, repo, tmp_path):
    spec = stack_spec(stack.name, "1").replace("  web:\n", "  web:\n    replicas: 6\n")
    revision = repo.commit({"app/stack.yaml": spec})
    config = _config(tmp_path, repo, ["app"])
    daemon = RunningDaemon(config)
    seconds_until(stack.containers, 30)  # the first creates are under way
    assert daemon.stop() == 0  # SIGTERM mid-apply: the pass in flight finishes, then it exits
    again = RunningDaemon(config)
    try:
        again.wait_for(lambda l: l.get("revision") == revision and l.get("ok"))
        names = sorted(stack.containers())
        assert names == [f"{stack.name}-web-{n}" for n in range(1, 7)], names
        assert all(c["State"] == "running" for c in stack.containers().values())
    finally:
        assert again.stop() == 0
