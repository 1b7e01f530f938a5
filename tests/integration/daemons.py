"""Real git repositories (file://), ``reconcile daemon`` in a subprocess, and its API, for the daemon's tests."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from prometheus_client.parser import text_string_to_metric_families

from reconciler.waiting import PollTimeout, poll_until

from .conftest import BASE_IMAGE

OPENAPI = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "api.openapi.json").read_text())
HOOK_SECRET = "s3cr3t-" + "x" * 24
PROVIDERS = ("github", "gitea", "gitlab", "generic")
SPEC = """name: {name}
containers:
  web:
    image: {image}
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
    env: {{VERSION: "{version}"}}
"""


def conforms(template: str, method: str, status: int, data) -> None:
    """``data`` is what schemas/api.openapi.json promises for this route and status."""
    pointer = "/".join(["#/paths", template.replace("~", "~0").replace("/", "~1"), method, "responses", str(status),
                        "content", "application~1json", "schema"])
    Draft202012Validator({"components": OPENAPI["components"], "paths": OPENAPI["paths"], "$ref": pointer}).validate(data)


def stack_spec(name: str, version: str) -> str:
    """A one-container stack whose container's env says ``version`` (a new version replaces the container)."""
    return SPEC.format(name=name, image=BASE_IMAGE, version=version)


class Repo:
    """A bare repository (the remote the daemon follows) and a clone to commit from."""

    def __init__(self, root: Path) -> None:
        self.remote = root / "origin.git"
        self.work = root / "work"
        root.mkdir(parents=True, exist_ok=True)
        self._git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(self.remote))
        self._git(root, "clone", "--quiet", str(self.remote), str(self.work))
        self._git(self.work, "checkout", "--quiet", "-B", "main")

    @property
    def url(self) -> str:
        return f"file://{self.remote}"

    def commit(self, files: dict[str, str], message: str = "change", *, amend_from: str | None = None) -> str:
        if amend_from:
            self._git(self.work, "reset", "--quiet", "--hard", amend_from)
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        self._git(self.work, "add", "-A")
        self._git(self.work, "-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "--quiet",
                  "-m", message)
        self._git(self.work, "push", "--quiet", "--force", "origin", "main")
        return self._git(self.work, "rev-parse", "HEAD").strip()

    @staticmethod
    def _git(cwd: Path, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


class RunningDaemon:
    """``reconcile daemon`` in a subprocess, its JSON log lines collected as they come."""

    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "reconciler", "daemon", "--config", str(config),
                                      "--log-format", "json"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONFAULTHANDLER": "1"},
                                     text=True)
        self.lines: list[dict] = []
        self.text: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.text.append(line)
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                pass

    def mark(self) -> int:
        """Where the log is now: ``wait_for(..., after=mark)`` looks only at what comes later."""
        return len(self.lines)

    def wait_for(self, predicate, timeout: float = 30, *, after: int = 0) -> dict:
        try:
            return poll_until(lambda: next((line for line in list(self.lines)[after:] if predicate(line)), None),
                              timeout=timeout, interval=0.1)
        except PollTimeout:
            raise AssertionError("no such log line; log:\n" + "".join(self.text)) from None

    def api(self, timeout: float = 30) -> str:
        """The URL of the daemon's API, from its first log line."""
        return self.wait_for(lambda line: "api" in line, timeout)["api"]

    def stop(self) -> int:
        self.proc.terminate()
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:  # hung: have faulthandler print every thread's stack, then show it
            self.proc.send_signal(signal.SIGABRT)
            self.proc.wait(timeout=10)
            self._reader.join(timeout=5)
            raise AssertionError("the daemon did not stop within 60 s:\n" + "".join(self.text[-300:])) from None
        self._reader.join(timeout=5)
        return code


