"""Pulls through a real password-protected registry: credentials work, failures are distinct and clear.

The registry is Debian's ``docker-registry`` on 127.0.0.1 (see ``registry.py``);
rate limiting and 5xx answers come from a tiny local HTTP server posing as a
registry, since the real one cannot be made to send them.
"""
from __future__ import annotations

import base64
import http.server
import json
import threading

import docker.errors
import pytest

from .registry import auth_file, free_port

pytestmark = pytest.mark.engine

SPEC = """
name: STACK
images:
  app: {ref: "REF"}
containers:
  web:
    image: app
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
"""


def _forget(engine, ref: str) -> None:
    try:
        engine.remove_image(ref, force=True)
    except docker.errors.ImageNotFound:
        pass


@pytest.fixture
def env(tmp_path):
    """An environment with no credentials from the machine's own docker config."""
    empty = tmp_path / "no-docker-config"
    empty.mkdir()
    return {"DOCKER_CONFIG": str(empty), "RECONCILER_REGISTRY_AUTH": ""}


def _running(stack) -> set[str]:
    return {name for name, c in stack.containers().items() if c["State"] == "running"}


def test_pull_with_credentials_from_the_reconciler_auth_file(stack, registry, env, tmp_path):
    _forget(stack.engine, registry.ref)
    stack.write(SPEC.replace("REF", registry.ref))
    env.update(RECONCILER_REGISTRY_AUTH=auth_file(tmp_path, registry),
               REG_PW=registry.password)
    result = stack.apply(env=env)
    assert result.code == 0, result.out + result.err
    assert _running(stack) == {f"{stack.name}-web-1"}
    assert registry.password not in result.out + result.err


def test_pull_with_credentials_from_docker_config_auths(stack, registry, env, tmp_path):
    _forget(stack.engine, registry.ref)
    stack.write(SPEC.replace("REF", registry.ref))
    token = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    (tmp_path / "no-docker-config" / "config.json").write_text(
        json.dumps({"auths": {f"http://{registry.host}": {"auth": token}}}))
    result = stack.apply(env=env)
    assert result.code == 0, result.out + result.err
    assert _running(stack) == {f"{stack.name}-web-1"}
    assert registry.password not in result.out + result.err and token not in result.out + result.err


def test_wrong_password_fails_clearly_and_changes_nothing(stack, registry, env, tmp_path):
    _forget(stack.engine, registry.ref)
    stack.write(SPEC.replace("REF", registry.ref))
    wrong = "wrong-" + registry.password[::-1]
    env.update(RECONCILER_REGISTRY_AUTH=auth_file(tmp_path, registry), REG_PW=wrong)
    result = stack.apply(env=env)
    output = result.out + result.err
    assert result.code == 1
    assert f"authentication failed for registry {registry.host}" in output
    assert wrong not in output and registry.password not in output
    assert "Traceback" not in output
    assert stack.containers() == {}
    with pytest.raises(docker.errors.ImageNotFound):
        stack.engine.inspect_image(registry.ref)


def test_missing_credentials_say_none_are_configured(stack, registry, env):
    _forget(stack.engine, registry.ref)
    stack.write(SPEC.replace("REF", registry.ref))
    result = stack.apply(env=env)
    assert result.code == 1
    assert f"authentication failed for registry {registry.host}" in result.out + result.err
    assert "none are configured" in result.out + result.err
    assert stack.containers() == {}


def test_unknown_image_is_reported_as_not_found(stack, registry, env, tmp_path):
    ref = f"{registry.host}/test/nothing-here:1"
    stack.write(SPEC.replace("REF", ref))
    env.update(RECONCILER_REGISTRY_AUTH=auth_file(tmp_path, registry),
               REG_PW=registry.password)
    result = stack.apply(env=env)
    assert result.code == 1
    assert f"pull {ref}: image not found on registry {registry.host}" in result.out + result.err
    assert "[attempt" not in result.out + result.err  # permanent: not retried
    assert stack.containers() == {}


def test_unreachable_registry_is_retried_then_reported(stack, env):
    host = f"127.0.0.1:{free_port()}"  # nothing listens there: a stopped registry
    stack.write(SPEC.replace("REF", f"{host}/test/busybox:1"))
    result = stack.apply(env=env)
    output = result.out + result.err
    assert result.code == 1
    assert f"registry {host} is unreachable" in output and "connection refused" in output
    assert "[attempt 4]" in output  # the core's default policy: four attempts in all
    assert stack.containers() == {}


class _FakeRegistry:
    """A local HTTP server that answers every request with one status, like a troubled registry."""

    def __init__(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Retry-After", "1")
                self.end_headers()
                self.wfile.write(payload)

            do_HEAD = do_GET

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> _FakeRegistry:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("status, body, expected", [
    (429, {"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]}, "is rate limiting pulls"),
    (503, {"errors": [{"code": "UNAVAILABLE", "message": "maintenance"}]}, "is unreachable"),
])
def test_rate_limits_and_5xx_are_temporary(stack, env, status, body, expected):
    with _FakeRegistry(status, body) as fake:
        stack.write(SPEC.replace("REF", f"{fake.host}/test/busybox:1"))
        result = stack.apply(env=env)
    output = result.out + result.err
    assert result.code == 1
    assert f"registry {fake.host} {expected}" in output
    assert "[attempt 4]" in output
    assert stack.containers() == {}
