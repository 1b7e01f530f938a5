"""The desired model of Compose-shaped specs: the default network, aliases by key, and the container fields."""
from __future__ import annotations

from pathlib import Path

from reconciler.hashing import canonical_json
from reconciler.labels import CONFIG_HASH, FIELDS
from reconciler.model import Kind
from reconciler.plan import Reason
from reconciler.planner import plan_changes
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


FIELDS_SPEC = """\
name: demo
networks:
  lan: {ipam: {subnet: 172.29.7.0/24}}
containers:
  app:
    image: base:1
    expose: [80, "53/udp", "3000-3001"]
    cap_add: [NET_ADMIN, SYS_TIME]
    cap_drop: [NET_RAW]
    sysctls: {net.core.somaxconn: 1024, net.ipv4.tcp_syncookies: 0}
    extra_hosts: ["gw:10.0.0.1", "v6=::1"]
    dns: 9.9.9.9
    dns_search: [example.com]
    dns_opt: ["ndots:2"]
    shm_size: 64m
    ulimits: {nproc: 512, nofile: {soft: 1024, hard: 2048}}
    devices: ["/dev/null:/dev/nothing", {source: /dev/zero, permissions: r}]
    security_opt: [no-new-privileges]
    pid: host
    ipc: shareable
    logging: {driver: json-file, options: {max-size: 1m, max-file: 2}}
    platform: linux/amd64
    runtime: runc
    stdin_open: true
    tty: true
    read_only: true
    restart: on-failure:3
    healthcheck: {disable: true}
    container_name: fixed-app
    networks: {lan: {ipv4_address: 172.29.7.10}}
"""


def test_compose_fields_are_normalized_and_hashed(tmp_path: Path) -> None:
    state = desired(tmp_path, FIELDS_SPEC)
    [spec] = state.containers.values()
    assert spec.name == "fixed-app" and spec.key == "app" and spec.replica == 1
    assert spec.expose == ("3000/tcp", "3001/tcp", "53/udp", "80/tcp")
    assert spec.cap_add == ("NET_ADMIN", "SYS_TIME") and spec.cap_drop == ("NET_RAW",)
    assert spec.sysctls == (("net.core.somaxconn", "1024"), ("net.ipv4.tcp_syncookies", "0"))
    assert spec.extra_hosts == ("gw:10.0.0.1", "v6:::1")
    assert (spec.dns, spec.dns_search, spec.dns_opt) == (("9.9.9.9",), ("example.com",), ("ndots:2",))
    assert spec.shm_size == 64 * 1024**2
    assert spec.ulimits == (("nofile", 1024, 2048), ("nproc", 512, 512))
    assert spec.devices == ("/dev/null:/dev/nothing:rwm", "/dev/zero:/dev/zero:r")
    assert spec.security_opt == ("no-new-privileges",) and (spec.pid, spec.ipc) == ("host", "shareable")
    assert spec.log_driver == "json-file" and spec.log_options == (("max-file", "2"), ("max-size", "1m"))
    assert (spec.platform, spec.runtime) == ("linux/amd64", "runc")
    assert spec.stdin_open and spec.tty and spec.read_only and spec.restart == "on-failure:3"
    assert spec.healthcheck.test == ("NONE",) and spec.healthcheck.disabled
    assert spec.addresses == (("demo_lan", "172.29.7.10", ""),)
    # Every field is in the config hash: changing any one of them replaces the container.
    for old, new in [("cap_drop: [NET_RAW]", "cap_drop: [NET_RAW, MKNOD]"), ("dns: 9.9.9.9", "dns: 1.1.1.1"),
                     ("tty: true", "tty: false"), ("max-file: 2", "max-file: 3"), ("shm_size: 64m", "shm_size: 32m"),
                     ("ipv4_address: 172.29.7.10", "ipv4_address: 172.29.7.11"), ("pid: host", "pid: container:other"),
                     ("expose: [80, ", "expose: ["), ("read_only: true", "read_only: false")]:
        assert old in FIELDS_SPEC
        changed = desired(tmp_path, FIELDS_SPEC.replace(old, new)).containers["fixed-app"]
        assert changed.config_hash != spec.config_hash, old
    # Written in another order, or another form, it is the same config.
    same = FIELDS_SPEC.replace("cap_add: [NET_ADMIN, SYS_TIME]", "cap_add: [SYS_TIME, NET_ADMIN]").replace(
        "sysctls: {net.core.somaxconn: 1024, net.ipv4.tcp_syncookies: 0}",
        "sysctls: [net.ipv4.tcp_syncookies=0, net.core.somaxconn=1024]")
    assert desired(tmp_path, same).containers["fixed-app"].config_hash == spec.config_hash


