"""Commit statuses (issue 27): a pass that applies a new commit sets pending, then success or failure with the plan
summary, on GitHub, GitLab or Gitea. A local HTTP server checks each request against the forge's documented shape
(method, path, headers, JSON fields, allowed states) and answers 422 otherwise, as the forges do; the token appears in
the auth header only, never in a body, a log line or an error."""
from __future__ import annotations

import json
import logging
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reconciler.daemon import Daemon, load_config
from reconciler.daemon.commitstatus import StatusState, send_status, status_request
from reconciler.daemon.config import CommitStatus
from reconciler.errors import PermanentError, SpecError, TemporaryError
from reconciler.retry import RetryPolicy
from reconciler.testing import make_reconciler

from ..waiting import wait_until

TOKEN = "ghp_Sup3rSecretTok3nValue0123456789"
SHA = re.compile(r"[0-9a-f]{40}")
SPEC = "name: {name}\ncontainers:\n  web: {{image: 'busybox:1', env: {{V: '{version}'}}}}\n"

#: Each forge's documented request (GitHub REST "Create a commit status", GitLab "Post the build status to a commit",
#: Gitea "Create a commit status"): path, the fields the body may hold, its states, the description's limit.
FORGES = {
    "github": {"path": re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/statuses/(?P<sha>[0-9a-f]{40})$"),
               "fields": {"state", "target_url", "description", "context"}, "name": "context",
               "states": {"error", "failure", "pending", "success"}, "limit": 140},
    "gitlab": {"path": re.compile(r"^/api/v4/projects/(?P<id>[^/]+)/statuses/(?P<sha>[0-9a-f]{40})$"),
               "fields": {"state", "ref", "name", "context", "target_url", "description", "coverage", "pipeline_id"},
               "name": "name", "states": {"pending", "running", "success", "failed", "canceled"}, "limit": 255},
    "gitea": {"path": re.compile(r"^/api/v1/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/statuses/(?P<sha>[0-9a-f]{40})$"),
              "fields": {"state", "target_url", "description", "context"}, "name": "context",
              "states": {"pending", "success", "error", "failure", "warning"}, "limit": None},
}


def _problems(provider: str, method: str, path: str, headers: dict[str, str], raw: bytes) -> list[str]:
    """What is wrong with one request, held against the forge's documented shape."""
    forge, problems = FORGES[provider], []
    if method != "POST":
        problems.append(f"method {method}")
    if not forge["path"].match(path):
        problems.append(f"path {path}")
    auth = {"github": ("authorization", f"Bearer {TOKEN}"), "gitea": ("authorization", f"token {TOKEN}"),
            "gitlab": ("private-token", TOKEN)}[provider]
    if headers.get(auth[0]) != auth[1]:
        problems.append(f"no {auth[0]} header as documented")
    if provider == "github" and (headers.get("accept") != "application/vnd.github+json"
                                 or headers.get("x-github-api-version") != "2022-11-28"):
        problems.append("GitHub's Accept and X-GitHub-Api-Version headers")
    if not headers.get("content-type", "").startswith("application/json"):
        problems.append("not JSON")
    try:
        body = json.loads(raw)
    except ValueError:
        return problems + ["a body that is not JSON"]
    if set(body) - forge["fields"]:
        problems.append(f"undocumented fields {sorted(set(body) - forge['fields'])}")
    if body.get("state") not in forge["states"]:
        problems.append(f"state {body.get('state')!r}")
    if forge["limit"] and len(body.get("description", "")) > forge["limit"]:
        problems.append("a description over the limit")
    # The token is in its header only: not in the path, another header or the body.
    elsewhere = [path, raw.decode()] + [value for name, value in headers.items() if name != auth[0]]
    if any(TOKEN in text for text in elsewhere):
        problems.append("the token outside its header")
    return problems


