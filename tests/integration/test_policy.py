"""The policy plugin through the real CLI: a denied plan makes no write at all; a compliant one applies."""
from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.engine

NETWORK_AND_VOLUME = """
name: STACK
networks:
  back: {}
volumes:
  cache: {}
containers:
  web:
    image: BASE
    command: ["sleep", "3600"]
    init: true
    networks: [back]
    volumes: ["./data:/srv/data:ro", "cache:/cache"]
    stop_grace_period: 1s
"""

DENIED = NETWORK_AND_VOLUME + """
  agent:
    image: BASE
    command: ["sleep", "3600"]
    volumes: ["/var/run/docker.sock:/var/run/docker.sock"]
  snoop:
    image: BASE
    command: ["sleep", "3600"]
    volumes: [{type: bind, source: /etc, target: /host-etc, read_only: true}]
"""


def write_policy(stack) -> dict[str, str]:
    (stack.dir / "data").mkdir(exist_ok=True)
    path = stack.dir / "policy.yaml"
    path.write_text(f"deny_docker_socket: true\nallowed_host_paths: [{stack.dir / 'data'}]\n")
    return {"RECONCILER_POLICY_FILE": str(path)}


def test_a_denied_plan_lists_every_violation_and_changes_nothing(stack):
    env = write_policy(stack)
    stack.write(DENIED)
    before = time.time()

    result = stack.apply("--allow-outside-paths", env=env)  # the socket and /etc are outside the repository

    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.err
    # The CLI may prefix each reason line (e.g. with the plugin's name): take each line from "container ".
    violations = [line[line.index("container "):] for line in result.err.splitlines() if "container " in line]
    agent, snoop = f"container agent ({stack.name}-agent-1): ", f"container snoop ({stack.name}-snoop-1): "
    assert len(violations) == 3, result.err
    assert any(v.startswith(agent) and "deny_docker_socket" in v for v in violations)
    assert any(v.startswith(agent) and "allowed_host_paths" in v for v in violations)
    assert any(v.startswith(snoop) and "bind mount /etc at /host-etc" in v and "allowed_host_paths" in v
               for v in violations)
    assert "container web" not in result.err

    assert stack.containers() == {}
    assert stack.networks() == set() and stack.volumes() == set()
    assert stack.events_since(before) == []

    plan = stack.cli("plan", "--allow-outside-paths", env=env)
    assert plan.code == 1
    assert "apply would be refused by plugin policy:" in plan.out
    assert "[policy] container agent" in plan.out


def test_a_compliant_spec_applies_under_the_same_policy(stack):
    env = write_policy(stack)
    stack.write(DENIED)
    assert stack.apply("--allow-outside-paths", env=env).code == 1

    stack.write(NETWORK_AND_VOLUME)
    result = stack.apply(env=env)

    assert result.code == 0, result.out + result.err
    assert set(stack.containers()) == {f"{stack.name}-web-1"}
    assert stack.containers()[f"{stack.name}-web-1"]["State"] == "running"


def test_a_broken_policy_file_refuses_the_apply(stack):
    path = stack.dir / "policy.yaml"
    path.write_text("deny_docker_socket: true\nallow_anything: true\n")
    stack.write(NETWORK_AND_VOLUME)
    (stack.dir / "data").mkdir()

    result = stack.apply(env={"RECONCILER_POLICY_FILE": str(path)})

    assert result.code == 1, result.out + result.err
    assert f"policy file {path}" in result.err and "allow_anything" in result.err, result.err
    assert "Traceback" not in result.err
    assert stack.containers() == {}

    # Nothing in a teardown can break a rule: a broken policy never blocks it.
    assert stack.apply().code == 0
    assert stack.containers() != {}
    destroyed = stack.cli("destroy", env={"RECONCILER_POLICY_FILE": str(path)})
    assert destroyed.code == 0, destroyed.out + destroyed.err
    assert stack.containers() == {}