def test_a_spec_without_the_new_fields_hashes_as_before(tmp_path: Path) -> None:
    """The new fields are left out of the hash at their defaults: no container is replaced for them."""
    from reconciler.hashing import config_hash

    spec = desired(tmp_path, "name: demo\ncontainers:\n  web: {image: 'base:1', network_mode: none}\n"
                   ).containers["demo-web-1"]
    before = {k: v for k, v in spec.config().items() if k in (
        "image", "image_build", "command", "entrypoint", "env", "ports", "networks", "mounts", "restart",
        "healthcheck", "labels", "user", "working_dir", "hostname", "stop_signal", "stop_grace_period", "init",
        "privileged", "network_mode", "memory", "nano_cpus", "configs", "secrets")}
    assert spec.config_hash == config_hash(before)


def test_profiles_leave_out_containers_unless_enabled(tmp_path: Path) -> None:
    text = ("name: demo\ncontainers:\n  web: {image: 'base:1'}\n"
            "  debug: {image: 'base:1', profiles: [tools, dev]}\n")
    assert set(desired(tmp_path, text).containers) == {"demo-web-1"}
    assert set(desired(tmp_path, text, profiles=["dev"]).containers) == {"demo-web-1", "demo-debug-1"}
    only_profiled = "name: demo\ncontainers:\n  debug: {image: 'base:1', profiles: [dev]}\n"
    assert desired(tmp_path, only_profiled, allow_empty=True).networks == {}  # nobody uses the default network


def test_a_null_network_or_volume_means_every_default(tmp_path: Path) -> None:
    state = desired(tmp_path, "name: demo\nnetworks:\n  back:\nvolumes:\n  db_data:\ncontainers:\n"
                              "  db: {image: 'base:1', networks: [back], volumes: ['db_data:/data']}\n")
    assert state.networks["back"].name == "demo_back" and state.networks["back"].driver == "bridge"
    assert state.volumes["db_data"].name == "demo_db_data" and state.volumes["db_data"].driver == "local"
    assert state.containers["demo-db-1"].mounts[0].source == "demo_db_data"
    # The same as an empty mapping, to the hash.
    empty = desired(tmp_path, "name: demo\nnetworks:\n  back: {}\nvolumes:\n  db_data: {}\ncontainers:\n"
                              "  db: {image: 'base:1', networks: [back], volumes: ['db_data:/data']}\n")
    assert empty.networks["back"].config_hash == state.networks["back"].config_hash
    assert empty.containers["demo-db-1"].config_hash == state.containers["demo-db-1"].config_hash


def test_an_anonymous_volume_is_a_volume_mount_without_a_source(tmp_path: Path) -> None:
    state = desired(tmp_path, "name: demo\ncontainers:\n  app:\n    image: base:1\n"
                              "    volumes: [/app/node_modules, {type: volume, target: /cache, read_only: true}]\n")
    mounts = state.containers["demo-app-1"].mounts
    assert [(m.type, m.source, m.target, m.read_only) for m in mounts] == [
        ("volume", "", "/app/node_modules", False), ("volume", "", "/cache", True)]
    assert state.volumes == {}


def test_a_short_syntax_bind_is_created_at_apply_and_that_is_not_in_the_hash(tmp_path: Path) -> None:
    short = desired(tmp_path, "name: demo\ncontainers:\n  a: {image: 'x:1', volumes: ['./data:/data']}\n")
    (tmp_path / "data").mkdir()
    long = desired(tmp_path, "name: demo\ncontainers:\n"
                             "  a: {image: 'x:1', volumes: [{type: bind, source: ./data, target: /data}]}\n")
    assert short.containers["demo-a-1"].mounts[0].create_host_path
    assert not long.containers["demo-a-1"].mounts[0].create_host_path
    assert short.containers["demo-a-1"].config_hash == long.containers["demo-a-1"].config_hash
