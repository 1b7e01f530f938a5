"""External networks and volumes against the real engine: made by hand, used by stacks, never changed or removed.

The network and the volume are made here with the Docker SDK, as an operator
would with ``docker network create``: they carry no label, so no stack owns
them, and the fixtures remove them (after anything still attached) whatever
the test's outcome.
"""
from __future__ import annotations

import uuid

import docker
import pytest

from ..waiting import wait_until
from .conftest import BASE_IMAGE, PREFIX

LISTEN = "nc -ll -p 8080 -e echo hello from $$(hostname)"  # $$: a literal $ in a spec


@pytest.fixture
def shared_network(engine):
    name = f"{PREFIX}net-{uuid.uuid4().hex[:8]}"
    engine.create_network(name, driver="bridge")
    yield name
    try:
        for container in (engine.inspect_network(name).get("Containers") or {}):
            engine.disconnect_container_from_network(container, name, force=True)
        engine.remove_network(name)
    except docker.errors.NotFound:
        pass


@pytest.fixture
def shared_volume(engine):
    name = f"{PREFIX}vol-{uuid.uuid4().hex[:8]}"
    engine.create_volume(name)
    yield name
    for container in engine.containers(all=True, filters={"volume": name}):
        engine.remove_container(container["Id"], force=True)
    try:
        engine.remove_volume(name, force=True)
    except docker.errors.NotFound:
        pass


def _answer(stack, container: str, peer: str) -> str:
    """What ``peer``'s listener says to ``container`` over the network (nc, by container name)."""
    return stack.exec(container, "nc", "-w", "3", peer, "8080")


def test_two_stacks_share_an_external_network_and_a_destroy_leaves_it(stack, engine, shared_network):
    # A stack spec with the external network, and a Compose project that joins it beside its own default one.
    stack.write(f"""\
        name: STACK
        networks:
          proxy:
            external: true
            name: {shared_network}
        containers:
          a:
            image: BASE
            command: ["sh", "-c", {LISTEN!r}]
            init: true
            stop_grace_period: 1s
            networks: [proxy]
        """)
    other = f"{stack.name}x"
    compose = stack.dir / "other" / "compose.yaml"
    compose.parent.mkdir()
    compose.write_text(f"""\
services:
  b:
    image: {BASE_IMAGE}
    command: ["sh", "-c", {LISTEN!r}]
    init: true
    stop_grace_period: 1s
    networks: [default, proxy]
networks:
  proxy:
    external: true
    name: {shared_network}
""")
    applied = stack.apply()
    assert applied.code == 0, applied.out + applied.err
    joined = stack.cli("apply", "-f", str(compose), "-p", other, spec=False)
    assert joined.code == 0, joined.out + joined.err
    a, b = f"{stack.name}-a-1", f"{other}-b-1"
    wait_until(lambda: "hello from" in _answer(stack, b, a), 20, f"{b} reaching {a} by name")
    wait_until(lambda: "hello from" in _answer(stack, a, b), 20, f"{a} reaching {b} by name")
    attached = engine.inspect_container(b)["NetworkSettings"]["Networks"]
    assert set(attached) == {shared_network, f"{other}_default"}
    assert engine.inspect_network(shared_network)["Labels"] in ({}, None)  # nobody's labels were put on it

    planned = stack.cli("plan", "--detailed-exitcode")
    assert planned.code == 0, planned.out + planned.err  # a present external network: no change
    status = stack.cli("status", "--output", "json")
    rows = {row["name"]: row for row in status.json()["objects"]}
    assert rows[shared_network]["state"] == "external" and rows[shared_network]["external"]

    destroyed = stack.cli("destroy", "--prune-volumes")
    assert destroyed.code == 0, destroyed.out + destroyed.err
    assert shared_network in {n["Name"] for n in engine.networks(names=[shared_network])}
    assert "hello from" in _answer(stack, b, b)  # the other stack still runs on it
    gone = stack.cli("destroy", "-f", str(compose), "-p", other, spec=False)
    assert gone.code == 0, gone.out + gone.err
    assert engine.inspect_network(shared_network)["Name"] == shared_network


def test_an_external_volume_and_its_data_survive_destroy_prune_volumes(stack, engine, shared_volume):
    stack.write(f"""\
        name: STACK
        volumes:
          shared:
            external: true
            name: {shared_volume}
          own:
        containers:
          web:
            image: BASE
            command: ["sleep", "3600"]
            init: true
            stop_grace_period: 1s
            volumes: ["shared:/shared", "own:/own"]
        """)
    applied = stack.apply()
    assert applied.code == 0, applied.out + applied.err
    web = f"{stack.name}-web-1"
    stack.exec(web, "sh", "-c", "echo kept > /shared/file")
    assert stack.volumes() == {f"{stack.name}_own"}  # the external one carries no label of the stack

    destroyed = stack.cli("destroy", "--prune-volumes")
    assert destroyed.code == 0, destroyed.out + destroyed.err
    assert stack.volumes() == set()  # the stack's own volume went, as asked
    assert engine.inspect_volume(shared_volume)["Name"] == shared_volume
    assert not (engine.inspect_volume(shared_volume).get("Labels") or {})

    again = stack.apply()
    assert again.code == 0, again.out + again.err
    assert stack.exec(web, "cat", "/shared/file").strip() == "kept"


def test_a_missing_external_network_fails_plan_at_its_line_and_changes_nothing(stack):
    missing = f"{PREFIX}missing-{uuid.uuid4().hex[:8]}"
    path = stack.write(f"""\
        name: STACK
        volumes:
          data:
        networks:
          proxy:
            external: true
            name: {missing}
        containers:
          web:
            image: BASE
            command: ["sleep", "3600"]
            networks: [proxy]
            volumes: ["data:/data"]
        """)
    expected = (f"{path}:6:5: networks.proxy: external network '{missing}' does not exist: "
                f"create it (docker network create {missing}) or remove external:")
    planned = stack.cli("plan")
    assert planned.code == 1 and expected in planned.err, planned.out + planned.err
    applied = stack.apply()
    assert applied.code == 1 and expected in applied.err, applied.out + applied.err
    assert (stack.containers(), stack.networks(), stack.volumes()) == ({}, set(), set())
    status = stack.cli("status")
    assert status.code == 0 and "missing (external)" in status.out, status.out + status.err
