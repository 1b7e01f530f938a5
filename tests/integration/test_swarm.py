"""The swarm runtime against a real two-node Swarm (engines 4 and 5, scripts/engines.sh swarm).

Every check of what exists reads the Swarm's own API (the manager's) or, for
traffic, runs inside a task container through its node's engine. The tests
of one deployed stack run in file order: converge, traffic, drift, a node lost.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import docker.errors
import pytest

from reconciler.labels import owner_selector

from ..waiting import wait_until
from .conftest import BASE_IMAGE, PREFIX, Stack
from .swarm import SwarmEngines, remove_swarm_stack, swarm_engines  # noqa: F401  (a session fixture)

PLUGIN_ENV = {"RECONCILER_PLUGINS": "reconciler_swarm"}

APP = f"""
name: STACK
runtime: swarm
networks:
  mesh: {{driver: overlay, attachable: true}}
containers:
  echo:
    image: {BASE_IMAGE}
    command: [nc, -ll, -p, "8080", -e, echo, hi]
    replicas: 2
    init: true
    stop_grace_period: 1s
    networks: [mesh]
    env: {{MODE: prod}}
    placement:
      preferences: [{{spread: node.id}}]
  probe:
    image: {BASE_IMAGE}
    command: [sleep, "3600"]
    init: true
    stop_grace_period: 1s
    networks: [mesh]
    placement:
      constraints: [node.role==worker]
"""


class SwarmStack(Stack):
    """A stack applied to the Swarm's manager, with the swarm runtime loaded."""

    def cli(self, *args: str, **kw):
        return super().cli(*args, "--engine", SwarmEngines.manager_url, env={**PLUGIN_ENV, **(kw.pop("env", {}))}, **kw)

    def services(self) -> dict[str, dict]:
        found = self.engine.services(filters={"label": [owner_selector(self.name)]})
        return {s["Spec"]["Name"]: s for s in found}

    def running_tasks(self, service: str) -> list[dict]:
        return [t for t in self.engine.tasks(filters={"service": [service], "desired-state": ["running"]})
                if t["Status"]["State"] == "running"]


def _new_stack(swarm_engines: SwarmEngines, folder: Path) -> SwarmStack:
    name = PREFIX + uuid.uuid4().hex[:8]
    (folder / name).mkdir(parents=True)
    return SwarmStack(name, folder / name, swarm_engines.manager)


@pytest.fixture
def swarm_stack(swarm_engines, tmp_path):
    stack = _new_stack(swarm_engines, tmp_path)
    yield stack
    remove_swarm_stack(swarm_engines, stack.name)


@pytest.fixture(scope="module")
def deployed(swarm_engines, tmp_path_factory):
    """The APP stack, applied once for the tests below (in file order)."""
    stack = _new_stack(swarm_engines, tmp_path_factory.mktemp("swarm"))
    stack.write(APP)
    result = stack.apply()
    assert result.code == 0, result.err + result.out
    yield stack
    remove_swarm_stack(swarm_engines, stack.name)


def _nodes_of(stack: SwarmStack, service: str) -> set[str]:
    return {t["NodeID"] for t in stack.running_tasks(service)}


def test_a_stack_converges_with_tasks_on_both_nodes_and_a_second_apply_writes_nothing(deployed, swarm_engines):
    echo = f"{deployed.name}_echo"
    nodes = swarm_engines.node_ids()
    assert wait_until(lambda: _nodes_of(deployed, echo) == set(nodes.values()), 90, "echo's tasks on both nodes")
    wait_until(lambda: deployed.running_tasks(f"{deployed.name}_probe"), 60, "the probe's task")
    assert set(deployed.services()) == {echo, f"{deployed.name}_probe"}
    assert {n["Name"]: n["Driver"] for n in deployed.engine.networks(names=[f"{deployed.name}_mesh"])} == {
        f"{deployed.name}_mesh": "overlay"}

    status = deployed.cli("status", "--output", "json")
    assert status.code == 0, status.err
    rows = {row["name"]: row for row in status.json()["objects"]}
    assert rows[echo]["kind"] == "service" and rows[echo]["state"] == "running"
    assert rows[echo]["details"]["tasks"] == "2/2 running"
    assert sorted(rows[echo]["details"]["nodes"].split(", ")) == sorted(f"{n[:12]}: 1" for n in nodes.values())
    text = deployed.cli("status").out
    assert f"service  {echo}" in text and "tasks: 2/2 running" in text

    again = deployed.apply("--output", "json")
    assert again.code == 0, again.err
    report = again.json()
    assert report["changes"] == [] and report["engine_calls"]["write"] == 0


