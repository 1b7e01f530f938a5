"""Compose files in, against the real engine: apply, converge, convert, destroy, and a daemon source.

Corpus projects from tests/fixtures/compose are copied into the test's folder
and run with an override file (the way people adapt a project, and a test of
the override merge) that swaps their images for the local base image and
their commands for ones it can run. Project names are the test stack's
random name, so the stack fixture cleans up.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

from reconciler.labels import CONFIG_HASH

from ..waiting import seconds_until, wait_until
from .conftest import BASE_IMAGE
from .daemons import Repo, RunningDaemon
from .registry import free_port

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "compose"

WEBAPP_TEST = f"""\
services:
  web:
    image: {BASE_IMAGE}
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
  db:
    image: {BASE_IMAGE}
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD-SHELL", "test -d /var/lib/postgresql/data"]
      interval: 1s
      start_period: 0s
  cache:
    image: {BASE_IMAGE}
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
"""


def _project(stack, name: str, override: str) -> list[str]:
    shutil.copytree(CORPUS / name, stack.dir, dirs_exist_ok=True)
    (stack.dir / "compose.test.yaml").write_text(override)
    return ["-f", str(stack.dir / "compose.yaml"), "-f", str(stack.dir / "compose.test.yaml"), "-p", stack.name]


def _when(timestamp: str) -> datetime:
    """An engine timestamp (RFC 3339, nanoseconds) as a datetime: strings of unequal precision do not sort."""
    seconds, _, fraction = timestamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{seconds}.{(fraction or '0')[:6]:0<6}+00:00")


def test_a_compose_project_applies_converges_and_is_destroyed(stack):
    files = _project(stack, "webapp", WEBAPP_TEST)
    env = {"WEB_PORT": str(free_port()), "DB_PASSWORD": "s3cret"}
    result = stack.cli("apply", *files, env=env)
    assert result.code == 0, result.err + result.out
    names = {f"{stack.name}-{key}-1" for key in ("web", "db", "cache")}
    running = {n for n, c in stack.containers().items() if c["State"] == "running"}
    assert running == names
    assert stack.volumes() == {f"{stack.name}_db-data"}
    web = stack.engine.inspect_container(f"{stack.name}-web-1")
    db = stack.engine.inspect_container(f"{stack.name}-db-1")
    assert "DATABASE_URL=postgres://app:s3cret@db:5432/app" in web["Config"]["Env"]
    assert web["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": env["WEB_PORT"]}]}
    # depends_on: {condition: service_healthy}: web started only once db had passed a probe.
    first_ok = min(_when(entry["End"]) for entry in db["State"]["Health"]["Log"] if entry["ExitCode"] == 0)
    assert _when(web["State"]["StartedAt"]) > first_ok
    assert stack.cli("plan", "--detailed-exitcode", *files, env=env).code == 0
    status = stack.cli("status", "--output", "json", *files, env=env)
    assert status.code == 0 and json.loads(status.out)["converged"] is True
    destroyed = stack.cli("destroy", *files, env=env)
    assert destroyed.code == 0, destroyed.err
    assert stack.containers() == {}


def test_the_converted_spec_owns_the_same_containers_with_the_same_config_hashes(stack):
    files = _project(stack, "webapp", WEBAPP_TEST)
    env = {"WEB_PORT": str(free_port())}
    assert stack.cli("apply", *files, env=env).code == 0
    before = {name: (c["Id"], c["Labels"][CONFIG_HASH]) for name, c in stack.containers().items()}
    converted = stack.cli("convert", *files, "-o", str(stack.dir / "stack.yaml"), env=env)
    assert converted.code == 0, converted.err
    assert "services:" not in (stack.dir / "stack.yaml").read_text()
    # The converted spec, applied where the compose project ran: nothing to do, nothing replaced.
    plan = stack.cli("plan", "--detailed-exitcode", env={"WEB_PORT": "1"})
    assert plan.code == 0, plan.out + plan.err
    applied = stack.cli("apply")
    assert applied.code == 0, applied.err
    after = {name: (c["Id"], c["Labels"][CONFIG_HASH]) for name, c in stack.containers().items()}
    assert after == before and len(after) == 3


def test_builds_env_file_and_profiles(stack):
    project = _project(stack, "build-targets", textwrap.dedent(f"""\
        services:
          api:
            image: {stack.name}/api:dev
            stop_grace_period: 1s
          worker:
            stop_grace_period: 1s
          tools:
            image: {BASE_IMAGE}
            command: ["sleep", "3600"]
            init: true
            stop_grace_period: 1s
            profiles: [debug]
        """))
    (stack.dir / "ci.env").write_text("COMMIT=c0ffee\n")
    refs = [f"{stack.name}/api:dev", f"{stack.name}-worker:latest"]
    try:
        result = stack.cli("apply", *project, "--env-file", str(stack.dir / "ci.env"), "--profile", "debug")
        assert result.code == 0, result.err + result.out
        api = f"{stack.name}-api-1"
        assert set(stack.containers()) == {api, f"{stack.name}-worker-1", f"{stack.name}-tools-1"}
        assert stack.exec(api, "cat", "/version", "/commit").split() == ["1.4.2", "c0ffee"]
        # Without the profile, the profile's service is pruned; the rest is untouched.
        ids = stack.container_ids()
        again = stack.cli("apply", *project, "--env-file", str(stack.dir / "ci.env"))
        assert again.code == 0, again.err
        assert stack.container_ids() == {k: v for k, v in ids.items() if not k.endswith("-tools-1")}
    finally:
        for ref in refs:
            try:
                stack.engine.remove_image(ref, force=True)
            except Exception:
                pass


def test_an_invalid_compose_file_names_its_line_and_key(stack):
    (stack.dir / "compose.yaml").write_text(f"services:\n  web:\n    image: {BASE_IMAGE}\n"
                                            "    ports: [\"80:http\"]\n    volumes_from: [other]\n")
    result = stack.cli("plan", "-f", str(stack.dir / "compose.yaml"), "-p", stack.name)
    assert result.code == 1
    assert "compose.yaml:5:19: services.web.volumes_from: Compose key 'volumes_from' is not supported" in result.err
    (stack.dir / "compose.yaml").write_text(f"services:\n  web:\n    image: {BASE_IMAGE}\n    ports: [\"80:http\"]\n")
    result = stack.cli("plan", "-f", str(stack.dir / "compose.yaml"), "-p", stack.name)
    assert result.code == 1 and "compose.yaml:4:13: services.web.ports[0]: expected" in result.err
    assert stack.containers() == {}


def test_a_daemon_follows_a_compose_project_in_git(stack, tmp_path):
    (tmp_path / "git").mkdir()
    repo = Repo(tmp_path / "git")
    compose = textwrap.dedent(f"""\
        name: {stack.name}
        services:
          app:
            image: {BASE_IMAGE}
            command: ["sleep", "3600"]
            init: true
            stop_grace_period: 1s
            environment: ["VERSION=${{VERSION:-1}}"]
        """)
    first = repo.commit({"app/compose.yaml": compose})
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({
        "state_dir": str(tmp_path / "state"), "resync": 300,
        "sources": [{"name": "repo", "git": {"url": repo.url, "ref": "main", "interval": 0.5}, "paths": ["app"]}],
    }))
    daemon = RunningDaemon(config)
    try:
        daemon.wait_for(lambda line: line.get("revision") == first and line.get("ok"), timeout=60)
        container = f"{stack.name}-app-1"
        assert "VERSION=1" in stack.engine.inspect_container(container)["Config"]["Env"]
        second = repo.commit({"app/.env": "VERSION=2\n"})
        daemon.wait_for(lambda line: line.get("revision") == second and line.get("ok"), timeout=60)
        wait_until(lambda: "VERSION=2" in stack.engine.inspect_container(container)["Config"]["Env"], 10,
                   "VERSION=2 in the container", step=0.2)
    finally:
        assert daemon.stop() == 0


def _sleepers(*services: str) -> str:
    """An override file running every service as the base image's ``sleep``."""
    lines = ["services:"]
    for service in services:
        lines += [f"  {service}:", f"    image: {BASE_IMAGE}", '    command: ["sleep", "3600"]', "    init: true",
                  "    stop_grace_period: 1s"]
    return "\n".join(lines) + "\n"


