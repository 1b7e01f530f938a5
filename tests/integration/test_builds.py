"""Builds against the real engine and registry: streamed progress, secret build args, push.

The registry is Debian's ``docker-registry`` with htpasswd auth (``registry.py``);
credentials reach the reconciler through ``RECONCILER_REGISTRY_AUTH`` as for pulls.
"""
from __future__ import annotations

import sys
import uuid

import docker.errors
import pytest

from .conftest import BASE_IMAGE, REPO
from .registry import credentials_env

pytestmark = pytest.mark.engine

SECRET = "tok-" + uuid.uuid4().hex  # unique per run, so finding it anywhere is a real leak

SPEC = """
name: STACK
images:
  app:
    build:
      context: ./app
      args:
        TOKEN: {value: "${TOKEN}", secret: true}
        PLAIN: visible
    ref: "REF"
    push: PUSH
"""


@pytest.fixture
def env(tmp_path, registry):
    return {**credentials_env(tmp_path, registry), "TOKEN": SECRET}


@pytest.fixture
def ref(stack, registry):
    """A fresh repository on the test registry; every local tag of it is removed afterwards."""
    ref = f"{registry.host}/test/build-{uuid.uuid4().hex[:8]}:1"
    yield ref
    for image in (ref,):
        try:
            stack.engine.remove_image(image, force=True)
        except docker.errors.NotFound:
            pass


def _write(stack, ref: str, *, push: bool) -> None:
    app = stack.dir / "app"
    app.mkdir(exist_ok=True)
    # A nonce, so the RUN step really runs (a cached step prints nothing).
    (app / "Dockerfile").write_text(f'FROM {BASE_IMAGE}\nARG TOKEN\nARG PLAIN\n'
                                    f'RUN echo "token is $TOKEN plain is $PLAIN nonce {uuid.uuid4().hex}"\n')
    stack.write(SPEC.replace("REF", ref).replace("PUSH", "true" if push else "false"))


def _in_registry(registry, ref: str, env: dict) -> str | Exception:
    sys.path.insert(0, str(REPO / "plugins"))
    from reconciler_docker.credentials import CredentialStore
    from reconciler_docker.distribution import ManifestChecker

    return ManifestChecker(CredentialStore(environ=env)).digests([ref])[ref]


def test_build_streams_progress_and_never_shows_the_secret(stack, ref, env):
    _write(stack, ref, push=False)
    first = stack.apply(env=env)
    output = first.out + first.err
    assert first.code == 0, output
    assert f"  | {ref}: Step 1/" in first.out
    assert f"  | {ref}: token is (secret) plain is visible" in first.out  # the RUN's own output, redacted
    assert SECRET not in output
    image = stack.engine.inspect_image(ref)
    assert SECRET not in repr(image["Config"]["Labels"])

    again = stack.apply(env=env)
    assert again.code == 0 and "nothing to do" in again.out, again.out + again.err
    assert " | " not in again.out


def test_failing_build_error_is_redacted(stack, ref, env):
    app = stack.dir / "app"
    app.mkdir()
    (app / "Dockerfile").write_text(f'FROM {BASE_IMAGE}\nARG TOKEN\nRUN echo "bad $TOKEN" && exit 3\n')
    stack.write(SPEC.replace("REF", ref).replace("PUSH", "false"))
    result = stack.apply(env=env)
    assert result.code == 1
    assert "bad (secret)" in result.out and SECRET not in result.out + result.err
    # No failed intermediate container is left behind holding the build args.
    leftover = [c for c in stack.engine.containers(all=True) if "bad $TOKEN" in c["Command"]]
    assert leftover == []


def test_build_with_push_reaches_the_registry_and_converges(stack, registry, ref, env):
    _write(stack, ref, push=True)
    first = stack.apply(env=env)
    output = first.out + first.err
    assert first.code == 0, output
    assert SECRET not in output and registry.password not in output
    assert f"  | {ref}: The push refers to repository" in first.out, first.out
    assert f"  | {ref}: 1: digest: sha256:" in first.out, first.out  # the push's final status line
    digest = _in_registry(registry, ref, env)
    assert isinstance(digest, str) and digest.startswith("sha256:"), digest

    again = stack.apply("--output", "json", env=env)
    assert again.code == 0, again.out + again.err
    assert again.json()["changes"] == [] and again.json()["engine_calls"]["write"] == 0

    # The registry really serves it: drop the local image, pull it back with the credentials.
    stack.engine.remove_image(ref, force=True)
    repo, tag = ref.rsplit(":", 1)
    stack.engine.pull(repo, tag=tag, auth_config=registry.server.auth_config)
    assert any(d.startswith(repo + "@" + digest) for d in stack.engine.inspect_image(ref)["RepoDigests"])


def test_up_to_date_build_missing_from_registry_is_pushed_not_rebuilt(stack, registry, ref, env):
    _write(stack, ref, push=False)
    assert stack.apply(env=env).code == 0
    built = stack.engine.inspect_image(ref)["Id"]
    stack.write(SPEC.replace("REF", ref).replace("PUSH", "true"))
    plan = stack.cli("plan", env=env)
    assert "push: not in the registry" in plan.out, plan.out + plan.err
    pushed = stack.apply(env=env)
    assert pushed.code == 0, pushed.out + pushed.err
    assert "Step 1/" not in pushed.out  # no rebuild
    assert stack.engine.inspect_image(ref)["Id"] == built
    assert isinstance(_in_registry(registry, ref, env), str)
    assert stack.cli("plan", "--detailed-exitcode", env=env).code == 0


def test_push_with_wrong_password_fails_clearly(stack, registry, ref, env):
    _write(stack, ref, push=True)
    result = stack.apply(env={**env, "REG_PW": "wrong-password"})
    output = result.out + result.err
    assert result.code == 1
    assert f"push {ref}: authentication failed for registry {registry.host}" in output, output
    assert "wrong-password" not in output and SECRET not in output
