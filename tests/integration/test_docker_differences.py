"""The Docker drivers' ``differences`` against a project Debian's docker-compose 1.29 really started.

Adoption keeps a Compose container only when ``differences`` says it already
is what the spec says: the same Compose file must give [] for every container,
network and volume, a changed file must name exactly what changed, and a
container our own driver made from a spec must agree with that spec.
"""
from __future__ import annotations

import shutil
import subprocess
import textwrap

import pytest

from reconciler.sdk import DriverContext, Kind, LiveObject
from reconciler.sdk.labels import NAME, STACK
from reconciler.spec import load_desired
from reconciler.spec.compose.project import ComposeOptions
from reconciler_docker.containers import DockerRuntimeDriver
from reconciler_docker.networks import DockerNetworkDriver
from reconciler_docker.volumes import DockerVolumeDriver

from .conftest import BASE_IMAGE

pytestmark = pytest.mark.skipif(shutil.which("docker-compose") is None,
                                reason="docker-compose (v1) is not installed: apt-get install docker-compose")

COMPOSE = """\
services:
  web:
    image: BASE
    command: ["httpd", "-f", "-p", "8080"]
    environment:
      LOG_LEVEL: debug
    labels:
      team: shop
    ports:
      - "127.0.0.1::8080"
    volumes:
      - data:/data
      - ./site:/site:ro
    networks:
      front:
        aliases: [www]
      back: {}
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
    restart: unless-stopped
    init: true
    stop_grace_period: 1s
  worker:
    image: BASE
    command: sleep 3600
    init: true
    networks: [back]
volumes:
  data: {}
networks:
  front: {}
  back: {}
"""


def compose(project: str, directory, *args: str) -> None:
    subprocess.run(["docker-compose", "-p", project, *args], cwd=directory, check=True, capture_output=True,
                   timeout=120)


def write(directory, text: str) -> None:
    (directory / "docker-compose.yml").write_text(textwrap.dedent(text).replace("BASE", BASE_IMAGE))


def desired(project: str, directory):
    return load_desired([directory / "docker-compose.yml"], compose=ComposeOptions(project_name=project))


@pytest.fixture
def project(stack):
    """A Compose project (v1) named after the test's stack, taken down with its volumes afterwards."""
    (stack.dir / "site").mkdir()
    write(stack.dir, COMPOSE)
    compose(stack.name, stack.dir, "up", "-d")
    try:
        yield stack
    finally:
        compose(stack.name, stack.dir, "down", "-v", "-t", "1")


def containers(engine, selector: str, key: str) -> dict[str, LiveObject]:
    """The containers matching the label ``selector``, by their label ``key``, as observe reports them."""
    found = engine.containers(all=True, filters={"label": [selector]})
    return {c["Labels"][key]: LiveObject(Kind.CONTAINER, c["Names"][0].lstrip("/"), c["Id"], c["Labels"],
                                         image_id=c["ImageID"]) for c in found}


def test_the_same_compose_file_finds_no_differences_and_a_changed_one_names_each(project, engine):
    spec = desired(project.name, project.dir)
    runtime = DockerRuntimeDriver(DriverContext(stack=project.name))
    live = containers(engine, f"com.docker.compose.project={project.name}", "com.docker.compose.service")
    assert sorted(live) == ["web", "worker"]
    for key, container in live.items():
        assert runtime.differences(spec.containers[f"{project.name}-{key}-1"], container) == [], key
    networks = DockerNetworkDriver(DriverContext(stack=project.name))
    volumes = DockerVolumeDriver(DriverContext(stack=project.name))
    for net in spec.networks.values():
        found = engine.inspect_network(net.name)
        assert networks.differences(net, LiveObject(Kind.NETWORK, net.name, found["Id"])) == [], net.name
    for vol in spec.volumes.values():
        assert volumes.differences(vol, LiveObject(Kind.VOLUME, vol.name, vol.name)) == [], vol.name

    changed = COMPOSE.replace("LOG_LEVEL: debug", "LOG_LEVEL: info").replace("::8080", "::9090") \
        .replace('command: ["httpd", "-f", "-p", "8080"]', 'command: ["httpd", "-f", "-p", "9090"]') \
        .replace("restart: unless-stopped", "restart: always").replace("networks: [back]", "networks: [front]")
    write(project.dir, changed)
    spec = desired(project.name, project.dir)
    assert runtime.differences(spec.containers[f"{project.name}-web-1"], live["web"]) == [
        "command", "env.LOG_LEVEL", "ports", "restart"]
    assert runtime.differences(spec.containers[f"{project.name}-worker-1"], live["worker"]) == ["networks"]


def test_a_container_our_driver_created_agrees_with_its_spec(stack, engine):
    (stack.dir / "site").mkdir()
    write(stack.dir, COMPOSE)
    applied = stack.cli("apply", "-f", str(stack.dir / "docker-compose.yml"), "-p", stack.name)
    assert applied.code == 0, applied.err
    spec = desired(stack.name, stack.dir)
    runtime = DockerRuntimeDriver(DriverContext(stack=stack.name))
    live = containers(engine, f"{STACK}={stack.name}", NAME)
    assert sorted(live) == ["web", "worker"]
    for key, container in live.items():
        assert runtime.differences(spec.containers[f"{stack.name}-{key}-1"], container) == [], key