def _resolves(engine, container: str, name: str) -> bool:
    """Whether the engine's DNS inside ``container`` knows ``name`` (an internal network's answer to a
    name it does not know is a timeout, not NXDOMAIN: the exit code tells both apart from an answer)."""
    exec_id = engine.exec_create(container, ["nslookup", name, "127.0.0.11"])["Id"]
    output = engine.exec_start(exec_id).decode()
    return engine.exec_inspect(exec_id)["ExitCode"] == 0 and f"Name:\t{name}" in output


def test_networks_isolate_services_and_aliases_resolve_only_where_joined(stack):
    files = _project(stack, "networks", _sleepers("frontend", "api", "db"))
    octet = int(stack.name[-4:], 16) % 250 + 1  # a subnet outside the engine's default pools, per test
    env = {"PRIVATE_SUBNET": f"10.{octet}.{int(stack.name[-2:], 16)}.0/24"}
    result = stack.cli("apply", *files, env=env)
    assert result.code == 0, result.err + result.out
    assert stack.networks() == {f"{stack.name}_{n}" for n in ("public", "private", "default")}
    private = stack.engine.inspect_network(f"{stack.name}_private")
    assert private["Internal"] is True and private["IPAM"]["Config"][0]["Subnet"] == env["PRIVATE_SUBNET"]
    frontend, api, db = (f"{stack.name}-{key}-1" for key in ("frontend", "api", "db"))
    assert _resolves(stack.engine, api, "database")  # db's alias on private, which api joins
    assert _resolves(stack.engine, frontend, "api.internal")  # api's alias on public
    assert not _resolves(stack.engine, frontend, "database")  # frontend shares no network with db
    assert not _resolves(stack.engine, db, "api.internal")  # the alias is public's, db is only on private
    assert stack.cli("plan", "--detailed-exitcode", *files, env=env).code == 0


