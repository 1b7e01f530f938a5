"""Image automation end to end: a real registry with tags pushed during the test, a bare git repository the
daemon pushes to, the real engine. A ``>=1.4 <2`` policy moves 1.4.0 → 1.4.1 (the rc ignored, 2.0.0 never),
each move one commit touching one line with its comment and quoting kept; a version whose rollout fails is
rolled back, quarantined, reverted in git and not proposed again; credentials appear nowhere; the registry's own
push notification moves an image at once, without waiting for the policy's interval."""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest

from reconciler.labels import owner_selector

from ..waiting import wait_until
from .daemons import RunningDaemon
from .registry import Endpoint, Registry, RegistryInfo, credentials_env, publish

SPEC = """\
# The app, kept at the newest 1.x by the daemon.
name: {stack}
images:
  app:
    ref: "{ref}"   # written back by image automation
    update:
      semver: ">=1.4 <2"
      interval: 2s
containers:
  web:
    image: app
    init: true
    stop_grace_period: 1s
    update: {{min_ready: 2s, timeout: 20s}}
"""


def git(cwd, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def running_version(engine, stack: str) -> str:
    """The ``automation.version`` label of the image the stack's one running container runs ("" when not one)."""
    found = engine.containers(filters={"label": [owner_selector(stack)]})
    if len(found) != 1:
        return ""
    return (engine.inspect_image(found[0]["ImageID"])["Config"]["Labels"] or {}).get("automation.version", "")


@pytest.fixture
def automated(stack, repo, registry, tmp_path, monkeypatch):
    """A daemon following ``repo`` with write-back on, its registry credentials from the environment."""
    for name, value in credentials_env(tmp_path, registry).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GIT_TOKEN_FOR_TEST", "ghp_" + uuid.uuid4().hex)  # must appear nowhere

    def start(spec: str) -> RunningDaemon:
        repo.commit({"app/stack.yaml": spec}, "the app at 1.4.0")
        config = tmp_path / "daemon.yaml"
        config.write_text(json.dumps({
            "state_dir": str(tmp_path / "state"), "resync": 300,
            "sources": [{"name": "repo", "git": {"url": repo.url, "ref": "main", "interval": 1,
                                                  "token_env": "GIT_TOKEN_FOR_TEST"},
                         "paths": ["app"], "write": {"author": "image-bot <bot@example.invalid>"}}],
        }))
        started.append(RunningDaemon(config))
        return started[-1]

    started: list[RunningDaemon] = []
    yield start
    for daemon in started:
        assert daemon.stop() == 0


def remote_log(repo) -> list[str]:
    return git(repo.remote, "log", "--format=%H %an <%ae> %s", "main").splitlines()


def test_a_semver_policy_moves_to_the_newest_allowed_and_quarantines_a_failed_version(
        stack, repo, registry, engine, automated, tmp_path):
    repository = f"auto-{stack.name}/app"
    publish(engine, registry, repository, "1.4.0", also=("1.5.0-rc1", "2.0.0"))  # those two: tags only, never run
    publish(engine, registry, repository, "1.4.1")
    base = f"{registry.host}/{repository}"
    spec = SPEC.format(stack=stack.name, ref=f"{base}:1.4.0")
    daemon = automated(spec)

    # 1.4.0 → 1.4.1: one commit by the bot, touching one line, the comment and the quotes kept.
    wait_until(lambda: len(remote_log(repo)) >= 2, 60, "the daemon to commit 1.4.1")
    head = remote_log(repo)[0]
    assert "image-bot <bot@example.invalid>" in head and "1.4.0 → 1.4.1" in head, head
    diff = git(repo.remote, "show", "--format=", "--unified=0", "main")
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == [f'-    ref: "{base}:1.4.0"   # written back by image automation',
                       f'+    ref: "{base}:1.4.1"   # written back by image automation'], diff
    assert git(repo.remote, "show", "main:app/stack.yaml") == spec.replace(":1.4.0", ":1.4.1")
    wait_until(lambda: running_version(engine, stack.name) == "1.4.1", 90, "the container to run 1.4.1")

    # A broken 1.4.2: committed, rolled back by its rollout, quarantined, reverted; never proposed again.
    publish(engine, registry, repository, "1.4.2", bad=True)
    wait_until(lambda: any("1.4.1 → 1.4.2" in line for line in remote_log(repo)), 60, "the commit of 1.4.2")
    wait_until(lambda: "Revert" in remote_log(repo)[0], 120, "the revert of 1.4.2")
    assert git(repo.remote, "show", "main:app/stack.yaml") == spec.replace(":1.4.0", ":1.4.1")
    log = "".join(daemon.text)
    assert "quarantined" in log
    commits = len(remote_log(repo))
    wait_until(lambda: running_version(engine, stack.name) == "1.4.1", 30, "the old container, put back")
    daemon.wait_for(lambda line: line.get("path") == "app" and line.get("ok"), timeout=60, after=daemon.mark())
    outdated = stack.cli("images", "outdated", "-f", str(_checkout(repo, tmp_path) / "app" / "stack.yaml"),
                         "--state-dir", str(tmp_path / "state"), "--output", "json")
    assert outdated.code == 0, outdated.err
    row = json.loads(outdated.out)[0]
    assert row["quarantined"] == ["1.4.2"] and row["wanted"] == "1.4.1" and row["latest"] == "2.0.0", row
    assert {"tag": "2.0.0", "reason": "policy"} in row["skipped"]
    assert {"tag": "1.4.2", "reason": "quarantined"} in row["skipped"]
    assert len(remote_log(repo)) == commits  # several intervals later: nothing new proposed

    # Credentials appear in no commit and no log line.
    history = git(repo.remote, "log", "-p", "--all")
    for secret in (registry.password, os.environ["GIT_TOKEN_FOR_TEST"]):
        assert secret not in history and secret not in "".join(daemon.text)


def _checkout(repo, tmp_path):
    target = tmp_path / f"check-{uuid.uuid4().hex[:6]}"
    git(tmp_path, "clone", "--quiet", str(repo.remote), str(target))
    return target


def test_a_registry_push_notification_moves_the_image_without_waiting_for_the_interval(
        stack, repo, engine, tmp_path, monkeypatch):
    secret = "registry-hook-" + uuid.uuid4().hex
    (tmp_path / "hook.secret").write_text(secret + "\n")
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ci write {uuid.uuid4().hex}\n")
    tokens.chmod(0o600)
    server = Registry()  # its port is known now; it starts once the daemon's address is
    registry = RegistryInfo(server.host, server.username, server.password, "", server)
    for name, value in credentials_env(tmp_path, registry).items():
        monkeypatch.setenv(name, value)
    repository = f"hook-{stack.name}/app"
    base = f"{server.host}/{repository}"
    spec = SPEC.format(stack=stack.name, ref=f"{base}:1.4.0").replace("interval: 2s", "interval: 1h")
    repo.commit({"app/stack.yaml": spec})
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({
        "state_dir": str(tmp_path / "state"), "resync": 300,
        "api": {"listen": "127.0.0.1:0", "tokens_file": str(tokens)},
        "webhooks": [{"name": "registry", "provider": "registry", "secret_file": str(tmp_path / "hook.secret")}],
        "sources": [{"name": "repo", "git": {"url": repo.url, "ref": "main", "interval": 1}, "paths": ["app"],
                     "write": {"author": "image-bot <bot@example.invalid>"}}],
    }))
    daemon = RunningDaemon(config)
    try:
        server.notify = Endpoint(daemon.api() + "/hooks/registry", {"Authorization": f"Bearer {secret}"})
        server.start()
        publish(engine, registry, repository, "1.4.0")
        wait_until(lambda: running_version(engine, stack.name) == "1.4.0", 90, "the stack at 1.4.0")
        publish(engine, registry, repository, "1.4.1")
        pushed = time.monotonic()
        wait_until(lambda: any("1.4.0 → 1.4.1" in line for line in remote_log(repo)), 30,
                   "the commit of 1.4.1, long before the policy's hour")
        wait_until(lambda: running_version(engine, stack.name) == "1.4.1", 60, "the container to run 1.4.1")
        print(f"push → running 1.4.1: {time.monotonic() - pushed:.1f}s")
        assert secret not in "".join(daemon.text)
    finally:
        assert daemon.stop() == 0
        server.close()
        for image in engine.images():
            for tag in image.get("RepoTags") or []:
                if tag.startswith(server.host + "/"):
                    engine.remove_image(tag, force=True)
