"""Preview stacks per branch, against real git repositories (file://) and the real engine.

A repository with ``main`` and feature branches; the daemon gives each feature branch its own copy of the stack on
its own host ports, updates only the branch that moved, enforces ``max``, and removes a preview with its volumes
when its branch is deleted, merged, or idle past ``ttl``.
"""
from __future__ import annotations

import json
import random
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

from reconciler.model import Preview
from reconciler.state import StateStore
from reconciler.waiting import PollTimeout, poll_until

from .conftest import BASE_IMAGE
from .daemons import Repo, RunningDaemon

SPEC = """name: {name}
volumes:
  data: {{}}
containers:
  web:
    image: {image}
    command: ["sh", "-c", "mkdir -p /www && echo $$VERSION > /www/index.html && echo $$VERSION >> /data/seen && exec httpd -f -p 8080 -h /www"]
    init: true
    stop_grace_period: 1s
    env: {{VERSION: "{version}"}}
    ports: ["127.0.0.1:{port}:8080"]
    volumes: ["data:/data"]
"""


def _free_window(size: int = 12) -> tuple[int, int]:
    """``size`` consecutive ports nothing listens on, for the previews' ``port_range``."""
    for _ in range(50):
        first = random.randrange(41000, 59000)
        ports = range(first, first + size)
        if all(_free(port) for port in ports):
            return first, first + size - 1
    raise AssertionError("no free window of ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode().strip()
    except OSError:
        return None


class Branches(Repo):
    """The repository, with branches pushed and deleted."""

    def branch(self, name: str, files: dict[str, str], *, start: str = "main") -> str:
        self._git(self.work, "checkout", "--quiet", "-B", name, start)
        for path, text in files.items():
            (self.work / path).parent.mkdir(parents=True, exist_ok=True)
            (self.work / path).write_text(text)
        self._git(self.work, "add", "-A")
        self._git(self.work, "-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "--quiet",
                  "--allow-empty", "-m", f"on {name}")
        self._git(self.work, "push", "--quiet", "--force", "origin", name)
        head = self._git(self.work, "rev-parse", "HEAD").strip()
        self._git(self.work, "checkout", "--quiet", "main")
        return head

    def delete(self, name: str) -> None:
        self._git(self.work, "push", "--quiet", "origin", "--delete", name)

    def merge(self, name: str) -> None:
        self._git(self.work, "checkout", "--quiet", "main")
        self._git(self.work, "-c", "user.email=t@example.invalid", "-c", "user.name=t", "merge", "--quiet",
                  "--no-ff", "-X", "theirs", "-m", f"merge {name}", name)
        self._git(self.work, "push", "--quiet", "origin", "main")


@pytest.fixture
def repo(tmp_path) -> Branches:
    return Branches(tmp_path / "git")


def _daemon(tmp_path: Path, repo: Repo, window: tuple[int, int], **previews) -> RunningDaemon:
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({
        "state_dir": str(tmp_path / "state"), "resync": 300,
        "sources": [{"name": "repo", "git": {"url": repo.url, "ref": "main", "interval": 0.5}, "paths": ["app"],
                     "previews": {"branches": "feature/*", "port_range": f"{window[0]}-{window[1]}", **previews}}],
    }))
    return RunningDaemon(config)


def _previews(tmp_path: Path) -> dict[str, Preview]:
    if not (tmp_path / "state" / "state.db").exists():  # the daemon has not made it yet
        return {}
    with StateStore(tmp_path / "state" / "state.db") as state:
        return {p.branch: p for p in state.previews()}


def _until(tmp_path: Path, daemon: RunningDaemon, check, timeout: float = 60):
    """The previews by branch, once ``check`` of them is true."""
    try:
        return poll_until(lambda: (lambda found: found if check(found) else None)(_previews(tmp_path)),
                          timeout=timeout, interval=0.3)
    except PollTimeout:
        raise AssertionError(f"previews: {_previews(tmp_path)}\nlog:\n{''.join(daemon.text[-200:])}") from None


def _answers(url: str, text: str, timeout: float = 30) -> None:
    try:
        poll_until(lambda: _get(url) == text, timeout=timeout, interval=0.2)
    except PollTimeout:
        raise AssertionError(f"{url} answers {_get(url)!r}, not {text!r}") from None


def _spec(stack, version: str, port: int) -> str:
    return SPEC.format(name=stack.name, image=BASE_IMAGE, version=version, port=port)


