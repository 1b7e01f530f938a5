"""Configs reach containers as read-only files with their owner and mode; a change rolls exactly their users."""
from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.engine

SPEC = """
    name: STACK
    configs:
      app: {file: ./app.conf}
      motd: {content: "hello\\n"}
    containers:
      web:
        image: BASE
        command: ["sleep", "3600"]
        init: true
        configs:
          - app
          - {source: app, target: /etc/app/app.conf, uid: 1000, gid: 1001, mode: "0440"}
      side:
        image: BASE
        command: ["sleep", "3600"]
        init: true
        configs: [motd]
      plain:
        image: BASE
        command: ["sleep", "3600"]
        init: true
"""


def run(engine, container: str, *command: str) -> str:
    """A command's output inside a running container (the SDK's exec_create / exec_start)."""
    exec_id = engine.exec_create(container, list(command))["Id"]
    return engine.exec_start(exec_id).decode()


def file_sources(engine, container: str) -> dict[str, str]:
    """Target → host path of a container's bind mounts."""
    mounts = engine.inspect_container(container)["Mounts"]
    return {m["Destination"]: m["Source"] for m in mounts if m["Type"] == "bind"}


def test_a_config_is_a_read_only_file_with_its_owner_and_mode(stack):
    (stack.dir / "app.conf").write_text("listen 80\n")
    stack.write(SPEC)
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    web = f"{stack.name}-web-1"
    assert run(stack.engine, web, "stat", "-c", "%a %u %g", "/app", "/etc/app/app.conf").split("\n")[:2] == [
        "444 0 0", "440 1000 1001"]
    assert run(stack.engine, web, "cat", "/etc/app/app.conf") == "listen 80\n"
    assert "Read-only file system" in run(stack.engine, web, "sh", "-c", "echo x >> /app 2>&1")
    for mount in stack.engine.inspect_container(web)["Mounts"]:
        if mount["Type"] == "bind":
            assert mount["RW"] is False
    assert run(stack.engine, f"{stack.name}-side-1", "cat", "/motd") == "hello\n"


def test_a_config_change_replaces_only_the_containers_mounting_it_and_prunes_the_old_file(stack):
    (stack.dir / "app.conf").write_text("listen 80\n")
    stack.write(SPEC)
    assert stack.apply().code == 0
    before = stack.container_ids()
    old_files = set(file_sources(stack.engine, f"{stack.name}-web-1").values())
    (stack.dir / "app.conf").write_text("listen 8080\n")
    plan = stack.cli("plan")
    assert plan.code == 0, plan.err
    assert "configs.app:" in plan.out and "(forced by configs.app)" in plan.out
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    after = stack.container_ids()
    changed = sorted(name for name in before if before[name] != after[name])
    assert changed == [f"{stack.name}-web-1"]
    assert run(stack.engine, f"{stack.name}-web-1", "cat", "/app") == "listen 8080\n"
    new_files = set(file_sources(stack.engine, f"{stack.name}-web-1").values())
    assert new_files.isdisjoint(old_files)
    assert not any(os.path.exists(path) for path in old_files)  # no container mounts them now
    assert all(os.path.exists(path) for path in new_files)
    noop = stack.apply("--output", "json").json()
    assert noop["changes"] == [] and noop["engine_calls"]["write"] == 0
    assert noop["engine_calls"]["read"] <= 5  # version negotiation + one list call per kind: no extra for files


def test_destroy_removes_the_files(stack):
    (stack.dir / "app.conf").write_text("listen 80\n")
    stack.write(SPEC)
    assert stack.apply().code == 0
    paths = set(file_sources(stack.engine, f"{stack.name}-web-1").values())
    paths |= set(file_sources(stack.engine, f"{stack.name}-side-1").values())
    assert len(paths) == 3 and all(os.path.exists(p) for p in paths)
    stack_dir = os.path.dirname(os.path.dirname(next(iter(paths))))
    result = stack.cli("destroy")
    assert result.code == 0, result.out + result.err
    assert not any(os.path.exists(p) for p in paths)
    assert not os.path.exists(stack_dir)
