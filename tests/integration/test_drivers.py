"""The built-in network and storage drivers on the real engine: macvlan, ipvlan and hostdir.

The macvlan/ipvlan networks hang off a parent interface each test makes for
itself (a dummy, or a veth pair where the kernel has no dummy driver) and
removes afterwards; their addresses belong to that test network only and no
traffic leaves the machine.
"""
from __future__ import annotations

import ipaddress
import os
import shutil
import stat
import subprocess
import uuid

import pytest

from reconciler.drivers import DriverContext
from reconciler.labels import DRIVER
from reconciler_docker.hostdir import HostDirDriver
from reconciler_docker.volumes import DockerVolumeDriver

from ..waiting import seconds_until

pytestmark = pytest.mark.engine


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "link", *args], capture_output=True, text=True)


@pytest.fixture
def parent_link():
    """A fresh, isolated interface to be a macvlan/ipvlan parent: a dummy, else one end of a veth pair."""
    name = f"rtp{uuid.uuid4().hex[:8]}"  # 11 characters: interface names are at most 15
    made = _ip("add", name, "type", "dummy")
    if made.returncode != 0:
        made = _ip("add", name, "type", "veth", "peer", "name", name + "b")
    if made.returncode != 0:
        pytest.skip(f"cannot create a parent interface (dummy or veth): {made.stderr.strip()}")
    try:
        _ip("set", name, "up")
        yield name
    finally:
        _ip("del", name)  # removes a veth peer too


def _require_kernel_support(parent: str, kind: str, *mode: str) -> None:
    probe = f"rtq{uuid.uuid4().hex[:8]}"
    made = _ip("add", probe, "link", parent, "type", kind, *mode)
    if made.returncode != 0:
        pytest.skip(f"this kernel cannot create {kind} interfaces: {made.stderr.strip()}")
    _ip("del", probe)


NETWORK_SPEC = """
name: STACK
networks:
  lan:
    driver: DRIVER
    options: {parent: PARENT, EXTRA}
    ipam: {subnet: SUBNET, gateway: GATEWAY}
containers:
  app:
    image: BASE
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
    networks: [lan]
"""


def _network_case(stack, parent: str, driver: str, subnet: str, extra: dict[str, str]) -> None:
    gateway = str(next(ipaddress.ip_network(subnet).hosts()))
    options = ", ".join(f"{k}: {v}" for k, v in extra.items())
    stack.write(NETWORK_SPEC.replace("DRIVER", driver).replace("PARENT", parent).replace("SUBNET", subnet)
                .replace("GATEWAY", gateway).replace(", EXTRA", f", {options}" if options else ""))
    result = stack.apply()
    assert result.code == 0, result.out + result.err

    network = stack.engine.inspect_network(f"{stack.name}_lan")
    assert network["Driver"] == driver
    assert network["Options"] == {"parent": parent, **extra}
    assert network["IPAM"]["Config"][0]["Subnet"] == subnet
    assert network["IPAM"]["Config"][0]["Gateway"] == gateway

    container = stack.engine.inspect_container(f"{stack.name}-app-1")
    assert container["State"]["Running"]
    address = container["NetworkSettings"]["Networks"][f"{stack.name}_lan"]["IPAddress"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)

    noop = stack.apply("--output", "json")
    assert noop.code == 0, noop.out + noop.err
    assert noop.json()["changes"] == [] and noop.json()["engine_calls"].get("write", 0) == 0

    # The network goes before its parent interface does (the parent fixture ends after this test).
    assert stack.cli("destroy").code == 0
    assert stack.networks() == set()


def test_macvlan_network_on_a_parent_interface(parent_link, stack):
    _require_kernel_support(parent_link, "macvlan", "mode", "bridge")
    _network_case(stack, parent_link, "macvlan", "10.231.5.0/24", {})


def test_ipvlan_l2_network_on_a_parent_interface(parent_link, stack):
    _require_kernel_support(parent_link, "ipvlan", "mode", "l2")
    _network_case(stack, parent_link, "ipvlan", "10.231.6.0/24", {"ipvlan_mode": "l2"})