def test_overlay_traffic_crosses_the_nodes_from_inside_a_container(deployed, swarm_engines):
    """The probe's task (on the worker) reaches echo's task on the manager through the overlay network."""
    nodes = swarm_engines.node_ids()
    echo_on_manager = next(t for t in deployed.running_tasks(f"{deployed.name}_echo") if t["NodeID"] == nodes["manager"])
    address = next(a["Addresses"][0].split("/")[0] for a in echo_on_manager["NetworksAttachments"]
                   if a["Network"]["Spec"]["Name"] == f"{deployed.name}_mesh")
    worker = swarm_engines.worker
    probe = next(c for c in worker.containers(filters={"label": [f"com.docker.swarm.service.name={deployed.name}_probe"]}))
    command = ["sh", "-c", f"nc -w 3 {address} 8080 </dev/null"]
    out = worker.exec_start(worker.exec_create(probe["Id"], command)["Id"]).decode()
    assert out.strip() == "hi", out


def test_a_hand_service_update_is_drift_repaired_in_place(deployed, swarm_engines):
    echo = f"{deployed.name}_echo"
    before = deployed.services()[echo]
    subprocess.run(["docker", "-H", SwarmEngines.manager_url, "service", "update", "--detach", "--env-add", "X=1", echo],
                   check=True, capture_output=True)
    plan = deployed.cli("plan", "--detailed-exitcode")
    assert plan.code == 2, plan.err + plan.out
    assert f"~ service {echo}" in plan.out and "changed outside the reconciler: env" in plan.out
    applied = deployed.apply("--output", "json")
    assert applied.code == 0, applied.err + applied.out
    assert [(c["action"], c["reason"]) for c in applied.json()["changes"]] == [("update", "drifted")]
    after = deployed.services()[echo]
    assert after["ID"] == before["ID"]  # updated, not recreated
    assert after["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"] == ["MODE=prod"]
    assert deployed.cli("plan", "--detailed-exitcode").code == 0


def test_a_lost_worker_is_the_swarms_job_status_shows_it_and_no_pass_writes(deployed, swarm_engines):
    echo = f"{deployed.name}_echo"
    nodes = swarm_engines.node_ids()
    wait_until(lambda: len(deployed.running_tasks(echo)) == 2 and not deployed.engine.inspect_service(echo).get(
        "UpdateStatus", {}).get("State") == "updating", 90, "the drift repair to finish")
    swarm_engines.stop_worker()
    try:
        wait_until(lambda: _nodes_of(deployed, echo) == {nodes["manager"]} and len(deployed.running_tasks(echo)) == 2,
                   120, "the Swarm to reschedule echo's tasks onto the manager")
        status = deployed.cli("status", "--output", "json")
        rows = {row["name"]: row for row in status.json()["objects"]}
        assert rows[echo]["details"]["nodes"] == f"{nodes['manager'][:12]}: 2"
        probe = rows[f"{deployed.name}_probe"]
        assert probe["health"] == "degraded" and probe["details"]["tasks"] == "0/1 running"
        passed = deployed.apply("--output", "json")
        assert passed.code == 0, passed.err + passed.out
        assert passed.json()["changes"] == [] and passed.json()["engine_calls"]["write"] == 0
    finally:
        swarm_engines.start_worker()


def test_a_service_the_reconciler_did_not_create_is_refused_and_untouched(swarm_stack):
    # An init and a short grace: `sleep` as PID 1 ignores SIGTERM, and its removal would wait out 10 s.
    stranger = swarm_stack.engine.create_service({"ContainerSpec": {"Image": BASE_IMAGE, "Args": ["sleep", "3600"],
                                                                    "Init": True, "StopGracePeriod": 10**9}},
                                                 name=f"{swarm_stack.name}_web")
    version = swarm_stack.engine.inspect_service(stranger["ID"])["Version"]["Index"]
    swarm_stack.write(f"name: STACK\nruntime: swarm\ncontainers:\n  web: {{image: {BASE_IMAGE}, command: [sleep, '60']}}\n")
    try:
        result = swarm_stack.apply()
        assert result.code == 1
        assert f"container {swarm_stack.name}_web exists and is not managed by this stack" in result.out + result.err
        assert swarm_stack.engine.inspect_service(stranger["ID"])["Version"]["Index"] == version
    finally:
        swarm_stack.engine.remove_service(stranger["ID"])


