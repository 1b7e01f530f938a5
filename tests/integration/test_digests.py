"""Digests against a real registry: a tag that moves upstream is noticed without a pull, and followed.

The registry is Debian's ``docker-registry`` with htpasswd auth (``registry.py``).
A tag is "moved upstream" by pushing a different image under it and then putting
the old image back under the tag locally: only the registry changed.
"""
from __future__ import annotations

import io
import uuid

import docker.errors
import pytest

from .conftest import BASE_IMAGE
from .registry import credentials_env

pytestmark = pytest.mark.engine

SPEC = """
name: STACK
images:
  app: {ref: "REF", pull: POLICY}
containers:
  web:
    image: app
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
  pinned:
    image: "PINNED"
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
"""


@pytest.fixture
def env(tmp_path, registry):
    return credentials_env(tmp_path, registry)


def _push(engine, registry, repo: str, tag: str) -> None:
    for event in engine.push(f"{registry.host}/{repo}", tag=tag, auth_config=registry.server.auth_config,
                             stream=True, decode=True):
        if "error" in event:
            raise RuntimeError(event["error"])


def _digest(engine, ref: str, repo: str) -> str:
    return next(d.partition("@")[2] for d in engine.inspect_image(ref)["RepoDigests"] if d.startswith(repo + "@"))


def _move_upstream(engine, registry, repo: str, ref: str) -> str:
    """Push a different image as ``ref``, then put the old image back under ``ref`` locally."""
    old_id = engine.inspect_image(ref)["Id"]
    dockerfile = f"FROM {BASE_IMAGE}\nRUN echo v2-{uuid.uuid4().hex} > /v\n".encode()
    for _ in engine.build(fileobj=io.BytesIO(dockerfile), tag=ref, rm=True, decode=True):
        pass
    new_id = engine.inspect_image(ref)["Id"]
    _push(engine, registry, repo, "1")
    engine.tag(old_id, f"{registry.host}/{repo}", tag="1", force=True)
    engine.remove_image(new_id, force=True)  # apply must pull it
    return new_id


@pytest.mark.parametrize("policy", ["if-not-present", "always"])
def test_tag_moved_upstream_is_planned_applied_and_converges(stack, registry, env, policy):
    """With ``pull: always`` too: the docker driver's ``content`` answer, not the policy, decides (a no-op stays one)."""
    engine = stack.engine
    repo = f"test/app-{uuid.uuid4().hex[:8]}"
    full = f"{registry.host}/{repo}"
    ref = registry.server.push_base(engine, BASE_IMAGE, repo=repo, tag="1")
    try:
        # The pinned reference needs the digest the push recorded: pull once to learn it.
        engine.pull(full, tag="1", auth_config=registry.server.auth_config)
        old = _digest(engine, ref, full)
        old_id = engine.inspect_image(ref)["Id"]
        stack.write(SPEC.replace("PINNED", f"{full}@{old}").replace("REF", ref).replace("POLICY", policy))
        first = stack.apply(env=env)
        assert first.code == 0, first.out + first.err
        noop = stack.cli("plan", "--detailed-exitcode", env=env)
        assert noop.code == 0, noop.out + noop.err

        _move_upstream(engine, registry, repo, ref)
        assert engine.inspect_image(ref)["Id"] == old_id  # locally nothing moved
        plan = stack.cli("plan", "--detailed-exitcode", env=env)
        assert plan.code == 2, plan.out + plan.err
        assert "tag moved upstream" in plan.out and old[:19] in plan.out
        assert f"-/+ container {stack.name}-web-1" in plan.out
        assert f"{stack.name}-pinned-1" not in plan.out  # pinned by digest: never moves
        assert registry.password not in plan.out + plan.err

        applied = stack.apply(env=env)
        assert applied.code == 0, applied.out + applied.err
        new_id = engine.inspect_image(ref)["Id"]
        assert new_id != old_id
        running = {name: engine.inspect_container(name)["Image"] for name in stack.containers()}
        assert running == {f"{stack.name}-web-1": new_id, f"{stack.name}-pinned-1": old_id}
        again = stack.cli("plan", "--detailed-exitcode", env=env)
        assert again.code == 0, again.out + again.err

        status = stack.cli("status", "--output", "json", env=env)
        assert status.code == 0, status.err
        rows = {row["name"]: row for row in status.json()["objects"]}
        new = _digest(engine, ref, full)
        assert rows[ref]["digest"] == new and rows[ref]["upstream"] == new
        assert rows[f"{stack.name}-web-1"]["digest"] == new and rows[f"{stack.name}-web-1"]["upstream"] == new
        assert rows[f"{stack.name}-pinned-1"]["digest"] == old and rows[f"{stack.name}-pinned-1"]["upstream"] is None
    finally:
        for image in (ref, f"{full}@{old}" if "old" in locals() else None):
            if image:
                try:
                    engine.remove_image(image, force=True)
                except docker.errors.APIError:
                    pass


def test_failed_check_is_a_warning_not_a_failure(stack, registry, tmp_path):
    """Without credentials the check cannot answer: plan still works and plans nothing for the image."""
    engine = stack.engine
    repo = f"test/app-{uuid.uuid4().hex[:8]}"
    ref = registry.server.push_base(engine, BASE_IMAGE, repo=repo, tag="1")
    try:
        engine.pull(f"{registry.host}/{repo}", tag="1", auth_config=registry.server.auth_config)
        stack.write(SPEC.replace("REF", ref).replace("PINNED", ref).replace("POLICY", "if-not-present"))
        empty = tmp_path / "none"
        empty.mkdir()
        result = stack.cli("plan", "--output", "json", env={"DOCKER_CONFIG": str(empty), "RECONCILER_REGISTRY_AUTH": ""})
        assert result.code == 0, result.out + result.err
        # The containers name no network: the stack's default network comes first.
        assert [c["kind"] for c in result.json()["changes"]] == ["network", "container", "container"]
        status = stack.cli("status", "--output", "json", env={"DOCKER_CONFIG": str(empty), "RECONCILER_REGISTRY_AUTH": ""})
        row = next(r for r in status.json()["objects"] if r["name"] == ref)
        assert row["digest"].startswith("sha256:") and row["upstream"] is None
    finally:
        engine.remove_image(ref, force=True)
