"""The daemon's previews on the in-memory engine and real local git repositories: made per matching branch, named
and ported apart, told to wait beyond ``max``, removed with their volumes when their branch goes, merged or idles."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from reconciler.daemon import Daemon, load_config
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.previews import engine_host
from reconciler.hookspecs import hookimpl
from reconciler.loop import Trigger
from reconciler.testing import make_reconciler

SPEC = """
name: shop
volumes:
  data: {{}}
containers:
  web:
    image: "busybox:1"
    env: {{VERSION: "{version}"}}
    ports: ["127.0.0.1:8080:80"]
    volumes: ["data:/data"]
"""


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


class Repo:
    def __init__(self, root: Path) -> None:
        self.remote, self.work = root / "origin.git", root / "work"
        _git(root, "init", "-q", "--bare", "--initial-branch=main", str(self.remote))
        _git(root, "clone", "-q", str(self.remote), str(self.work))
        _git(self.work, "checkout", "-q", "-B", "main")

    def push(self, branch: str, version: str, *, start: str | None = None) -> str:
        if start is not None or branch != "main":
            _git(self.work, "checkout", "-q", "-B", branch, start or "main")
        (self.work / "app").mkdir(exist_ok=True)
        (self.work / "app" / "stack.yaml").write_text(SPEC.format(version=version))
        _git(self.work, "add", "-A")
        _git(self.work, "commit", "-q", "--allow-empty", "-m", f"{branch} {version}")
        _git(self.work, "push", "-q", "--force", "origin", branch)
        head = _git(self.work, "rev-parse", "HEAD")
        _git(self.work, "checkout", "-q", "main")
        return head


class Told:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    @hookimpl
    def reconciler_preview_changed(self, preview, event):
        self.events.append((event, preview.branch, preview.reason))


@pytest.fixture
def repo(tmp_path) -> Repo:
    (tmp_path / "git").mkdir()
    return Repo(tmp_path / "git")


def _daemon(tmp_path: Path, repo: Repo, memory_engine, told: Told, **previews) -> Daemon:
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({
        "state_dir": str(tmp_path / "state"), "resync": 300,
        "sources": [{"name": "repo", "git": {"url": f"file://{repo.remote}", "interval": 3600}, "paths": ["app"],
                     "previews": {"branches": ["feature/*"], "port_range": "39100-39140", **previews}}]}))
    reconciler = make_reconciler(memory_engine)
    reconciler.pm.register(told)
    daemon = Daemon(load_config(str(config)), reconciler=reconciler, metrics=Metrics())
    daemon.refresh(daemon.config.sources[0])
    return daemon


def _round(daemon: Daemon) -> None:
    """A poll round's previews, then a pass of every preview (as the pool would run them)."""
    daemon.previews.round(daemon.config.sources[0])
    for worker in list(daemon.workers):
        if worker.preview is not None:
            daemon._applied(worker, worker.loop.run_pass(Trigger.SOURCE))


def _env(daemon: Daemon, branch: str) -> dict:
    (worker,) = [w for w in daemon.workers if w.preview is not None and w.preview.record.branch == branch]
    (spec,) = worker.loop.desired.containers.values()
    return spec.env_dict()


def _previews(daemon: Daemon) -> dict:
    return {p.branch: p for p in daemon.reconciler.state.previews()}


def test_each_matching_branch_gets_a_preview_of_its_own(tmp_path, repo, memory_engine):
    repo.push("main", "main")
    repo.push("feature/a", "a")
    repo.push("feature/Login_Page!", "b")
    repo.push("fix/x", "x")
    told = Told()
    daemon = _daemon(tmp_path, repo, memory_engine, told)
    _round(daemon)
    found = _previews(daemon)
    assert set(found) == {"feature/a", "feature/Login_Page!"}
    a, b = found["feature/a"], found["feature/Login_Page!"]
    assert (a.stack, a.base, a.state) == ("shop-feature-a", "shop", "up")
    assert b.stack.startswith("shop-feature-login_page") and b.state == "up"
    assert sorted([*a.ports.values(), *b.ports.values()]) == [39100, 39101]
    assert a.urls == (f"http://127.0.0.1:{a.ports['web-1:80/tcp']}/",)
    assert {"shop-feature-a_data", f"{b.stack}_data"} <= set(memory_engine.volumes)
    assert _env(daemon, "feature/a") == {"VERSION": "a"}
    ids = {name: c.id for name, c in memory_engine.containers.items()}
    assert sorted(e[:2] for e in told.events) == [("up", "feature/Login_Page!"), ("up", "feature/a")]

    again = repo.push("feature/a", "a2", start="feature/a")
    _round(daemon)
    assert _previews(daemon)["feature/a"].revision == again
    assert _previews(daemon)["feature/a"].ports == a.ports  # a push keeps the ports
    assert _env(daemon, "feature/a") == {"VERSION": "a2"}
    assert memory_engine.containers["shop-feature-a-web-1"].id != ids["shop-feature-a-web-1"]
    assert memory_engine.containers[f"{b.stack}-web-1"].id == ids[f"{b.stack}-web-1"]  # only the branch that moved
    assert len(told.events) == 2  # an update is no new "up"