def test_deploy_settings_reach_the_engine(stack):
    files = _project(stack, "deploy", _sleepers("worker", "scheduler"))
    result = stack.cli("apply", *files, env={"WORKERS": "2"})
    assert result.code == 0, result.err + result.out
    assert set(stack.containers()) == {f"{stack.name}-worker-1", f"{stack.name}-worker-2",
                                       f"{stack.name}-scheduler-1"}
    worker = stack.engine.inspect_container(f"{stack.name}-worker-2")["HostConfig"]
    assert (worker["NanoCpus"], worker["Memory"]) == (250_000_000, 64 * 2**20)
    assert worker["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    scheduler = stack.engine.inspect_container(f"{stack.name}-scheduler-1")["Config"]
    assert scheduler["Healthcheck"]["Test"] == ["NONE"]
    assert stack.cli("plan", "--detailed-exitcode", *files, env={"WORKERS": "2"}).code == 0


def test_configs_secrets_mounts_and_long_syntax_ports(stack):
    (stack.dir / "conf").mkdir()
    (stack.dir / "conf" / "app.ini").write_text("[app]\nmode = test\n")
    (stack.dir / "compose.yaml").write_text(textwrap.dedent(f"""\
        name: {stack.name}
        services:
          app:
            image: {BASE_IMAGE}
            command: ["sleep", "3600"]
            init: true
            stop_grace_period: 1s
            ports:
              - target: 8080
                host_ip: 127.0.0.1
                protocol: tcp
                mode: host
            volumes:
              - type: bind
                source: ./conf
                target: /etc/app
                read_only: true
              - cache:/var/cache/app
            tmpfs: /run/app:size=4m
            configs:
              - source: motd
                target: /etc/motd
            secrets: [token]
        volumes:
          cache:
        configs:
          motd:
            content: "welcome to ${{SITE:-nowhere}}"
        secrets:
          token:
            environment: API_TOKEN
        """))
    result = stack.cli("apply", "-f", str(stack.dir / "compose.yaml"), env={"API_TOKEN": "t0k3n", "SITE": "lab"})
    assert result.code == 0, result.err + result.out
    container = f"{stack.name}-app-1"
    assert stack.exec(container, "cat", "/etc/motd") == "welcome to lab"
    assert stack.exec(container, "cat", "/run/secrets/token") == "t0k3n"
    assert "mode = test" in stack.exec(container, "cat", "/etc/app/app.ini")
    assert "Read-only file system" in stack.exec(container, "touch", "/etc/app/x")
    host = stack.engine.inspect_container(container)["HostConfig"]
    assert host["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    tmpfs = [m for m in host["Mounts"] if m["Target"] == "/run/app"]
    assert tmpfs == [{"Target": "/run/app", "Type": "tmpfs", "TmpfsOptions": {"SizeBytes": 4 * 2**20}}]
    assert stack.volumes() == {f"{stack.name}_cache"}


def test_watch_follows_the_compose_file_and_its_dotenv(stack):
    compose = stack.dir / "compose.yaml"
    compose.write_text(textwrap.dedent(f"""\
        services:
          web:
            image: {BASE_IMAGE}
            command: ["sleep", "3600"]
            init: true
            stop_grace_period: 1s
            environment: {{LEVEL: "${{LEVEL:-one}}"}}
        """))
    container = f"{stack.name}-web-1"

    def level() -> str:
        try:
            env = stack.engine.inspect_container(container)["Config"]["Env"]
        except Exception:
            return ""
        return next((e.split("=", 1)[1] for e in env if e.startswith("LEVEL=")), "")

    def wait(value: str) -> bool:
        return seconds_until(lambda: level() == value and stack.containers().get(container, {}).get("State")
                             == "running", 30, step=0.1) is not None

    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "watch", "-f", str(compose), "-p", stack.name,
                             "--resync", "300"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=os.environ.copy())
    try:
        assert wait("one"), "watch never brought the project up"
        (stack.dir / ".env").write_text("LEVEL=two\n")
        assert wait("two"), "a change of .env was not applied"
        compose.write_text(compose.read_text().replace("${LEVEL:-one}", "three"))
        assert wait("three"), "a change of compose.yaml was not applied"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