HOSTDIR_SPEC = """
name: STACK
volumes:
  data:
    driver: hostdir
    options: {path: PATH, owner: "1234:1234", mode: "0750"}
  cache:
    options: {type: tmpfs, device: tmpfs, o: size=8m}
containers:
  app:
    image: BASE
    command: ["sh", "-c", "echo hi > /data/f && exec sleep 3600"]
    init: true
    stop_grace_period: 1s
    volumes: ["data:/data", "cache:/cache"]
"""


def _wait_for(path, timeout: float = 10.0) -> None:
    seconds_until(path.exists, timeout, step=0.1)


def test_hostdir_volume_lives_until_pruned(stack, tmp_path):
    directory = tmp_path / "srv" / "app" / "data"
    stack.write(HOSTDIR_SPEC.replace("PATH", str(directory)))
    result = stack.apply()
    assert result.code == 0, result.out + result.err

    info = directory.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (1234, 1234, 0o750)
    _wait_for(directory / "f")
    assert (directory / "f").read_text() == "hi\n"
    volume = stack.engine.inspect_volume(f"{stack.name}_data")
    assert volume["Driver"] == "local" and volume["Options"]["device"] == str(directory)
    assert volume["Labels"][DRIVER] == "hostdir"

    noop = stack.apply("--output", "json")
    assert noop.json()["changes"] == [] and noop.json()["engine_calls"].get("write", 0) == 0

    assert stack.cli("destroy").code == 0
    assert stack.containers() == {} and f"{stack.name}_data" in stack.volumes()
    assert (directory / "f").read_text() == "hi\n"

    result = stack.cli("destroy", "--prune-volumes")
    assert result.code == 0, result.out + result.err
    assert stack.volumes() == set()
    assert not directory.exists() and directory.parent.exists()


def test_local_and_hostdir_drivers_each_report_only_their_own_volumes(stack, tmp_path):
    stack.write(HOSTDIR_SPEC.replace("PATH", str(tmp_path / "data")))
    assert stack.apply().code == 0
    seen = {}
    for driver_class in (DockerVolumeDriver, HostDirDriver):
        context = DriverContext(stack=stack.name)
        names = {live.name for live in driver_class(context).observe(stack.name, {})}
        seen[driver_class.__name__] = (names, context.stats["read"])
    # One list call each, after the client's version negotiation.
    assert seen["DockerVolumeDriver"] == ({f"{stack.name}_cache"}, 2)
    assert seen["HostDirDriver"] == ({f"{stack.name}_data"}, 2)


def test_hostdir_remade_when_its_directory_is_removed_by_hand(stack, tmp_path):
    directory = tmp_path / "data"
    stack.write(HOSTDIR_SPEC.replace("PATH", str(directory)))
    assert stack.apply().code == 0
    assert stack.cli("destroy").code == 0
    shutil.rmtree(directory)
    plan = stack.cli("plan").out
    assert f"+ volume {stack.name}_data" in plan and f"{stack.name}_cache" not in plan
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    assert stat.S_IMODE(directory.stat().st_mode) == 0o750
    _wait_for(directory / "f")
    assert (directory / "f").read_text() == "hi\n"


@pytest.mark.parametrize("options, message", [
    ('{path: relative/dir}', "must be absolute"),
    ('{path: /srv/x, mode: "0999"}', "octal digits"),
    ('{path: /srv/x, owner: "no-such-user-rtest"}', "no user named"),
])
def test_bad_hostdir_options_are_refused_before_any_write(stack, options, message):
    stack.write(f"""
        name: STACK
        volumes:
          data: {{driver: hostdir, options: {options}}}
        containers:
          web:
            image: BASE
            command: ["sleep", "3600"]
            init: true
    """)
    result = stack.apply()
    assert result.code == 1
    assert "invalid driver options, nothing was changed" in result.err
    assert "volumes.data.options: " in result.err and message in result.err
    assert stack.volumes() == set() and not os.path.exists("/srv/x")
    assert stack.containers() == {}
