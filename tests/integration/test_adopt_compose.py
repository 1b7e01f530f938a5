"""Taking over a project that Debian's docker-compose 1.29 started: data kept, what matches never restarted."""
from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from reconciler.labels import COMPOSE_PROJECT

from .conftest import BASE_IMAGE

pytestmark = pytest.mark.skipif(shutil.which("docker-compose") is None,
                                reason="docker-compose (Debian's 1.29) is not installed: scripts/engine.sh up installs it")

DOCKERFILE = """\
FROM BASE
CMD ["sh", "-c", "echo hi > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"]
"""
COMPOSE = """\
services:
  web:
    build: ./web
    init: true
    stop_grace_period: 1s
    networks: [front, back]
    healthcheck:
      test: ["CMD-SHELL", "nc -w 1 127.0.0.1 8080 </dev/null"]
      interval: 1s
      timeout: 2s
      retries: 3
  api:
    image: BASE
    command: ["sh", "-c", "exec httpd -f -p 8081 -h /"]
    init: true
    stop_grace_period: 1s
    environment:
      VERSION: "@V@"
    networks: [back]
    healthcheck:
      test: ["CMD-SHELL", "nc -w 1 127.0.0.1 8081 </dev/null"]
      interval: 1s
      timeout: 2s
      retries: 3
  db:
    image: BASE
    command: ["sh", "-c", "test -f /data/x || echo first > /data/x; exec sleep 100000"]
    init: true
    stop_grace_period: 1s
    environment:
      MODE: primary
    volumes:
      - dbdata:/data
    networks: [back]
volumes:
  dbdata:
networks:
  front:
  back:
"""


def _compose(stack, project: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker-compose", "-p", project, *args], cwd=stack.dir, capture_output=True, text=True,
                          timeout=180)


def _write(stack, version: str) -> None:
    (stack.dir / "web").mkdir(exist_ok=True)
    stack.write(DOCKERFILE, "web/Dockerfile")
    stack.write(COMPOSE.replace("@V@", version), "compose.yaml")


def _project(stack, project: str) -> dict[str, dict]:
    """The project's containers by name, whoever holds them now (Compose's labels or ours)."""
    found = stack.engine.containers(all=True, filters={"label": [f"{COMPOSE_PROJECT}={project}"]})
    found += stack.engine.containers(all=True, filters={"label": [f"io.reconciler.stack={project}"]})
    return {c["Names"][0].lstrip("/"): stack.engine.inspect_container(c["Id"]) for c in found}


def _container_events(stack, since: float) -> list[tuple[str, str]]:
    """(action, id) of every container event since ``since``, whoever's labels the container carries."""
    time.sleep(0.6)
    until = time.time() + 1
    return [(e["Action"], e["id"]) for e in stack.engine.events(since=int(since), until=int(until), decode=True,
                                                                  filters={"type": ["container"]})]


@pytest.fixture
def projects(stack):
    """The project under test (the stack's name) and a bystander project; both removed afterwards."""
    names = (stack.name, stack.name + "-other")
    yield names
    for name in names:
        _compose(stack, name, "down", "-v", "--remove-orphans")
        for c in stack.engine.containers(all=True, filters={"label": [f"{COMPOSE_PROJECT}={name}"]}):
            stack.engine.remove_container(c["Id"], force=True)
        for v in stack.engine.volumes(filters={"label": [f"{COMPOSE_PROJECT}={name}"]}).get("Volumes") or []:
            stack.engine.remove_volume(v["Name"], force=True)
        for n in stack.engine.networks(filters={"label": [f"{COMPOSE_PROJECT}={name}"]}):
            stack.engine.remove_network(n["Id"])


def test_adopting_a_running_compose_v1_project(stack, projects):
    project, other = projects
    _write(stack, "1")
    for name in projects:
        up = _compose(stack, name, "up", "-d")
        assert up.returncode == 0, up.stderr
    stack.exec(f"{project}_db_1", "sh", "-c", "echo precious > /data/y")
    before = _project(stack, project)
    bystander = {n: c["Id"] for n, c in _project(stack, other).items()}

    _write(stack, "2")  # api's environment changes; web (built by Compose) and db do not
    dry = stack.cli("adopt", "--dry-run", "-p", project, "-f", "compose.yaml")
    assert dry.code == 0, dry.out + dry.err
    for kept in ("db", "web"):
        assert f"keep    container {project}-{kept}-1 (renamed from {project}_{kept}_1)" in dry.out, dry.out
    assert f"replace container {project}-api-1 (renamed from {project}_api_1)" in dry.out, dry.out
    assert "env.VERSION" in dry.out and f"adopt   volume {project}_dbdata" in dry.out, dry.out
    assert _project(stack, project).keys() == before.keys()  # the dry run changed nothing

    since = time.time()
    result = stack.cli("adopt", "-p", project, "-f", "compose.yaml", "--output", "json")
    assert result.code == 0, result.out + result.err
    after = _project(stack, project)
    events = _container_events(stack, since)
    for kept in ("db", "web"):
        old, new = before[f"{project}_{kept}_1"], after[f"{project}-{kept}-1"]
        assert new["Id"] == old["Id"] and new["State"]["StartedAt"] == old["State"]["StartedAt"], kept
        assert new["RestartCount"] == 0 and ("die", old["Id"]) not in events, (kept, events)
    assert stack.exec(f"{project}-db-1", "cat", "/data/x", "/data/y") == "first\nprecious\n"
    api, old_api = after[f"{project}-api-1"], before[f"{project}_api_1"]["Id"]
    assert api["Id"] != old_api and api["State"]["Health"]["Status"] == "healthy"
    assert "VERSION=2" in api["Config"]["Env"]
    assert events.index(("start", api["Id"])) < events.index(("die", old_api)), events  # no gap
    assert set(after) == {f"{project}-db-1", f"{project}-web-1", f"{project}-api-1"}

    again = stack.cli("apply", "-p", project, "-f", "compose.yaml")
    assert again.code == 0 and "nothing to do" in again.out, again.out + again.err
    plan = stack.cli("plan", "-p", project, "-f", "compose.yaml", "--detailed-exitcode")
    assert plan.code == 0, plan.out
    assert {n: c["Id"] for n, c in _project(stack, other).items()} == bystander
    ps = _compose(stack, other, "ps")
    assert ps.returncode == 0 and f"{other}_db_1" in ps.stdout and "Up" in ps.stdout, ps.stdout

    down = stack.cli("destroy", "-p", project, "-f", "compose.yaml", "--prune-volumes")
    assert down.code == 0, down.out + down.err
    assert not _project(stack, project)  # the kept container, taken with Compose's labels, went too
    left = stack.engine.volumes(filters={"label": [f"{COMPOSE_PROJECT}={project}"]}).get("Volumes") or []
    assert left == [] and not stack.engine.networks(filters={"label": [f"{COMPOSE_PROJECT}={project}"]})
    assert {n: c["Id"] for n, c in _project(stack, other).items()} == bystander


