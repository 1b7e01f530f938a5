"""The swarm runtime's pure half: spec → ServiceSpec, drift, refusals; and the core's hooks for it.

No engine: ``reconciler_swarm.mapping`` imports no Docker SDK, and the core's
side (one spec per key, an update instead of a replacement) is planned here.
"""
from __future__ import annotations

import copy
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.drivers import DriverRegistry, RuntimeDriver
from reconciler.errors import SpecError
from reconciler.graph import Phase, build_steps
from reconciler.labels import CONFIG_HASH, DRIVER, STACK
from reconciler.model import Kind, LiveObject, LiveState
from reconciler.plan import Action, Reason
from reconciler.planner import plan_changes
from reconciler.spec import load_desired
from reconciler_swarm.mapping import (
    drifted_fields,
    file_object_name,
    service_problems,
    service_spec,
    update_config,
)

REPO = Path(__file__).resolve().parents[2]
CATALOG = {"containers": {"docker": {}, "swarm": {"schedules_replicas": True}},
           "images": ["docker"], "networks": ["bridge", "overlay"], "volumes": ["local"]}

SWARM_STACK = """\
name: demo
runtime: swarm
configs:
  site: {content: "hello\\n"}
secrets:
  token: {content: "s3cret"}
volumes:
  data: {}
containers:
  web:
    image: reconciler/busybox:latest
    command: [httpd, -f, -p, "8080"]
    replicas: 3
    env: {MODE: prod}
    memory: 64m
    cpus: 0.5
    ports: ["8080:8080"]
    volumes: ["data:/data"]
    configs: [{source: site, target: /etc/site.txt}]
    secrets: [token]
    placement:
      constraints: [node.role==worker]
      preferences: [{spread: node.labels.zone}]
      max_replicas_per_node: 2
    update: {order: start-first, parallelism: 2, delay: 3s, min_ready: 10s}
    healthcheck: {test: [CMD, "true"], interval: 5s}
"""


def _load(tmp_path: Path, text: str, drivers=CATALOG):
    (tmp_path / "stack.yaml").write_text(text)
    return load_desired([tmp_path / "stack.yaml"], environ={}, drivers=drivers)


@pytest.fixture
def web(tmp_path: Path):
    return _load(tmp_path, SWARM_STACK).containers["demo_web"]


def test_a_scheduling_runtime_gets_one_spec_per_key_with_its_replicas(tmp_path: Path) -> None:
    state = _load(tmp_path, SWARM_STACK)
    assert list(state.containers) == ["demo_web"]
    web = state.containers["demo_web"]
    assert (web.replicas, web.replica, web.driver) == (3, 0, "swarm")
    assert web.placement_constraints == ("node.role==worker",)
    assert web.placement_preferences == ("node.labels.zone",) and web.max_replicas_per_node == 2


def test_a_swarm_stacks_default_network_is_an_attachable_overlay(tmp_path: Path) -> None:
    net = _load(tmp_path, SWARM_STACK).networks["default"]
    assert (net.name, net.driver, net.attachable) == ("demo_default", "overlay", True)


def test_docker_stacks_keep_their_names_and_hashes(tmp_path: Path) -> None:
    text = "name: demo\ncontainers:\n  web: {image: 'base:1', replicas: 2}\n"
    with_catalog = _load(tmp_path, text)
    without = _load(tmp_path, text, drivers=None)
    assert list(with_catalog.containers) == ["demo-web-1", "demo-web-2"]
    assert with_catalog.containers["demo-web-1"].replicas is None
    assert with_catalog.containers["demo-web-1"].config_hash == without.containers["demo-web-1"].config_hash
    assert with_catalog.networks["default"].driver == "bridge"


def test_placement_is_refused_at_its_line_for_the_docker_runtime(tmp_path: Path) -> None:
    text = "name: demo\ncontainers:\n  web:\n    image: 'base:1'\n    placement: {constraints: [node.role==worker]}\n"
    with pytest.raises(SpecError, match=r"stack.yaml:5.*placement: the docker runtime .* cannot place it"):
        _load(tmp_path, text)


def test_container_name_is_refused_for_a_service(tmp_path: Path) -> None:
    text = "name: demo\nruntime: swarm\ncontainers:\n  web: {image: 'base:1', container_name: w}\n"
    with pytest.raises(SpecError, match="container_name: the swarm runtime names the service demo_web"):
        _load(tmp_path, text)