def test_beyond_max_a_branch_waits_and_starts_when_one_goes_with_its_volumes(tmp_path, repo, memory_engine):
    repo.push("main", "main")
    repo.push("feature/a", "a")
    repo.push("feature/b", "b")
    told = Told()
    daemon = _daemon(tmp_path, repo, memory_engine, told, max=1)
    _round(daemon)
    found = _previews(daemon)
    assert (found["feature/a"].state, found["feature/b"].state) == ("up", "waiting")
    assert "has its 1 previews already" in found["feature/b"].reason
    assert not any(name.startswith("shop-feature-b") for name in memory_engine.containers)

    _git(repo.work, "push", "-q", "origin", "--delete", "feature/a")
    _round(daemon)
    found = _previews(daemon)
    assert "feature/a" not in found and found["feature/b"].state == "up"
    assert not any(name.startswith("shop-feature-a") for name in [*memory_engine.containers, *memory_engine.volumes])
    assert "shop-feature-b_data" in memory_engine.volumes
    assert ("down", "feature/a", "branch deleted") in told.events
    assert [w.stack for w in daemon.workers if w.preview] == ["shop-feature-b"]


def test_a_merged_branch_goes_and_stays_gone_until_it_moves(tmp_path, repo, memory_engine):
    repo.push("main", "main")
    repo.push("feature/a", "a")
    told = Told()
    daemon = _daemon(tmp_path, repo, memory_engine, told)
    _round(daemon)
    assert _previews(daemon)["feature/a"].state == "up"
    _git(repo.work, "merge", "-q", "--no-ff", "-m", "merge", "feature/a")
    _git(repo.work, "push", "-q", "origin", "main")
    daemon.refresh(daemon.config.sources[0])
    _round(daemon)
    gone = _previews(daemon)["feature/a"]
    assert (gone.state, gone.reason) == ("expired", "branch merged")
    assert not any(name.startswith("shop-feature-a") for name in memory_engine.containers)
    _round(daemon)
    assert _previews(daemon)["feature/a"].state == "expired"  # not made again while the branch stays put
    repo.push("feature/a", "again", start="feature/a")
    _round(daemon)
    assert _previews(daemon)["feature/a"].state == "up"


def test_an_idle_preview_expires_after_its_ttl_and_a_push_brings_it_back(tmp_path, repo, memory_engine):
    repo.push("main", "main")
    repo.push("feature/a", "a")
    told = Told()
    daemon = _daemon(tmp_path, repo, memory_engine, told, ttl=0.5)
    _round(daemon)
    first = _previews(daemon)["feature/a"]
    assert first.state == "up"
    time.sleep(0.6)
    _round(daemon)
    idle = _previews(daemon)["feature/a"]
    assert (idle.state, idle.urls) == ("expired", ())
    assert idle.reason.startswith("idle past its ttl")
    assert "shop-feature-a-web-1" not in memory_engine.containers
    repo.push("feature/a", "a2", start="feature/a")
    _round(daemon)
    back = _previews(daemon)["feature/a"]
    assert back.state == "up" and back.stack == first.stack and back.ports == first.ports


@pytest.mark.parametrize("engine, host", [
    (None, "localhost"), ("unix:///var/run/docker.sock", "localhost"), ("tcp://10.0.0.5:2376", "10.0.0.5"),
    ("ssh://ops@build.example.com", "build.example.com"), ("tcp://a:2375,tcp://b:2375", "a"),
])
def test_the_engine_host_in_urls(engine, host, monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert engine_host(engine) == host
