"""The desired model of Compose-shaped specs: the default network, aliases by key, and the container fields."""
from __future__ import annotations

from pathlib import Path

from reconciler.hashing import canonical_json
from reconciler.labels import CONFIG_HASH, FIELDS
from reconciler.model import Kind
from reconciler.plan import Reason, plan_changes
from reconciler.spec import load_desired

from .builders import live, live_container, owned


def desired(tmp_path: Path, text: str, **kw):
    (tmp_path / "stack.yaml").write_text(text)
    return load_desired([tmp_path / "stack.yaml"], environ={}, **kw)


def test_containers_without_networks_join_the_stack_default_network_and_answer_to_their_key(tmp_path: Path) -> None:
    state = desired(tmp_path, "name: demo\ncontainers:\n  web: {image: 'base:1', replicas: 2}\n"
                              "  db: {image: 'base:1'}\n")
    assert list(state.networks) == ["default"]
    net = state.networks["default"]
    assert net.name == "demo_default" and net.driver == "bridge" and net.config_hash
    assert state.containers["demo-web-2"].networks == (("demo_default", ("web",)),)
    assert state.containers["demo-db-1"].networks == (("demo_default", ("db",)),)
    assert state.containers["demo-db-1"].network_keys == ("default",)


def test_the_key_is_an_alias_on_every_network_beside_the_spec_aliases(tmp_path: Path) -> None:
    state = desired(tmp_path, "name: demo\nnetworks: {front: {}, back: {}}\ncontainers:\n"
                              "  web: {image: 'base:1', networks: {front: {aliases: [www]}, back: null}}\n")
    assert state.containers["demo-web-1"].networks == (("demo_back", ("web",)), ("demo_front", ("web", "www")))
    assert "default" not in state.networks  # nobody uses it: not created


def test_network_mode_joins_no_network_and_needs_no_default(tmp_path: Path) -> None:
    state = desired(tmp_path, "name: demo\ncontainers:\n  web: {image: 'base:1', network_mode: host}\n")
    assert state.networks == {} and state.containers["demo-web-1"].networks == ()


def test_networks_default_configures_the_default_network_and_may_be_named(tmp_path: Path) -> None:
    state = desired(tmp_path, "name: demo\nnetworks:\n  default: {internal: true}\ncontainers:\n"
                              "  web: {image: 'base:1'}\n  db: {image: 'base:1', networks: [default]}\n")
    assert state.networks["default"].internal
    assert state.containers["demo-db-1"].networks == (("demo_default", ("db",)),)
    # Naming `default` without defining it is the implicit default network.
    implicit = desired(tmp_path, "name: demo\nnetworks: {back: {}}\ncontainers:\n"
                                 "  web: {image: 'base:1', networks: [default, back]}\n")
    assert set(implicit.networks) == {"default", "back"}
    assert [n for n, _ in implicit.containers["demo-web-1"].networks] == ["demo_default", "demo_back"]


def test_a_container_that_was_on_the_engine_bridge_is_replaced_onto_the_default_network(tmp_path: Path) -> None:
    """Upgrading: a container created before the default network was on the engine's bridge."""
    state = desired(tmp_path, "name: demo\ncontainers:\n  web: {image: 'base:1'}\n")
    spec = state.containers["demo-web-1"]
    before = desired(tmp_path, "name: demo\ncontainers:\n  web: {image: 'base:1', network_mode: none}\n")
    # Labels of the old container: hashed without networks (as the older release did for the bridge).
    old = before.containers["demo-web-1"]
    current = live_container(old, details={"networks": ["bridge"]})
    plan = plan_changes(state, live(current, networks=[]))
    kinds = [(c.action.value, c.kind) for c in plan.changes]
    assert kinds == [("create", Kind.NETWORK), ("replace", Kind.CONTAINER)]
    change = plan.changes[1]
    assert change.reason is Reason.CONFIG_CHANGED and "networks" in change.forced_by
    assert 'networks: ["bridge"] → ["demo_default"]' in [str(f) for f in change.fields]
    assert f"network:{state.networks['default'].name}" in change.requires
    # Converged: nothing to do.
    assert plan_changes(state, live(live_container(spec, details={"networks": ["demo_default"]}),
                                    networks=[owned(Kind.NETWORK, state.networks["default"])])).empty


def test_a_container_whose_networks_gain_its_key_alias_shows_networks_changed(tmp_path: Path) -> None:
    state = desired(tmp_path, "name: demo\nnetworks: {back: {}}\ncontainers:\n  web: {image: 'base:1', networks: [back]}\n")
    spec = state.containers["demo-web-1"]
    fields = {**dict(spec.field_hashes), "networks": "0ld"}  # before the key alias
    older = live_container(spec, details={"networks": ["demo_back"]},
                           labels_extra={CONFIG_HASH: "older", FIELDS: canonical_json(fields)})
    plan = plan_changes(state, live(older, networks=[owned(Kind.NETWORK, state.networks["back"])]))
    [change] = plan.changes
    assert [str(f) for f in change.fields] == ["networks: changed"]
