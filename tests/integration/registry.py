"""A real, password-protected registry on 127.0.0.1 for tests: Debian's ``docker-registry``.

Each ``Registry`` gets its own free port, a temporary storage folder and an
htpasswd file with one bcrypt-hashed user. ``start()`` waits until ``GET /v2/``
answers (401: auth is on), ``stop()`` ends exactly the process it started.
``push_base`` tags the local base image into it and pushes through the engine.
``Registry(notify=Endpoint(url, headers))`` also sends the registry's push and
pull notifications to ``url``, promptly (a short timeout and backoff).
The session fixture ``registry`` (import it into a test module) runs one for
the whole session.
"""
from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from ..waiting import seconds_until
from .conftest import BASE_IMAGE

__all__ = ["REGISTRY_BINARY", "Endpoint", "Registry", "RegistryInfo", "free_port", "publish", "registry"]

REGISTRY_BINARY = "/usr/bin/docker-registry"

CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
http:
  addr: 127.0.0.1:{port}
auth:
  htpasswd:
    realm: reconciler-tests
    path: {htpasswd}
"""


@dataclass(frozen=True)
class Endpoint:
    """Where the registry sends its notifications (``notifications: endpoints:`` in its config.yml).

    ``timeout``, ``threshold`` and ``backoff`` are short so that deliveries are prompt in a test and a
    refused one is retried within a second.
    """

    url: str
    headers: dict[str, str]
    timeout: str = "2s"
    threshold: int = 3
    backoff: str = "1s"

    def config(self) -> str:
        """The ``notifications:`` section (JSON, which YAML reads as it is)."""
        endpoint = {"name": "tests", "url": self.url, "timeout": self.timeout, "threshold": self.threshold,
                    "backoff": self.backoff, "headers": {k: [v] for k, v in self.headers.items()}}
        return "notifications:\n  endpoints: " + json.dumps([endpoint]) + "\n"


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bcrypt(password: str) -> str:
    with warnings.catch_warnings():  # crypt is deprecated in 3.11 but is what the host offers
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


class Registry:
    """One registry process; ``host`` is ``127.0.0.1:PORT``."""

    def __init__(self, *, username: str = "tester", password: str | None = None,
                 notify: Endpoint | None = None) -> None:
        """``notify``: an endpoint the registry sends its notifications to."""
        self.username = username
        self.notify = notify
        self.password = password or "pw-" + secrets.token_hex(8)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="reconciler-registry-"))
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 20) -> Registry:
        """Write the config and htpasswd, start the process, wait until ``/v2/`` answers."""
        htpasswd = self.dir / "htpasswd"
        htpasswd.write_text(f"{self.username}:{_bcrypt(self.password)}\n")
        (self.dir / "data").mkdir(exist_ok=True)
        config = self.dir / "config.yml"
        config.write_text(CONFIG.format(root=self.dir / "data", port=self.port, htpasswd=htpasswd)
                          + (self.notify.config() if self.notify else ""))
        log = open(self.dir / "registry.log", "wb")
        self.process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)],
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        if seconds_until(self._serving, timeout, step=0.1) is not None:
            return self
        self.stop()
        raise RuntimeError(f"docker-registry did not answer on {self.host}: {self.log_tail()}")

    def _serving(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {self.log_tail()}")
        return self.answers()

    def answers(self) -> bool:
        """True when ``GET /v2/`` gets an HTTP answer (401 is expected: auth is on)."""
        try:
            urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
            return True
        except urllib.error.HTTPError as exc:
            return exc.code == 401
        except OSError:
            return False

    def log_tail(self) -> str:
        path = self.dir / "registry.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        """Stop the process this object started; keep the storage (``start`` again serves it)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def auth_config(self) -> dict:
        return {"username": self.username, "password": self.password}

    def push_base(self, engine: docker.APIClient, base: str, repo: str = "test/busybox", tag: str = "1") -> str:
        """Tag ``base`` as ``HOST/repo:tag``, push it with our credentials, drop the local tag."""
        ref = f"{self.host}/{repo}:{tag}"
        engine.tag(base, f"{self.host}/{repo}", tag=tag)
        try:
            for event in engine.push(f"{self.host}/{repo}", tag=tag, auth_config=self.auth_config,
                                     stream=True, decode=True):
                if "error" in event:
                    raise RuntimeError(f"push {ref}: {event['error']}")
        finally:
            engine.remove_image(ref)
        return ref


@dataclass(frozen=True)
class RegistryInfo:
    """What a test needs: where the registry is, who may use it, and an image pushed to it."""

    host: str
    username: str
    password: str
    ref: str
    server: Registry


def auth_file(tmp_path: Path, registry: RegistryInfo) -> str:
    """A RECONCILER_REGISTRY_AUTH file for ``registry`` whose password comes from ``REG_PW``."""
    path = tmp_path / "registries.yaml"
    path.write_text(f'registries:\n  "{registry.host}": {{username: {registry.username}, password_env: REG_PW}}\n')
    return str(path)


def credentials_env(tmp_path: Path, registry: RegistryInfo) -> dict[str, str]:
    """An environment whose only credentials are ``registry``'s, through ``auth_file``."""
    empty = tmp_path / "no-docker-config"
    empty.mkdir(exist_ok=True)
    return {"DOCKER_CONFIG": str(empty), "RECONCILER_REGISTRY_AUTH": auth_file(tmp_path, registry),
            "REG_PW": registry.password}


@pytest.fixture(scope="session")
def registry(engine) -> RegistryInfo:
    """A password-protected registry on an ephemeral port, holding ``HOST/test/busybox:1``."""
    if not os.access(REGISTRY_BINARY, os.X_OK):
        pytest.fail(f"{REGISTRY_BINARY} is missing; run scripts/engine.sh up", pytrace=False)
    server = Registry().start()
    try:
        ref = server.push_base(engine, BASE_IMAGE)
        yield RegistryInfo(server.host, server.username, server.password, ref, server)
    finally:
        server.close()
        for image in engine.images():  # whatever the tests pulled from it
            for tag in image.get("RepoTags") or []:
                if tag.startswith(server.host + "/"):
                    engine.remove_image(tag, force=True)


#: A tiny image per version: its own config (so its own digest), the version in a label; a broken one exits at once.
GOOD = "FROM {base}\nLABEL automation.version={version}\nCMD [\"sleep\", \"3600\"]\n"
BAD = "FROM {base}\nLABEL automation.version={version}\nCMD [\"sh\", \"-c\", \"echo migration failed; exit 3\"]\n"


def publish(engine: docker.APIClient, registry: RegistryInfo, repository: str, version: str, *, bad: bool = False,
            also: tuple[str, ...] = ()) -> str:
    """Build a tiny image for ``version``, push it as ``HOST/repository:version`` (and under the tags ``also``,
    the same image: a push of a tag whose blobs are there is one manifest); its digest."""
    ref = f"{registry.host}/{repository}"
    dockerfile = (BAD if bad else GOOD).format(base=BASE_IMAGE, version=version)
    for _ in engine.build(fileobj=io.BytesIO(dockerfile.encode()), tag=f"{ref}:{version}", rm=True, decode=True):
        pass
    digest = ""
    try:
        for tag in (version, *also):
            if tag != version:
                engine.tag(f"{ref}:{version}", ref, tag=tag)
            for event in engine.push(ref, tag=tag, auth_config=registry.server.auth_config, stream=True,
                                     decode=True):
                assert "error" not in event, event
                if tag == version:
                    digest = (event.get("aux") or {}).get("Digest", digest)
    finally:
        for tag in (version, *also):
            engine.remove_image(f"{ref}:{tag}", force=True)
    return digest