def test_a_config_change_rotates_the_swarm_config_and_prunes_the_old_one(swarm_stack):
    body = f"""
name: STACK
runtime: swarm
configs:
  site: {{content: "CONTENT"}}
secrets:
  token: {{content: "s3cret-value"}}
containers:
  web:
    image: {BASE_IMAGE}
    command: [sleep, "3600"]
    init: true
    stop_grace_period: 1s
    configs: [{{source: site, target: /etc/site.txt}}]
    secrets: [token]
"""
    swarm_stack.write(body.replace("CONTENT", "one"))
    first = swarm_stack.apply()
    assert first.code == 0, first.err + first.out
    assert "s3cret-value" not in first.out + first.err
    label = {"label": [owner_selector(swarm_stack.name)]}
    old = {c["Spec"]["Name"] for c in swarm_stack.engine.configs(filters=label)}
    assert len(old) == 1 and old.pop().startswith(f"{swarm_stack.name}_site_")
    assert len(swarm_stack.engine.secrets(filters=label)) == 1
    service_id = swarm_stack.services()[f"{swarm_stack.name}_web"]["ID"]

    swarm_stack.write(body.replace("CONTENT", "two"))
    plan = swarm_stack.cli("plan")
    assert "~ service" in plan.out and "configs.site:" in plan.out
    second = swarm_stack.apply()
    assert second.code == 0, second.err + second.out
    configs = {c["Spec"]["Name"] for c in swarm_stack.engine.configs(filters=label)}
    service = swarm_stack.services()[f"{swarm_stack.name}_web"]
    used = {c["ConfigName"] for c in service["Spec"]["TaskTemplate"]["ContainerSpec"]["Configs"]}
    assert configs == used and len(configs) == 1 and service["ID"] == service_id
    # The new version is what the task reads.
    wait_until(lambda: _file_in_task(swarm_stack, "/etc/site.txt") == "two", 60, "the task to read the new config")
    assert _file_in_task(swarm_stack, "/run/secrets/token") == "s3cret-value"

    destroyed = swarm_stack.cli("destroy")
    assert destroyed.code == 0, destroyed.err + destroyed.out
    assert swarm_stack.services() == {}
    assert swarm_stack.engine.configs(filters=label) == [] and swarm_stack.engine.secrets(filters=label) == []


def test_depends_on_waits_for_the_dependencys_tasks(swarm_stack):
    swarm_stack.write(f"""
name: STACK
runtime: swarm
containers:
  db:
    image: {BASE_IMAGE}
    command: [sleep, "3600"]
    init: true
    replicas: 2
    healthcheck: {{test: [CMD, "true"], interval: 1s}}
  app:
    image: {BASE_IMAGE}
    command: [sleep, "3600"]
    init: true
    depends_on: {{db: {{condition: healthy}}}}
""")
    result = swarm_stack.apply("--output", "json")
    assert result.code == 0, result.err + result.out
    assert len(swarm_stack.running_tasks(f"{swarm_stack.name}_db")) == 2  # waited for before app was created
    assert {c["name"] for c in result.json()["changes"]} >= {f"{swarm_stack.name}_db", f"{swarm_stack.name}_app"}


def _file_in_task(stack: SwarmStack, path: str) -> str:
    """The file as a running task of the web service reads it ("" while none can answer: a rolling update
    may stop the task between the listing and the exec)."""
    engines = SwarmEngines()
    for client in (engines.manager, engines.worker):
        for c in client.containers(filters={"label": [f"com.docker.swarm.service.name={stack.name}_web"]}):
            try:
                return client.exec_start(client.exec_create(c["Id"], ["cat", path])["Id"]).decode()
            except docker.errors.APIError:
                continue
    return ""