def test_each_branch_gets_its_own_preview_updated_alone_and_removed_with_its_volumes(stack, repo, tmp_path):
    main_port, window = _free_window(1)[0], _free_window()
    repo.commit({"app/stack.yaml": _spec(stack, "main", main_port)})
    repo.branch("feature/a", {"app/stack.yaml": _spec(stack, "a", main_port)})
    repo.branch("feature/b", {"app/stack.yaml": _spec(stack, "b", main_port)})
    repo.branch("fix/other", {"app/stack.yaml": _spec(stack, "other", main_port)})  # matches no pattern
    daemon = _daemon(tmp_path, repo, window, max=2)
    try:
        found = _until(tmp_path, daemon, lambda p: {"feature/a", "feature/b"} <= p.keys()
                       and all(p[b].state == "up" for b in ("feature/a", "feature/b")))
        assert "fix/other" not in found
        a, b = found["feature/a"], found["feature/b"]
        assert a.stack == f"{stack.name}-feature-a" and b.stack == f"{stack.name}-feature-b"
        ports = [*a.ports.values(), *b.ports.values()]
        assert len(set(ports)) == 2 and all(window[0] <= p <= window[1] for p in ports)
        assert a.urls == (f"http://127.0.0.1:{a.ports['web-1:8080/tcp']}/",)
        _answers(f"http://127.0.0.1:{main_port}/", "main")
        _answers(a.urls[0], "a")
        _answers(b.urls[0], "b")
        volumes = {v["Name"] for v in stack.engine.volumes()["Volumes"] or []}
        assert {f"{stack.name}_data", f"{a.stack}_data", f"{b.stack}_data"} <= volumes  # nothing shared

        b_id = stack.engine.inspect_container(f"{b.stack}-web-1")["Id"]
        main_id = stack.engine.inspect_container(f"{stack.name}-web-1")["Id"]
        pushed = repo.branch("feature/a", {"app/stack.yaml": _spec(stack, "a2", main_port)}, start="feature/a")
        _until(tmp_path, daemon, lambda p: p["feature/a"].revision == pushed and p["feature/a"].state == "up")
        _answers(a.urls[0], "a2")  # the same port: a push keeps the preview's URL
        assert stack.engine.inspect_container(f"{b.stack}-web-1")["Id"] == b_id  # only the branch that moved
        assert stack.engine.inspect_container(f"{stack.name}-web-1")["Id"] == main_id

        repo.branch("feature/c", {"app/stack.yaml": _spec(stack, "c", main_port)})
        waiting = _until(tmp_path, daemon, lambda p: "feature/c" in p and p["feature/c"].state == "waiting")
        assert "2 previews" in waiting["feature/c"].reason
        assert not stack.engine.containers(all=True, filters={"name": f"{stack.name}-feature-c"})

        repo.delete("feature/b")
        found = _until(tmp_path, daemon, lambda p: "feature/b" not in p and p.get("feature/c")
                       and p["feature/c"].state == "up")
        assert not stack.engine.containers(all=True, filters={"name": b.stack})
        volumes = {v["Name"] for v in stack.engine.volumes()["Volumes"] or []}
        assert f"{b.stack}_data" not in volumes and f"{stack.name}_data" in volumes
        _answers(found["feature/c"].urls[0], "c")
        _answers(f"http://127.0.0.1:{main_port}/", "main")
    finally:
        assert daemon.stop() == 0


def test_a_merged_branch_and_an_idle_one_are_removed_and_a_push_brings_one_back(stack, repo, tmp_path):
    main_port, window = _free_window(1)[0], _free_window()
    repo.commit({"app/stack.yaml": _spec(stack, "main", main_port)})
    repo.branch("feature/merge-me", {"app/stack.yaml": _spec(stack, "m", main_port)})
    daemon = _daemon(tmp_path, repo, window, ttl=6)
    try:
        found = _until(tmp_path, daemon, lambda p: p.get("feature/merge-me") and p["feature/merge-me"].state == "up")
        merged = found["feature/merge-me"]
        repo.merge("feature/merge-me")
        gone = _until(tmp_path, daemon, lambda p: p["feature/merge-me"].state == "expired")
        assert gone["feature/merge-me"].reason == "branch merged"
        assert not stack.engine.containers(all=True, filters={"name": merged.stack})
        assert f"{merged.stack}_data" not in {v["Name"] for v in stack.engine.volumes()["Volumes"] or []}

        idle = repo.branch("feature/idle", {"app/stack.yaml": _spec(stack, "idle", main_port)})
        _until(tmp_path, daemon, lambda p: p.get("feature/idle") and p["feature/idle"].state == "up")
        expired = _until(tmp_path, daemon, lambda p: p["feature/idle"].state == "expired", timeout=40)
        assert expired["feature/idle"].reason.startswith("idle past its ttl")
        assert expired["feature/idle"].revision == idle
        assert not stack.engine.containers(all=True, filters={"name": expired["feature/idle"].stack})

        repo.branch("feature/idle", {"app/stack.yaml": _spec(stack, "back", main_port)}, start="feature/idle")
        back = _until(tmp_path, daemon, lambda p: p["feature/idle"].state == "up")
        _answers(back["feature/idle"].urls[0], "back")
    finally:
        assert daemon.stop() == 0
