"""Host bind mounts as Compose means them (issue 22), against the real engine.

A Traefik-style service mounting the Docker socket validates and runs with no
flag; the same Compose file is refused under a policy that denies the socket,
at the mount's file:line, with nothing created; an absolute directory outside
the repository is mounted without a flag, and a missing one is made as Compose
makes it.
"""
from __future__ import annotations

import time

import pytest

from .conftest import BASE_IMAGE

pytestmark = pytest.mark.engine

TRAEFIK = f"""\
services:
  proxy:
    image: {BASE_IMAGE}
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock:ro
"""


def compose(stack, text: str) -> list[str]:
    (stack.dir / "compose.yaml").write_text(text)
    return ["-f", str(stack.dir / "compose.yaml"), "-p", stack.name]


def test_a_service_mounting_the_docker_socket_validates_and_runs(stack):
    files = compose(stack, TRAEFIK)
    assert stack.cli("validate", *files).code == 0

    result = stack.apply(*files)

    assert result.code == 0, result.out + result.err
    proxy = f"{stack.name}-proxy-1"
    assert stack.containers()[proxy]["State"] == "running"
    assert stack.exec(proxy, "sh", "-c", "test -S /var/run/docker.sock && echo socket").strip() == "socket"
    (mount,) = stack.engine.inspect_container(proxy)["Mounts"]
    assert (mount["Type"], mount["Destination"], mount["RW"]) == ("bind", "/var/run/docker.sock", False)
    before = stack.container_ids()[proxy]
    assert stack.apply(*files).code == 0  # converged: nothing to do the second time
    assert stack.container_ids()[proxy] == before


def test_the_same_file_is_refused_under_a_policy_denying_the_socket_at_its_line(stack):
    files = compose(stack, TRAEFIK)
    policy = stack.dir / "policy.yaml"
    policy.write_text("deny_docker_socket: true\n")
    before = time.time()

    result = stack.apply(*files, env={"RECONCILER_POLICY_FILE": str(policy)})

    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.err
    assert f"container proxy ({stack.name}-proxy-1): {stack.dir / 'compose.yaml'}:8:9: volumes: bind mount " \
        in result.err, result.err
    assert "denied by policy rule deny_docker_socket" in result.err
    assert stack.containers() == {}
    assert stack.networks() == set() and stack.volumes() == set()
    assert stack.events_since(before) == []


def test_an_absolute_directory_outside_the_repository_needs_no_flag_and_a_missing_one_is_made(stack, tmp_path):
    outside = tmp_path / "outside-data"
    outside.mkdir()
    (outside / "hello.txt").write_text("from the host\n")
    made = tmp_path / "made-by-the-engine"
    stack.write(f"""
        name: STACK
        containers:
          app:
            image: BASE
            command: ["sleep", "3600"]
            init: true
            stop_grace_period: 1s
            volumes: ["{outside}:/data:ro", "{made}:/made"]
        """)
    assert not made.exists()

    result = stack.apply()

    assert result.code == 0, result.out + result.err
    app = f"{stack.name}-app-1"
    assert stack.exec(app, "cat", "/data/hello.txt") == "from the host\n"
    assert made.is_dir()  # the short syntax makes a missing source, as Compose does
    # a relative path that climbs out of the repository is still refused, naming the flag
    stack.write("""
        name: STACK
        containers:
          app: {image: BASE, command: ["sleep", "3600"], volumes: ["../outside-data:/data:ro"]}
        """)
    refused = stack.cli("validate")
    assert refused.code == 1 and "--allow-outside-paths" in refused.err, refused.err