def test_plugins_list_shows_the_swarm_runtime():
    # Through the entry point this distribution declares (pyproject.toml), and loaded by name besides: once.
    env = {k: v for k, v in os.environ.items() if k != "RECONCILER_PLUGINS"}
    listed = subprocess.run([sys.executable, "-m", "reconciler", "plugins", "list"], capture_output=True, text=True,
                            env=env)
    assert listed.returncode == 0, listed.stderr
    assert "swarm  (reconciler " in listed.stdout and "runtime:swarm" in listed.stdout
    by_name = subprocess.run([sys.executable, "-m", "reconciler", "plugins", "list", "--output", "json"],
                             capture_output=True, text=True, env={**os.environ, **PLUGIN_ENV})
    rows = [row for row in json.loads(by_name.stdout) if "runtime:swarm" in row["drivers"]]
    assert len(rows) == 1 and rows[0]["api_version"] == 2 and rows[0]["state"] == "loaded"


def test_a_docker_stack_pays_nothing_for_the_swarm_runtime(stack):
    """On an engine that manages no Swarm, the swarm driver observes without a single call."""
    stack.write(f"name: STACK\ncontainers:\n  web: {{image: {BASE_IMAGE}, command: [sleep, '600'], init: true}}\n")
    assert stack.apply().code == 0
    plain = stack.apply("--output", "json").json()
    with_swarm = stack.apply("--output", "json", env=PLUGIN_ENV).json()
    assert plain["changes"] == with_swarm["changes"] == []
    assert with_swarm["engine_calls"] == plain["engine_calls"]


def test_a_stack_leaving_the_swarm_runtime_has_its_services_removed(swarm_stack):
    swarm_stack.write(f"name: STACK\nruntime: swarm\nnetworks: {{back: {{driver: overlay, attachable: true}}}}\n"
                      f"containers:\n  web: {{image: {BASE_IMAGE}, command: [sleep, '600'], init: true, networks: [back]}}\n")
    assert swarm_stack.apply().code == 0
    assert set(swarm_stack.services()) == {f"{swarm_stack.name}_web"}
    swarm_stack.write(f"name: STACK\nnetworks: {{back: {{driver: overlay, attachable: true}}}}\n"
                      f"containers:\n  web: {{image: {BASE_IMAGE}, command: [sleep, '600'], init: true, "
                      f"stop_grace_period: 1s, networks: [back]}}\n")
    plan = swarm_stack.cli("plan")
    assert f"- service {swarm_stack.name}_web" in plan.out and f"+ container {swarm_stack.name}-web-1" in plan.out
    result = swarm_stack.apply()
    assert result.code == 0, result.err + result.out
    assert swarm_stack.services() == {}
    containers = swarm_stack.engine.containers(filters={"label": [owner_selector(swarm_stack.name)]})
    assert [c["Names"][0] for c in containers] == [f"/{swarm_stack.name}-web-1"]
    swarm_stack.cli("destroy")


def test_watch_repairs_a_hand_service_update_at_once_not_at_its_resync(swarm_stack):
    swarm_stack.write(f"name: STACK\nruntime: swarm\ncontainers:\n"
                      f"  web: {{image: {BASE_IMAGE}, command: [sleep, '3600'], init: true, env: {{MODE: prod}}}}\n")
    service = f"{swarm_stack.name}_web"
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "watch", "-f", str(swarm_stack.dir / "stack.yaml"),
                             "--resync", "300", "--engine", SwarmEngines.manager_url], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, **PLUGIN_ENV})
    try:
        wait_until(lambda: service in swarm_stack.services(), 30, "watch to create the service")
        time.sleep(1)  # its first pass is over: what follows is a hand edit
        subprocess.run(["docker", "-H", SwarmEngines.manager_url, "service", "update", "--detach", "--env-add",
                        "X=1", service], check=True, capture_output=True)
        started = time.monotonic()
        env = lambda: swarm_stack.services()[service]["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]  # noqa: E731
        wait_until(lambda: env() == ["MODE=prod"], 20, "watch to repair the service")
        assert time.monotonic() - started < 20
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
        print(out)
    assert proc.returncode == 0, out


def test_a_swarm_stack_on_an_engine_that_is_no_manager_is_refused_saying_so(stack):
    stack.write(f"name: STACK\nruntime: swarm\ncontainers:\n  web: {{image: {BASE_IMAGE}}}\n")
    result = stack.cli("plan", env=PLUGIN_ENV)
    assert result.code == 1
    assert "runtime swarm: the default engine is not a Swarm manager (its swarm state: inactive)" in result.err
