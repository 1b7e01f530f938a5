"""One bad commit never stops the daemon (issue 21, §4), against real git repositories and the real engine.

A commit adding a link out of the repository (``app.env -> /etc/shadow``, or a relative one that climbs out)
used to kill the source's stack threads and its poller: readiness never came, drift was not repaired, later
commits were ignored until a restart.
"""
from __future__ import annotations

import json
import os
import secrets
import urllib.request

import pytest

from ..waiting import wait_until
from .daemons import Repo, RunningDaemon, stack_spec


def _daemon(tmp_path, repo: Repo) -> tuple[RunningDaemon, str]:
    """A daemon following ``repo`` (paths a and b, polled twice a second) with its API on; and the API's URL."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ci read {secrets.token_urlsafe(24)}\n")
    tokens.chmod(0o600)
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({
        "state_dir": str(tmp_path / "state"), "resync": 300,
        "api": {"listen": "127.0.0.1:0", "tokens_file": str(tokens)},
        "sources": [{"name": "repo", "git": {"url": repo.url, "ref": "main", "interval": 0.5}, "paths": ["a", "b"]}],
    }))
    daemon = RunningDaemon(config)
    return daemon, daemon.api()


def _ready(url: str) -> dict:
    with urllib.request.urlopen(url + "/readyz", timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def _env(stack, name: str) -> list[str]:
    return stack.engine.inspect_container(f"{name}-web-1")["Config"]["Env"]


@pytest.mark.parametrize("target", ["/etc/shadow", "../../../../etc/shadow"], ids=["absolute", "relative"])
def test_a_link_out_of_the_repository_leaves_every_stack_at_its_last_good_revision(stack, repo, tmp_path, target):
    other = f"{stack.name}x"
    good = repo.commit({"a/stack.yaml": stack_spec(stack.name, "1"), "b/stack.yaml": stack_spec(other, "1")})
    daemon, url = _daemon(tmp_path, repo)
    try:
        for path in ("a", "b"):
            daemon.wait_for(lambda l: l.get("path") == path and l.get("revision") == good and l.get("ok"))
        mark = daemon.mark()
        os.symlink(target, repo.work / "a" / "app.env")
        bad = repo.commit({}, "a link out of the repository")
        for path in ("a", "b"):
            refused = daemon.wait_for(lambda l: l.get("path") == path and l.get("error"), after=mark)
            assert f"repo@{bad[:12]}:a/app.env: is a link to" in refused["error"], refused
        assert _ready(url)["ready"] is True
        assert "VERSION=1" in _env(stack, stack.name) and "VERSION=1" in _env(stack, other)

        mark = daemon.mark()  # drift is still repaired, at the last good revision
        stack.engine.remove_container(f"{stack.name}-web-1", force=True)
        repaired = daemon.wait_for(lambda l: l.get("path") == "a" and l.get("trigger") == "engine" and l.get("ok")
                                   and l["report"]["changes"], after=mark)
        assert repaired["revision"] == good
        assert "VERSION=1" in _env(stack, stack.name)

        mark = daemon.mark()  # and the next good commit is applied
        (repo.work / "a" / "app.env").unlink()
        fixed = repo.commit({"a/stack.yaml": stack_spec(stack.name, "2"), "b/stack.yaml": stack_spec(other, "2")})
        for path in ("a", "b"):
            daemon.wait_for(lambda l: l.get("path") == path and l.get("revision") == fixed and l.get("ok"),
                            after=mark)
        assert "VERSION=2" in _env(stack, stack.name) and "VERSION=2" in _env(stack, other)
        assert _ready(url)["ready"] is True
    finally:
        assert daemon.stop() == 0
