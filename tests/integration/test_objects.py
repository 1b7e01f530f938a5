"""Builds, replicas, and networks whose config changed, on the real engine."""
from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.engine

BUILD = """
name: STACK
images:
  app:
    build: {context: ./app, args: {GREETING: hello}}
containers:
  app:
    image: app
    command: ["sleep", "3600"]
    init: true
"""


def write_context(stack, step2: str = "two"):
    app = stack.dir / "app"
    app.mkdir(exist_ok=True)
    (app / "Dockerfile").write_text(
        "FROM BASE\nARG GREETING\nRUN echo $GREETING > /greeting\nCOPY step2.txt /step2.txt\n".replace(
            "BASE", "reconciler/busybox:latest"))
    (app / "step2.txt").write_text(step2)
    (app / ".dockerignore").write_text("notes.md\n")
    (app / "notes.md").write_text("not part of the image\n")


def image_layers(stack, ref):
    return stack.engine.inspect_image(ref)["RootFS"]["Layers"]


def test_build_happens_only_when_inputs_change_and_reuses_early_layers(stack):
    write_context(stack)
    stack.write(BUILD)
    assert stack.apply().code == 0
    ref = f"{stack.name}-app:latest"
    first_layers = image_layers(stack, ref)
    container_id = stack.container_ids()[f"{stack.name}-app-1"]

    (stack.dir / "app" / "notes.md").write_text("edited, but ignored by .dockerignore\n")
    before = time.time()
    noop = stack.apply("--output", "json")
    assert noop.json()["changes"] == [] and noop.json()["engine_calls"].get("write", 0) == 0
    assert stack.events_since(before) == []

    write_context(stack, step2="three")
    plan = stack.cli("plan")
    assert f"~ build image {ref}" in plan.out and "build: inputs changed" in plan.out
    assert f"-/+ container {stack.name}-app-1" in plan.out
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    new_layers = image_layers(stack, ref)
    # The RUN layer before the changed COPY comes from the cache: same layer id.
    assert new_layers[:2] == first_layers[:2] and new_layers[2] != first_layers[2]
    assert stack.container_ids()[f"{stack.name}-app-1"] != container_id
    assert stack.engine.inspect_container(f"{stack.name}-app-1")["Image"] == stack.engine.inspect_image(ref)["Id"]
    stack.engine.remove_image(ref, force=True)


def test_replicas_scale_up_and_down(stack):
    spec = """
        name: STACK
        containers:
          worker:
            image: BASE
            command: ["sleep", "3600"]
            init: true
            replicas: REPLICAS
    """
    stack.write(spec.replace("REPLICAS", "3"))
    assert stack.apply().code == 0
    names = [f"{stack.name}-worker-{n}" for n in (1, 2, 3)]
    assert set(stack.containers()) == set(names)
    stack.write(spec.replace("REPLICAS", "1"))
    result = stack.apply()
    assert result.code == 0
    assert "scaled down" in result.out
    assert set(stack.containers()) == {names[0]}


NET = """
name: STACK
networks:
  back: {ipam: {subnet: SUBNET}}
containers:
  web:
    image: BASE
    command: ["sleep", "3600"]
    init: true
    networks: {back: {aliases: [www]}}
"""


def test_changed_network_needs_the_flag_then_is_recreated_with_its_containers(stack):
    stack.write(NET.replace("SUBNET", "172.31.250.0/24"))
    assert stack.apply().code == 0
    ids = stack.container_ids()
    stack.write(NET.replace("SUBNET", "172.31.251.0/24"))

    plan = stack.cli("plan")
    assert f"-/+ network {stack.name}_back   (forced by subnet)" in plan.out
    refused = stack.apply()
    assert refused.code == 1
    assert "--recreate-networks" in refused.err and "subnet" in refused.err
    assert stack.container_ids() == ids

    result = stack.apply("--recreate-networks")
    assert result.code == 0, result.out + result.err
    net = stack.engine.inspect_network(f"{stack.name}_back")
    assert net["IPAM"]["Config"][0]["Subnet"] == "172.31.251.0/24"
    info = stack.engine.inspect_container(f"{stack.name}-web-1")
    assert info["Id"] != ids[f"{stack.name}-web-1"]
    assert "www" in info["NetworkSettings"]["Networks"][f"{stack.name}_back"]["Aliases"]


def test_host_and_none_network_modes(stack):
    stack.write("""
        name: STACK
        containers:
          onhost:
            image: BASE
            command: ["sleep", "3600"]
            init: true
            network_mode: host
          isolated:
            image: BASE
            command: ["sleep", "3600"]
            init: true
            network_mode: none
    """)
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    for name, mode in (("onhost", "host"), ("isolated", "none")):
        info = stack.engine.inspect_container(f"{stack.name}-{name}-1")
        assert info["HostConfig"]["NetworkMode"] == mode
        assert list(info["NetworkSettings"]["Networks"]) == [mode]
    again = stack.apply("--output", "json")
    assert again.json()["changes"] == [] and again.json()["engine_calls"]["write"] == 0
