"""Replacing a running container against the real engine: no hole, and back to the old one on failure."""
from __future__ import annotations

import pytest

from ..waiting import wait_until

SPEC = """
name: STACK
containers:
  web:
    image: IMAGE
    command: ["sh", "-c", "exec httpd -f -p 8080 -h /"]
    init: true
    stop_grace_period: 1s
    env: {VERSION: "VER"}
    EXTRA
"""
HEALTHY = 'healthcheck: {test: ["CMD-SHELL", "nc -w 1 127.0.0.1 8080 </dev/null"], interval: 1s, retries: 3}'


def _write(stack, *, image: str = "BASE", version: str = "1", extra: str = "") -> None:
    stack.write(SPEC.replace("IMAGE", image).replace("VER", version).replace("EXTRA", extra))


def _running_web(stack) -> dict:
    containers = stack.containers()
    assert list(containers) == [f"{stack.name}-web-1"], containers
    web = containers[f"{stack.name}-web-1"]
    assert web["State"] == "running", web
    return web


def test_an_image_that_cannot_be_pulled_leaves_the_old_container_running(stack):
    _write(stack)
    assert stack.apply().code == 0
    before = _running_web(stack)["Id"]
    _write(stack, image="127.0.0.1:9/reconciler-test/missing:1", version="2")
    result = stack.apply()
    assert result.code == 1
    assert _running_web(stack)["Id"] == before, result.out  # never stopped, never renamed


def test_a_config_the_engine_refuses_leaves_the_old_container_as_it_was(stack):
    _write(stack)
    assert stack.apply().code == 0
    before = _running_web(stack)["Id"]
    _write(stack, version="2", extra="memory: 1k")
    result = stack.apply()
    assert result.code == 1
    assert "Minimum memory limit" in result.out, result.out
    after = _running_web(stack)
    assert after["Id"] == before and after["Names"] == [f"/{stack.name}-web-1"]


def test_start_first_starts_the_new_container_before_the_old_one_stops(stack):
    import time

    _write(stack, extra=HEALTHY)
    assert stack.apply().code == 0
    old = _running_web(stack)["Id"]
    since = time.time()
    _write(stack, version="2", extra=HEALTHY)
    result = stack.apply("--output", "json")
    assert result.code == 0, result.out + result.err
    new = _running_web(stack)["Id"]
    assert new != old
    change = next(c for c in result.json()["changes"] if c["kind"] == "container")
    assert change["rollout"] == "start-first"
    events = [(e["Action"], e["id"]) for e in stack.events_since(since) if e.get("Type") == "container"]
    assert events.index(("start", new)) < events.index(("die", old)), events


def test_a_new_container_that_never_gets_healthy_is_rolled_back(stack):
    _write(stack, extra=HEALTHY)
    assert stack.apply().code == 0
    old = _running_web(stack)["Id"]
    broken = HEALTHY.replace("8080", "9999").replace("retries: 3", "retries: 1")
    _write(stack, version="2", extra=broken + "\n    update: {timeout: 10s}")
    result = stack.apply()
    assert result.code == 1
    assert "old one was put back" in result.out and "unhealthy" in result.out, result.out
    assert _running_web(stack)["Id"] == old


def test_a_fixed_host_port_rolls_stop_first(stack):
    _write(stack, extra='ports: ["127.0.0.1::8080"]')
    assert stack.apply().code == 0
    plan = stack.cli("plan", "--output", "json")
    assert plan.code == 0
    _write(stack, version="2", extra='ports: ["127.0.0.1:18089:8080"]')
    plan = stack.cli("plan")
    assert "rollout: stop-first (publishes fixed host port 18089)" in plan.out, plan.out
    assert stack.apply().code == 0
    _running_web(stack)


CRASHING = """
name: STACK
containers:
  web:
    image: BASE
    command: COMMAND
    init: true
    stop_grace_period: 1s
    restart: unless-stopped
    update: {order: ORDER}
"""


def _crash_looping(stack, write) -> str:
    """Apply a container whose command exits under ``restart: unless-stopped``; its name once it restarts."""
    write('["sh", "-c", "exit 1"]')
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    name = f"{stack.name}-web-1"
    wait_until(lambda: stack.containers()[name]["State"] == "restarting", 30, f"{name} restarting")
    return name


@pytest.mark.parametrize("order", ["start-first", "stop-first"])
def test_a_crash_looping_container_is_replaced_directly(stack, order):
    """Issue 21 §2: a container the engine keeps restarting has no traffic to protect, and cannot be renamed."""
    def write(command: str) -> None:
        stack.write(CRASHING.replace("COMMAND", command).replace("ORDER", order))

    name = _crash_looping(stack, write)
    write('["sh", "-c", "exec sleep 600"]')
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    containers = stack.containers()
    assert list(containers) == [name], containers  # no "-old-" container left aside
    wait_until(lambda: stack.containers()[name]["State"] == "running", 10, f"{name} running")


def test_the_runtime_renames_and_removes_a_container_the_engine_is_restarting(stack):
    """A roll planned while the container ran may meet it restarting: the engine's "sandbox not found" fails nothing."""
    from reconciler.drivers import DriverContext
    from reconciler.model import Kind, LiveObject
    from reconciler_docker.containers import DockerRuntimeDriver

    name = _crash_looping(stack, lambda command: stack.write(CRASHING.replace("COMMAND", command)
                                                             .replace("ORDER", "start-first")))
    runtime = DockerRuntimeDriver(DriverContext(stack=stack.name))
    container_id = stack.containers()[name]["Id"]
    runtime.rename(container_id, f"{name}-old")
    assert list(stack.containers()) == [f"{name}-old"]
    stack.engine.start(container_id)  # crash-looping again, under its new name
    wait_until(lambda: stack.containers()[f"{name}-old"]["State"] == "restarting", 30, "restarting again")
    runtime.delete(LiveObject(Kind.CONTAINER, f"{name}-old", container_id, state=""))  # as a stale observation
    assert stack.containers() == {}