def test_the_service_spec_maps_every_field(web) -> None:
    labels = {STACK: "demo", CONFIG_HASH: web.config_hash}
    body = service_spec(web, labels, stack="demo", file_ids={
        file_object_name("demo", m): f"id-{m.name}" for m in web.files})
    container = body["TaskTemplate"]["ContainerSpec"]
    assert body["Name"] == "demo_web" and body["Labels"] == labels
    assert container["Image"] == "reconciler/busybox:latest"
    assert container["Args"] == ["httpd", "-f", "-p", "8080"] and container["Command"] is None
    assert container["Env"] == ["MODE=prod"] and container["Labels"] == {}
    assert container["Mounts"] == [{"Type": "volume", "Source": "demo_data", "Target": "/data", "ReadOnly": False}]
    site = next(m for m in web.files if m.name == "site")
    assert container["Configs"] == [{"File": {"Name": "/etc/site.txt", "UID": "0", "GID": "0", "Mode": 0o444},
                                     "ConfigName": f"demo_site_{site.content_hash[:12]}", "ConfigID": "id-site"}]
    assert container["Secrets"][0]["SecretID"] == "id-token"
    assert container["Healthcheck"]["Test"] == ["CMD", "true"] and container["Healthcheck"]["Interval"] == 5 * 10**9
    template = body["TaskTemplate"]
    assert template["Resources"] == {"Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 64 * 2**20}}
    assert template["Placement"] == {"Constraints": ["node.role==worker"], "MaxReplicas": 2,
                                     "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}]}
    assert template["Networks"] == [{"Target": "demo_default", "Aliases": ["web"]}]
    assert template["RestartPolicy"] == {"Condition": "any", "MaxAttempts": 0}
    assert body["Mode"] == {"Replicated": {"Replicas": 3}}
    assert body["EndpointSpec"]["Ports"] == [{"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 8080,
                                              "PublishMode": "ingress"}]


def test_the_update_policy_maps_onto_update_and_rollback_config(web) -> None:
    assert update_config(web, failure_action="rollback") == {
        "Parallelism": 2, "Delay": 3 * 10**9, "FailureAction": "rollback", "Monitor": 10 * 10**9,
        "MaxFailureRatio": 0, "Order": "start-first"}
    plain = replace(web, update=type(web.update)())
    assert update_config(plain, failure_action="pause")["Order"] == "stop-first"
    assert update_config(plain, failure_action="pause")["Monitor"] == 5 * 10**9  # Swarm's default, sent


def _as_swarm_keeps_it(body: dict) -> dict:
    """A live Spec as the Swarm gives it back: defaults added, empty values dropped, networks by ID."""
    live = copy.deepcopy(body)
    template = live["TaskTemplate"]
    template["ForceUpdate"] = 0
    template["Runtime"] = "container"
    template["ContainerSpec"]["Isolation"] = "default"
    template["ContainerSpec"].pop("Command")
    template["ContainerSpec"].pop("TTY")
    template["ContainerSpec"]["Mounts"][0].pop("ReadOnly")
    template["Placement"]["Platforms"] = [{"Architecture": "amd64", "OS": "linux"}]
    live["UpdateConfig"].pop("MaxFailureRatio")
    return live


def test_a_service_as_the_swarm_keeps_it_is_no_drift(web) -> None:
    body = service_spec(web, {"a": "b"}, stack="demo")
    assert drifted_fields(body, _as_swarm_keeps_it(body)) == []


@pytest.mark.parametrize(("edit", "field"), [
    (lambda s: s["TaskTemplate"]["ContainerSpec"]["Env"].append("X=1"), "env"),  # service update --env-add
    (lambda s: s["Labels"].update({"x": "y"}), "labels"),  # --label-add
    (lambda s: s["Mode"]["Replicated"].update({"Replicas": 1}), "replicas"),  # --replicas 1
    (lambda s: s["TaskTemplate"]["ContainerSpec"].update({"Image": "other:1"}), "image"),
    (lambda s: s["TaskTemplate"]["Placement"]["Constraints"].append("node.role==manager"), "placement"),
    (lambda s: s["EndpointSpec"]["Ports"].append({"TargetPort": 1}), "ports"),
    (lambda s: s["UpdateConfig"].update({"Parallelism": 9}), "update"),
    (lambda s: s["TaskTemplate"]["Resources"]["Limits"].pop("MemoryBytes"), "resources"),
    (lambda s: s["TaskTemplate"]["ContainerSpec"].update({"TTY": True}), "tty"),
])
def test_a_hand_edit_is_drift_naming_the_field(web, edit, field) -> None:
    body = service_spec(web, {"a": "b"}, stack="demo")
    live = _as_swarm_keeps_it(body)
    edit(live)
    assert drifted_fields(body, live) == [field]


def test_what_a_service_cannot_do_is_refused_naming_the_field(web) -> None:
    bad = replace(web, privileged=True, devices=("/dev/fuse:/dev/fuse:rwm",), depends_on=(("db", "completed"),))
    problems = service_problems(bad)
    assert [p.split(":")[0] for p in problems] == ["privileged", "devices", "depends_on.db"]
    assert service_problems(web) == []


IMAGES = {"reconciler/busybox:latest": LiveObject(Kind.IMAGE, "reconciler/busybox:latest", "sha256:1",
                                                  image_id="sha256:1")}


def _live_service(spec, *, drift=(), config_hash=None) -> LiveObject:
    return LiveObject(Kind.CONTAINER, spec.name, "svc-id", owned=True, state="running",
                      labels={STACK: "demo", CONFIG_HASH: config_hash or spec.config_hash,
                              DRIVER: "swarm"},
                      details={"networks": ["demo_default"], "volumes": ["demo_data"], "drift": list(drift)})


def test_drift_plans_an_update_in_place_not_a_replacement(tmp_path: Path) -> None:
    state = _load(tmp_path, SWARM_STACK)
    web = state.containers["demo_web"]
    live = LiveState(containers={"demo_web": _live_service(web, drift=["env"])}, images=IMAGES)
    change = next(c for c in plan_changes(state, live).changes if c.kind is Kind.CONTAINER)
    assert (change.action, change.reason, change.live_id) == (Action.UPDATE, Reason.DRIFTED, "svc-id")
    assert "changed outside the reconciler: env" in change.reasons
    assert change.rollout.order == "start-first" and change.rollout.why == "rolling update by the runtime"
    assert [s.phase for s in build_steps([change])] == [Phase.UP]


def test_a_changed_spec_updates_the_service_and_a_converged_one_plans_nothing(tmp_path: Path) -> None:
    state = _load(tmp_path, SWARM_STACK)
    web = state.containers["demo_web"]
    changed = LiveState(containers={"demo_web": _live_service(web, config_hash="old")}, images=IMAGES)
    change = next(c for c in plan_changes(state, changed).changes if c.kind is Kind.CONTAINER)
    assert (change.action, change.reason) == (Action.UPDATE, Reason.CONFIG_CHANGED)
    same = LiveState(containers={"demo_web": _live_service(web)}, images=IMAGES)
    assert [c for c in plan_changes(state, same).changes if c.kind is Kind.CONTAINER] == []


def test_the_registry_marks_scheduling_runtimes() -> None:
    class Scheduling(RuntimeDriver):
        schedules_replicas = True

    registry = DriverRegistry()
    registry.view("p").add_runtime_driver("by-class", Scheduling)
    registry.view("p").add_runtime_driver("by-keyword", lambda ctx: None, schedules_replicas=True)
    registry.view("p").add_runtime_driver("plain", lambda ctx: None)
    assert [registry.schedules_replicas(n) for n in ("by-class", "by-keyword", "plain")] == [True, True, False]
    from reconciler_swarm.services import SwarmRuntimeDriver

    assert SwarmRuntimeDriver.updates_in_place.fget(object.__new__(SwarmRuntimeDriver))
    from reconciler_docker.containers import DockerRuntimeDriver

    assert not DockerRuntimeDriver.updates_in_place.fget(object.__new__(DockerRuntimeDriver))


def test_the_plugin_is_declared_like_the_docker_one() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["reconciler"]["swarm"] == "reconciler_swarm"
    assert "reconciler_swarm" in project["tool"]["setuptools"]["packages"]
    assert project["tool"]["setuptools"]["package-dir"]["reconciler_swarm"] == "plugins/reconciler_swarm"
    import reconciler_swarm

    assert reconciler_swarm.RECONCILER_API_VERSION == 2


def test_loading_the_plugin_imports_no_docker_sdk() -> None:
    import subprocess
    import sys

    code = "import sys, reconciler_swarm, reconciler_swarm.mapping; print('docker' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_validate_refuses_what_a_service_cannot_do_at_the_container(tmp_path: Path) -> None:
    from reconciler.reconcile import Reconciler

    reconciler = Reconciler(plugin_modules=["reconciler_swarm"])
    (tmp_path / "stack.yaml").write_text("name: demo\nruntime: swarm\ncontainers:\n"
                                         "  web: {image: 'base:1', privileged: true}\n")
    with pytest.raises(SpecError) as caught:
        load_desired([tmp_path / "stack.yaml"], environ={}, drivers=reconciler.driver_catalog(),
                     check_options=reconciler.option_problems)
    assert "stack.yaml:4:" in str(caught.value)
    assert "containers.web: privileged: a Swarm service cannot run privileged" in str(caught.value)


def test_a_service_whose_network_is_recreated_comes_down_first(tmp_path: Path) -> None:
    state = _load(tmp_path, SWARM_STACK.replace("runtime: swarm\n", "runtime: swarm\nnetworks:\n  default: "
                                                "{driver: overlay, attachable: true, ipam: {subnet: 10.9.0.0/24}}\n"))
    web = state.containers["demo_web"]
    network = LiveObject(Kind.NETWORK, "demo_default", "net-id", owned=True,
                         labels={STACK: "demo", CONFIG_HASH: "old"})
    live = LiveState(containers={"demo_web": _live_service(web)}, networks={"demo_default": network}, images=IMAGES)
    change = next(c for c in plan_changes(state, live).changes if c.kind is Kind.CONTAINER)
    assert (change.action, change.reason) == (Action.REPLACE, Reason.DEPENDENCY_RECREATED)


def test_endpoint_mode_maps_to_the_endpoint_spec_and_vip_stays_the_default(tmp_path: Path) -> None:
    """dnsrr is what a kernel without IPVS needs (no VIP to load-balance): the name resolves to the tasks."""
    text = ("name: demo\nruntime: swarm\ncontainers:\n  web: {image: 'base:1', replicas: 2, endpoint_mode: dnsrr}\n"
            "  api: {image: 'base:1'}\n")
    state = _load(tmp_path, text)
    web, api = state.containers["demo_web"], state.containers["demo_api"]
    assert web.endpoint_mode == "dnsrr" and api.endpoint_mode is None
    assert service_spec(web, {}, stack="demo")["EndpointSpec"] == {"Mode": "dnsrr", "Ports": []}
    assert service_spec(api, {}, stack="demo")["EndpointSpec"] == {"Mode": "vip", "Ports": []}
    assert web.config()["endpoint_mode"] == "dnsrr"  # in the config hash: a change updates the service
    # A service switched back by hand is drift.
    live = copy.deepcopy(service_spec(web, {}, stack="demo"))
    live["EndpointSpec"]["Mode"] = "vip"
    assert drifted_fields(service_spec(web, {}, stack="demo"), live) == ["ports"]


def test_endpoint_mode_leaves_a_container_without_it_unchanged(tmp_path: Path) -> None:
    text = "name: demo\nruntime: swarm\ncontainers:\n  web: {image: 'base:1'}\n"
    web = _load(tmp_path, text).containers["demo_web"]
    assert "endpoint_mode" not in {k for k, v in web.config().items() if v is not None}


def test_endpoint_mode_dnsrr_with_published_ports_is_refused(web) -> None:
    problems = service_problems(replace(web, endpoint_mode="dnsrr"))
    assert [p.split(":")[0] for p in problems] == ["endpoint_mode"]


def test_endpoint_mode_is_refused_at_its_line_for_the_docker_runtime(tmp_path: Path) -> None:
    text = "name: demo\ncontainers:\n  web:\n    image: 'base:1'\n    endpoint_mode: dnsrr\n"
    with pytest.raises(SpecError, match=r"stack.yaml:5.*endpoint_mode: the docker runtime"):
        _load(tmp_path, text)