def test_a_name_held_by_another_project_is_refused_and_nothing_changes(stack, projects):
    project, other = projects
    _write(stack, "1")
    up = _compose(stack, other, "up", "-d", "db")
    assert up.returncode == 0, up.stderr
    spec = stack.dir / "compose.yaml"
    spec.write_text(spec.read_text().replace("volumes:\n  dbdata:\n", f"volumes:\n  dbdata:\n    name: {other}_dbdata\n"))
    result = stack.cli("adopt", "-p", project, "-f", "compose.yaml")
    assert result.code == 1
    assert f"volume {other}_dbdata exists and belongs to Compose project {other}" in result.out + result.err
    assert not _project(stack, project)


V2_COMPOSE = """\
services:
  db:
    image: BASE
    command: ["sh", "-c", "exec sleep 100000"]
    init: true
    stop_grace_period: 1s
    environment:
      MODE: primary
    volumes:
      - data:/data
  one:
    image: BASE
    command: ["sh", "-c", "exec sleep 100000"]
    init: true
volumes:
  data:
"""


def _v2_project(stack, project: str) -> str:
    """A project as Compose v2 leaves it (``docker compose up -d``), made through the API: v2 is not packaged
    for Debian 12. Names ``<project>-<service>-<n>``, v2's labels and aliases. Returns db's container id."""
    api, version = stack.engine, "2.24.6"
    common = {COMPOSE_PROJECT: project, "com.docker.compose.version": version}
    api.create_network(f"{project}_default", driver="bridge",
                       labels={**common, "com.docker.compose.network": "default"})
    api.create_volume(f"{project}_data", labels={**common, "com.docker.compose.volume": "data"})
    made = {}
    for service, env, mounts in (("db", ["MODE=primary"], [f"{project}_data:/data:rw"]), ("one", None, None)):
        name = f"{project}-{service}-1"
        labels = {**common, "com.docker.compose.service": service, "com.docker.compose.container-number": "1",
                  "com.docker.compose.oneoff": "False", "com.docker.compose.config-hash": "0" * 64,
                  "com.docker.compose.image": "sha256:" + "0" * 64, "com.docker.compose.depends_on": ""}
        host = api.create_host_config(binds=mounts, init=True, network_mode=f"{project}_default")
        networking = api.create_networking_config(
            {f"{project}_default": api.create_endpoint_config(aliases=[service, name])})
        made[service] = api.create_container(BASE_IMAGE, ["sh", "-c", "exec sleep 100000"], name=name,
                                             environment=env, labels=labels, host_config=host,
                                             networking_config=networking,
                                             stop_timeout=1 if service == "db" else None)["Id"]
        api.start(made[service])
    return made["db"]


def test_adopting_a_compose_v2_project_keeps_its_names(stack, projects):
    project, _ = projects
    stack.write(V2_COMPOSE, "compose.yaml")
    db = _v2_project(stack, project)
    started = stack.engine.inspect_container(db)["State"]["StartedAt"]
    dry = stack.cli("adopt", "--dry-run", "-p", project, "-f", "compose.yaml")
    assert dry.code == 0, dry.out + dry.err
    assert f"keep    container {project}-db-1\n" in dry.out and "renamed" not in dry.out, dry.out
    assert f"keep    container {project}-one-1\n" in dry.out and "replace" not in dry.out, dry.out
    assert f"adopt   network {project}_default" in dry.out and f"adopt   volume {project}_data" in dry.out
    result = stack.cli("adopt", "-p", project, "-f", "compose.yaml")
    assert result.code == 0, result.out + result.err
    kept = stack.engine.inspect_container(f"{project}-db-1")
    assert kept["Id"] == db and kept["State"]["StartedAt"] == started
    again = stack.cli("plan", "-p", project, "-f", "compose.yaml", "--detailed-exitcode")
    assert again.code == 0, again.out + again.err
