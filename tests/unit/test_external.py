"""External networks and volumes: made outside the stack, used by engine name, never created, changed or deleted."""
from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import PlanError, SpecError
from reconciler.model import DesiredState, Kind, LiveObject, Mount, NetworkSpec, VolumeSpec
from reconciler.planner import plan_changes
from reconciler.reconcile import ApplyRequest
from reconciler.spec import load_desired
from reconciler.testing import make_reconciler

from .builders import STACK, actions, container, live, live_container, owned, state

PROXY = NetworkSpec(key="proxy", name="traefik", external=True, origin="stack.yaml:7:5")
SHARED = VolumeSpec(key="shared", name="shared", external=True, origin="stack.yaml:10:5")


def stranger(kind: Kind, name: str, **labels: str) -> LiveObject:
    """An object made by hand or by another stack: no label claims this stack."""
    return LiveObject(kind, name, "id-" + name, dict(labels))


def web_on_external():
    return container(networks=(("traefik", ()),), mounts=(Mount("volume", "/s", "shared", volume_key="shared"),))


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the planner ----------------------------------------------------------------------


def test_a_present_external_object_plans_no_change_whoever_owns_it():
    web = web_on_external()
    for labels in ({}, {"io.reconciler.stack": "other"}):
        found = live(live_container(web), networks=[stranger(Kind.NETWORK, "traefik", **labels)],
                     volumes=[stranger(Kind.VOLUME, "shared", **labels)])
        plan = plan_changes(state(web, networks=[PROXY], volumes=[SHARED]), found)
        assert plan.empty and not plan.refusals


def test_the_stack_creates_its_container_on_an_external_network_and_nothing_else():
    web = web_on_external()
    found = live(networks=[stranger(Kind.NETWORK, "traefik")], volumes=[stranger(Kind.VOLUME, "shared")])
    plan = plan_changes(state(web, networks=[PROXY], volumes=[SHARED]), found)
    assert actions(plan) == [("create", "container:demo-web-1")]
    assert {"network:traefik", "volume:shared"} <= set(plan.changes[0].requires)


def test_an_external_object_the_stack_once_made_is_neither_changed_nor_pruned():
    mine = NetworkSpec(key="proxy", name="traefik", config_hash="old")
    vol = VolumeSpec(key="shared", name="shared", config_hash="old")
    found = live(networks=[owned(Kind.NETWORK, mine)], volumes=[owned(Kind.VOLUME, vol)])
    plan = plan_changes(state(networks=[PROXY], volumes=[SHARED]), found, prune_volumes=True)
    assert plan.empty and not plan.refusals


def test_a_missing_external_object_is_a_refusal_at_its_line_and_never_a_create():
    web = web_on_external()
    plan = plan_changes(state(web, networks=[PROXY], volumes=[SHARED]), live())
    assert ("create", "network:traefik") not in actions(plan) and ("create", "volume:shared") not in actions(plan)
    assert plan.refusals == (
        "stack.yaml:7:5: networks.proxy: external network 'traefik' does not exist: "
        "create it (docker network create traefik) or remove external:",
        "stack.yaml:10:5: volumes.shared: external volume 'shared' does not exist: "
        "create it (docker volume create shared) or remove external:",
    )


def test_a_destroy_leaves_external_objects_alone():
    found = live(networks=[stranger(Kind.NETWORK, "traefik")], volumes=[stranger(Kind.VOLUME, "shared")])
    assert plan_changes(DesiredState(stack=STACK), found, prune_volumes=True).empty


# -- the stack spec -------------------------------------------------------------------


def test_the_engine_name_is_name_else_the_key_as_written(tmp_path):
    spec = write(tmp_path, "stack.yaml", "name: demo\nnetworks:\n  proxy:\n    external: true\n    name: traefik\n"
                                         "volumes:\n  shared:\n    external: true\n  data:\n"
                                         "containers:\n  web:\n    image: busybox:1\n    networks: [proxy]\n"
                                         "    volumes: [shared:/s, data:/d]\n")
    desired = load_desired([spec])
    assert desired.networks["proxy"].name == "traefik" and desired.networks["proxy"].external
    assert desired.volumes["shared"].name == "shared" and desired.volumes["shared"].external
    assert desired.volumes["data"].name == "demo_data" and not desired.volumes["data"].external
    assert desired.networks["proxy"].origin == f"{spec}:4:5"  # the line of external:
    (web,) = desired.containers.values()
    assert [n for n, _ in web.networks] == ["traefik"]
    assert sorted(m.source for m in web.mounts) == ["demo_data", "shared"]


def test_options_that_make_no_sense_with_external_are_refused_at_their_line(tmp_path):
    spec = write(tmp_path, "stack.yaml", "name: demo\nnetworks:\n  proxy:\n    external: true\n    driver: overlay\n"
                                         "    ipam: {subnet: 10.9.0.0/24}\nvolumes:\n  shared:\n    external: true\n"
                                         "    labels: {a: b}\ncontainers:\n  web:\n    image: busybox:1\n")
    with pytest.raises(SpecError) as caught:
        load_desired([spec])
    found = {(p.line, p.path): p.message for p in caught.value.problems}
    assert set(found) == {(5, "networks.proxy.driver"), (6, "networks.proxy.ipam"), (10, "volumes.shared.labels")}
    assert all("external" in message for message in found.values())


def test_a_static_address_on_an_external_network_needs_no_subnet_here(tmp_path):
    spec = write(tmp_path, "stack.yaml", "name: demo\nnetworks:\n  proxy:\n    external: true\n"
                                         "containers:\n  web:\n    image: busybox:1\n"
                                         "    networks:\n      proxy: {ipv4_address: 172.30.0.5}\n")
    assert load_desired([spec]).networks["proxy"].external