class Forge:
    """A forge's status API on 127.0.0.1: records each request, answers 201, or 422 for a wrong shape."""

    def __init__(self, provider: str, answers: list[int] | None = None) -> None:
        self.provider, self.requests, self.answers = provider, [], list(answers or [])
        forge = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                problems = _problems(forge.provider, "POST", self.path, headers, raw)
                forge.requests.append({"path": self.path, "body": json.loads(raw or b"{}"), "problems": problems})
                code = forge.answers.pop(0) if forge.answers else (422 if problems else 201)
                answer = json.dumps({"message": "; ".join(problems) or "ok"}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_PUT = do_POST

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        prefix = {"github": "", "gitlab": "/api/v4", "gitea": "/api/v1"}[provider]
        self.api = f"http://127.0.0.1:{self.server.server_address[1]}{prefix}"

    def states(self) -> list[tuple[str, str]]:
        return [(r["body"].get("state"), r["body"].get("description", "")) for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(params=sorted(FORGES))
def forge(request):
    forge = Forge(request.param)
    yield forge
    forge.close()


def _config(forge: Forge, **fields) -> CommitStatus:
    repository = "group/sub/shop" if forge.provider == "gitlab" else "ops/shop"
    return CommitStatus(provider=forge.provider, api_url=forge.api, repository=repository, token_env="FORGE_TOKEN",
                        **fields)


def test_each_forge_gets_its_documented_request(forge):
    config = _config(forge, target_url="https://reconciler.example.com/stacks/{stack}")
    for state in StatusState:
        send_status(status_request(config, TOKEN, sha="3f" * 20, state=state, stack="shop-web",
                                   description="x" * 400))
    assert [r["problems"] for r in forge.requests] == [[], [], []]
    names = {r["body"][FORGES[forge.provider]["name"]] for r in forge.requests}
    assert names == {"reconciler/shop-web"}
    assert {r["body"]["target_url"] for r in forge.requests} == {"https://reconciler.example.com/stacks/shop-web"}
    if forge.provider == "gitlab":  # the project's path, URL-encoded, as GitLab's :id
        assert forge.requests[0]["path"].startswith("/api/v4/projects/group%2Fsub%2Fshop/statuses/")
        assert [s for s, _ in forge.states()] == ["running", "success", "failed"]
    else:
        assert [s for s, _ in forge.states()] == ["pending", "success", "failure"]
    limit = {"github": 140, "gitlab": 255, "gitea": 255}[forge.provider]
    assert all(len(d) == limit and d.endswith("…") for _, d in forge.states())


def test_a_server_error_is_retried_and_a_refusal_is_not_and_neither_names_the_token(tmp_path):
    forge = Forge("github", answers=[502, 201])
    try:
        config = _config(forge)
        fast = RetryPolicy(attempts=3, base=0.01, cap=0.01)
        send_status(status_request(config, TOKEN, sha="a" * 40, state=StatusState.SUCCESS, stack="s",
                                   description="ok"), retry=fast)
        assert len(forge.requests) == 2
        forge.answers = [401]
        with pytest.raises(PermanentError, match=r"HTTP 401") as refused:
            send_status(status_request(config, TOKEN, sha="a" * 40, state=StatusState.SUCCESS, stack="s",
                                       description="ok"), retry=fast)
        assert len(forge.requests) == 3 and TOKEN not in str(refused.value)
        forge.answers = [503, 503, 503]
        with pytest.raises(TemporaryError, match=r"HTTP 503"):
            send_status(status_request(config, TOKEN, sha="a" * 40, state=StatusState.SUCCESS, stack="s",
                                       description="ok"), retry=fast)
        assert len(forge.requests) == 6
    finally:
        forge.close()


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_a_daemon_sets_pending_then_success_or_failure_on_each_new_commit(forge, tmp_path, memory_engine,
                                                                          monkeypatch, caplog):
    monkeypatch.setenv("FORGE_TOKEN", TOKEN)
    remote, work = tmp_path / "origin.git", tmp_path / "work"
    _git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    _git(tmp_path, "clone", "--quiet", str(remote), str(work))

    def commit(text: str) -> str:
        (work / "stack.yaml").write_text(text)
        _git(work, "add", "-A")
        _git(work, "-c", "user.email=t@e.invalid", "-c", "user.name=t", "commit", "--quiet", "-m", "c")
        _git(work, "push", "--quiet", "origin", "HEAD:main")
        return _git(work, "rev-parse", "HEAD").strip()

    first = commit(SPEC.format(name="shop", version=1))
    status = {"provider": forge.provider, "repository": "ops/shop", "token_env": "FORGE_TOKEN", "api_url": forge.api}
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "resync": 300, "sources": [
        {"name": "repo", "git": {"url": f"file://{remote}", "interval": 0.05}, "status": status}]}))
    daemon = Daemon(load_config(str(config)), reconciler=make_reconciler(memory_engine))
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    caplog.set_level(logging.DEBUG)
    runner.start()
    pending, success, failure = {"gitlab": ("running", "success", "failed")}.get(
        forge.provider, ("pending", "success", "failure"))
    try:
        # The first pass after the daemon starts: no pending (it may be a restart), its end told since it changed.
        wait_until(lambda: forge.requests, 15, "the first commit's status")
        assert forge.states() == [(success, "converged: create 3")]
        assert SHA.search(forge.requests[0]["path"])[0] == first
        second = commit(SPEC.format(name="shop", version=2))
        wait_until(lambda: len(forge.requests) == 3, 15, lambda: f"pending and success: {forge.states()}")
        assert forge.states()[1:] == [(pending, f"applying {second[:12]}"), (success, "converged: replace 1")]
        assert {SHA.search(r["path"])[0] for r in forge.requests[1:]} == {second}
        memory_engine.fail(("create", "shop-web-1"), PermanentError("port 8080 is taken"), times=None)
        third = commit(SPEC.format(name="shop", version=3))
        wait_until(lambda: len(forge.requests) == 5, 15, lambda: f"pending and failure: {forge.states()}")
        assert forge.states()[3:] == [(pending, f"applying {third[:12]}"),
                                      (failure, "failed: replace 1: container:shop-web-1: port 8080 is taken")]
        wait_until(lambda: daemon.workers[0].last is not None and daemon.workers[0].loop._failures >= 2, 15,
                   "a retry that fails the same way")
        assert len(forge.requests) == 5  # told once, not once per retry
        assert all(not r["problems"] for r in forge.requests)
    finally:
        stop.set()
        runner.join(timeout=30)
    assert TOKEN not in caplog.text


def test_statuses_are_checked_where_they_are_configured(tmp_path):
    config = tmp_path / "daemon.yaml"
    config.write_text("sources:\n  - name: shop\n    git: {url: 'https://git.example.com/shop.git'}\n"
                      "    status: {provider: gitea, repository: ops/shop, token_env: T, context: 'x/{branch}'}\n")
    with pytest.raises(SpecError) as error:
        load_config(str(config))
    assert "a gitea status needs api_url" in str(error.value)
    assert "unknown placeholder {branch}: use {stack}" in str(error.value)
    config.write_text("sources:\n  - name: shop\n    git: {url: 'https://git.example.com/shop.git'}\n"
                      "    status: {provider: github, repository: ops/shop}\n")
    with pytest.raises(SpecError, match="token"):
        load_config(str(config))
    config.write_text("sources:\n  - name: shop\n    git: {url: 'https://git.example.com/shop.git'}\n"
                      "    status: {provider: gitlab, repository: '42', token_file: ./t}\n")
    loaded = load_config(str(config)).sources[0].status
    assert (loaded.api_url, loaded.context, loaded.token_file) == (
        "https://gitlab.com/api/v4", "reconciler/{stack}", str(tmp_path / "t"))
