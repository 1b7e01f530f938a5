"""Compose users' expectations of the stack spec, checked on the real engine.

Names resolve where Compose would resolve them (a container's key, on every
network it joins; the stack's default network for containers that name
none), and the container fields Compose spells reach the engine as written.
"""
from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.engine


def _exec(engine, container: str, *command: str) -> tuple[int, str]:
    run = engine.exec_create(container, list(command))
    out = engine.exec_start(run["Id"]).decode(errors="replace")
    return engine.exec_inspect(run["Id"])["ExitCode"], out


def _fetch(engine, container: str, url: str, attempts: int = 20) -> tuple[int, str]:
    for _ in range(attempts):
        code, out = _exec(engine, container, "wget", "-q", "-O", "-", url)
        if code == 0:
            return code, out
        time.sleep(0.25)
    return code, out


def test_containers_answer_to_their_key_on_the_default_network_and_only_where_they_join(stack):
    stack.write("""
        name: STACK
        networks:
          island: {}
        containers:
          db:
            image: BASE
            command: ["sh", "-c", "mkdir -p /w && echo db-here > /w/index.html && exec httpd -f -p 8080 -h /w"]
            init: true
          web:
            image: BASE
            command: ["sleep", "3600"]
            init: true
          loner:
            image: BASE
            command: ["sleep", "3600"]
            init: true
            networks: [island]
          hermit:
            image: BASE
            command: ["sleep", "3600"]
            init: true
            network_mode: none
    """)
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    default = f"{stack.name}_default"
    assert stack.networks() == {default, f"{stack.name}_island"}
    web = stack.engine.inspect_container(f"{stack.name}-web-1")
    assert list(web["NetworkSettings"]["Networks"]) == [default]
    assert "web" in web["NetworkSettings"]["Networks"][default]["Aliases"]
    assert _fetch(stack.engine, f"{stack.name}-web-1", "http://db:8080/") == (0, "db-here\n")
    assert _exec(stack.engine, f"{stack.name}-web-1", "nslookup", "db")[0] == 0
    # Not on the default network: the key does not resolve there.
    code, _ = _exec(stack.engine, f"{stack.name}-loner-1", "nslookup", "db")
    assert code != 0
    hermit = stack.engine.inspect_container(f"{stack.name}-hermit-1")
    assert list(hermit["NetworkSettings"]["Networks"]) == ["none"]
    again = stack.cli("plan", "--detailed-exitcode")
    assert again.code == 0, again.out + again.err


def test_the_default_network_is_removed_when_no_container_uses_it(stack):
    stack.write("""
        name: STACK
        containers:
          app: {image: BASE, command: ["sleep", "3600"], init: true}
    """)
    assert stack.apply().code == 0
    assert stack.networks() == {f"{stack.name}_default"}
    stack.write("""
        name: STACK
        containers:
          app: {image: BASE, command: ["sleep", "3600"], init: true, network_mode: none}
    """)
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    assert stack.networks() == set()