# -- Compose --------------------------------------------------------------------------


def test_compose_external_objects_keep_their_names_unprefixed(tmp_path):
    write(tmp_path, "compose.yaml", "services:\n  web:\n    image: busybox:1\n    networks: [default, proxy, old]\n"
                                    "    volumes: [shared:/s]\nnetworks:\n  proxy:\n    external: true\n"
                                    "    name: traefik\n  old:\n    external:\n      name: legacy-net\n"
                                    "volumes:\n  shared:\n    external: true\n")
    desired = load_desired([tmp_path / "compose.yaml"], environ={})
    project = desired.stack
    assert {k: (n.name, n.external) for k, n in desired.networks.items()} == {
        "default": (f"{project}_default", False), "proxy": ("traefik", True), "old": ("legacy-net", True)}
    assert (desired.volumes["shared"].name, desired.volumes["shared"].external) == ("shared", True)
    assert desired.networks["proxy"].origin.endswith("compose.yaml:8:5")
    assert desired.networks["old"].origin.endswith("compose.yaml:11:5")


def test_compose_external_false_is_an_ordinary_object(tmp_path):
    write(tmp_path, "compose.yaml", "name: p\nservices:\n  web:\n    image: busybox:1\n    volumes: [data:/d]\n"
                                    "volumes:\n  data:\n    external: false\n")
    volume = load_desired([tmp_path / "compose.yaml"], environ={}).volumes["data"]
    assert (volume.name, volume.external) == ("p_data", False)


def test_compose_refuses_attributes_beside_external_at_their_line(tmp_path):
    write(tmp_path, "compose.yaml", "services:\n  web:\n    image: busybox:1\n    networks: [proxy]\n"
                                    "networks:\n  proxy:\n    external:\n      name: x\n    name: y\n"
                                    "    driver: overlay\n")
    with pytest.raises(SpecError) as caught:
        load_desired([tmp_path / "compose.yaml"], environ={})
    found = {(p.line, p.path): p.message for p in caught.value.problems}
    assert set(found) == {(9, "networks.proxy.name"), (10, "networks.proxy.driver")}
    assert "conflicts with external.name" in found[(9, "networks.proxy.name")]
    assert "only name beside external" in found[(10, "networks.proxy.driver")]


# -- a whole reconcile, against the memory engine ----------------------------------------


def _desired(tmp_path: Path) -> DesiredState:
    spec = write(tmp_path, "stack.yaml", "name: demo\nnetworks:\n  proxy:\n    external: true\n    name: traefik\n"
                                         "volumes:\n  shared:\n    external: true\n"
                                         "containers:\n  web:\n    image: busybox:1\n    networks: [proxy]\n"
                                         "    volumes: [shared:/s]\n")
    return load_desired([spec])


def test_apply_uses_external_objects_and_destroy_keeps_them(tmp_path, monkeypatch, memory_engine):
    monkeypatch.setenv("RECONCILER_LOCK_DIR", str(tmp_path))
    memory_engine.add(stranger(Kind.NETWORK, "traefik"), stranger(Kind.VOLUME, "shared"))
    reconciler = make_reconciler(memory_engine)
    desired = _desired(tmp_path)
    assert reconciler.apply(desired).ok
    verbs = {call[0] for call in memory_engine.calls}
    assert not verbs & {"create-network", "create-volume", "delete-network", "delete-volume"}
    assert reconciler.plan(desired).plan.empty
    rows = {r["name"]: r for r in reconciler.status(desired).rows}
    assert (rows["traefik"]["state"], rows["traefik"]["external"], rows["traefik"]["managed"]) == (
        "external", True, False)
    assert reconciler.destroy("demo", ApplyRequest(prune_volumes=True)).ok
    assert "traefik" in memory_engine.networks and "shared" in memory_engine.volumes
    assert "demo-web-1" not in memory_engine.containers


def test_a_missing_external_object_fails_plan_and_apply_and_changes_nothing(tmp_path, monkeypatch, memory_engine):
    monkeypatch.setenv("RECONCILER_LOCK_DIR", str(tmp_path))
    memory_engine.add(stranger(Kind.VOLUME, "shared"))
    reconciler = make_reconciler(memory_engine)
    desired = _desired(tmp_path)
    where = f"{tmp_path / 'stack.yaml'}:4:5: networks.proxy: external network 'traefik' does not exist"
    with pytest.raises(PlanError, match=where):
        reconciler.plan(desired)
    with pytest.raises(PlanError, match=where):
        reconciler.apply(desired)
    assert {call[0] for call in memory_engine.calls} == {"observe"}
    status = reconciler.status(desired)
    rows = {r["name"]: r for r in status.rows}
    assert rows["traefik"]["state"] == "missing (external)" and rows["shared"]["state"] == "external"
    assert not status.converged


def test_an_object_the_spec_now_calls_external_leaves_the_record():
    """A destroy reads no spec: the record must stop vouching for what the stack handed over."""
    from reconciler.state import StateStore

    book = StateStore.in_memory().stack("engine", "shop")
    book.created(Kind.NETWORK, "traefik", "net-id", driver="docker", config_hash="old")
    book.created(Kind.NETWORK, "shop_default", "other-id", driver="docker", config_hash="h")
    desired = DesiredState(stack="shop", networks={"proxy": PROXY})
    book.release_external(desired, book.record())
    assert {name for _, name, _ in book.record().created} == {"shop_default"}