class Api:
    """A daemon with its API on, following ``repo`` (fetched only when asked: the poll interval is an hour)."""

    def __init__(self, tmp_path: Path, repo: Repo | None, *, tls: tuple[Path, Path] | None = None,
                 sources: list[dict] | None = None, resync: float = 300) -> None:
        """``sources``: the daemon's sources instead of ``repo`` (its ``app`` path); ``resync``: its interval."""
        self.write_token, self.read_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        tokens = tmp_path / "tokens"
        tokens.write_text(f"# name access token\nci write {self.write_token}\nviewer read {self.read_token}\n")
        tokens.chmod(0o600)
        (tmp_path / "hook.secret").write_text(HOOK_SECRET + "\n")
        api = {"listen": "127.0.0.1:0", "tokens_file": str(tokens), "max_body": 4096}
        if tls:
            api["tls"] = {"cert": str(tls[0]), "key": str(tls[1])}
        config = tmp_path / "daemon.yaml"
        config.write_text(json.dumps({
            "state_dir": str(tmp_path / "state"), "resync": resync, "api": api,
            "webhooks": [{"name": p, "provider": p, "secret_file": str(tmp_path / "hook.secret"), "sources": ["repo"]}
                         for p in PROVIDERS],
            "sources": sources or [{"name": "repo", "git": {"url": repo.url, "ref": "main", "interval": 3600},
                                    "paths": ["app"]}],
        }))
        self.daemon = RunningDaemon(config)
        self.url = self.daemon.api()

    def call(self, method: str, path: str, *, token: str | None = None, body: bytes | None = None,
             headers: dict | None = None, context=None):
        """(status, headers, JSON or text) of one request."""
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30, context=context) as response:
                status, got, raw = response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            status, got, raw = exc.code, exc.headers, exc.read()
        try:
            return status, got, json.loads(raw)
        except ValueError:
            return status, got, raw.decode()

    def get(self, path: str, token: str | None = None):
        status, _, data = self.call("GET", path, token=token or self.read_token)
        return status, data

    def stack(self, name: str) -> dict:
        status, data = self.get(f"/api/stacks/{name}")
        assert status == 200, data
        return data

    def wait(self, predicate, timeout: float = 40) -> dict:
        """The first /api/stacks answer whose only stack satisfies ``predicate``."""
        last = None

        def there() -> dict | None:
            nonlocal last
            status, stacks = self.get("/api/stacks?limit=1000")
            assert status == 200, stacks
            last = stacks[0]
            return last if predicate(last) else None

        try:
            return poll_until(there, timeout=timeout, interval=0.2)
        except PollTimeout:
            raise AssertionError(f"the stack never got there: {last}\nlog:\n{''.join(self.daemon.text)}") from None

    def passes(self, revision: str) -> list[dict]:
        return [line for line in self.daemon.lines if line.get("revision") == revision and "trigger" in line]

    def metrics(self) -> dict:
        status, text = self.get("/metrics")
        assert status == 200
        return {family.name: family for family in text_string_to_metric_families(text)}

    def deliver(self, provider: str, body: bytes, *, secret: str = HOOK_SECRET, delivery: str | None = None,
                sign: bool = True):
        headers = {"Content-Type": "application/json"}
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if sign:
            headers.update({"github": {"X-Hub-Signature-256": "sha256=" + digest},
                            "gitea": {"X-Gitea-Signature": digest},
                            "gitlab": {"X-Gitlab-Token": secret},
                            "generic": {"X-Signature-256": "sha256=" + digest}}[provider])
        id_header = {"github": "X-GitHub-Delivery", "gitea": "X-Gitea-Delivery", "gitlab": "X-Gitlab-Event-UUID",
                     "generic": "X-Delivery-Id"}[provider]
        headers[id_header] = delivery or str(uuid.uuid4())
        return self.call("POST", f"/hooks/{provider}", body=body, headers=headers)


@pytest.fixture
def repo(tmp_path) -> Repo:
    """A git repository (a bare remote and a clone to commit from) for a daemon to follow."""
    return Repo(tmp_path / "git")


@pytest.fixture
def api(stack, repo, tmp_path):
    """A daemon with its API on, following ``repo``, converged at its first commit (``api.first``)."""
    first = repo.commit({"app/stack.yaml": stack_spec(stack.name, "1")})
    running = Api(tmp_path, repo)
    running.first = first
    running.wait(lambda s: s["revision"] == first and s["state"] == "converged")
    yield running
    assert running.daemon.stop() == 0
