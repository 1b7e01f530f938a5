"""Bridge networks without a subnet get one from the address pools: the spec's count, the driver, the settings."""
from __future__ import annotations

import ipaddress
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import reconciler_docker.networks as networks
from reconciler.addresses import ADDRESS_POOLS_ENV, AddressPool
from reconciler.daemon.config import load_config
from reconciler.drivers import DriverContext
from reconciler.errors import PermanentError, SpecError
from reconciler.hashing import config_hash
from reconciler.labels import KIND, STACK
from reconciler.model import Kind, NetworkSpec
from reconciler.sdk.docker import use_client
from reconciler.spec import load_desired
from reconciler.testing import with_hash
from reconciler.testing.fakedocker import FakeDockerAPI
from reconciler_docker.networks import DockerNetworkDriver
from reconciler_docker.subnets import is_local_engine, network_subnets, parse_routes

POOL = AddressPool(ipaddress.IPv4Network("172.16.0.0/16"), 26)
LABELS = {STACK: "s", KIND: "network"}


@pytest.fixture(autouse=True)
def no_host_routes(monkeypatch):
    """The machine running the tests has routes of its own: each test says which it means."""
    monkeypatch.setattr(networks, "host_routes", lambda: [])
    monkeypatch.delenv("DOCKER_HOST", raising=False)


def driver(fake: FakeDockerAPI, **fields) -> DockerNetworkDriver:
    context = DriverContext(stack="s", **fields)
    use_client(context, fake, engine_id="E1")
    return DockerNetworkDriver(context)


def subnet(fake: FakeDockerAPI, name: str) -> str:
    return network_subnets(fake.networks(names=[name]))[0]


def test_a_bridge_network_without_a_subnet_gets_the_lowest_free_block_with_one_list_call():
    fake = FakeDockerAPI()
    fake.create_network("theirs", ipam={"Config": [{"Subnet": "172.16.0.0/26"}]})
    fake.calls.clear()
    driver(fake).create(with_hash(NetworkSpec(key="default", name="s_default")), LABELS)
    assert [call.verb for call in fake.calls] == ["networks", "create_network"]
    assert subnet(fake, "s_default") == "172.16.0.64/26"


def test_the_block_is_sized_for_the_containers_that_join():
    fake = FakeDockerAPI()
    driver(fake).create(with_hash(NetworkSpec(key="default", name="s_default", endpoints=40)), LABELS)
    assert subnet(fake, "s_default") == "172.16.0.0/25"


@pytest.mark.parametrize("spec", [
    NetworkSpec(key="a", name="s_a", subnet="172.16.0.0/26"),  # an explicit subnet always wins
    NetworkSpec(key="b", name="s_b", driver="overlay"),
    NetworkSpec(key="c", name="s_c", driver="macvlan"),
])
def test_other_networks_are_left_to_the_spec_or_the_engine(spec):
    fake = FakeDockerAPI()
    driver(fake).create(with_hash(spec), LABELS)
    assert [call.verb for call in fake.calls] == ["create_network"]
    assert network_subnets(fake.networks(names=[spec.name])) == ([spec.subnet] if spec.subnet else [])


def test_no_pools_leave_the_subnet_to_the_engine_and_configured_ones_are_used():
    fake = FakeDockerAPI()
    driver(fake, address_pools=()).create(with_hash(NetworkSpec(key="a", name="s_a")), LABELS)
    assert [call.verb for call in fake.calls] == ["create_network"] and not network_subnets(fake.networks())
    mine = AddressPool(ipaddress.IPv4Network("172.30.8.0/24"), 28)
    driver(fake, address_pools=(mine,)).create(with_hash(NetworkSpec(key="b", name="s_b")), LABELS)
    assert subnet(fake, "s_b") == "172.30.8.0/28"


def test_a_block_another_process_took_meanwhile_is_passed_for_the_next():
    fake = FakeDockerAPI()
    fake.fail("create_network", 403, "invalid pool request: Pool overlaps with other one on this address space",
              times=2)
    driver(fake).create(with_hash(NetworkSpec(key="a", name="s_a")), LABELS)
    assert [call.verb for call in fake.calls] == ["networks", "create_network", "create_network", "create_network"]
    assert subnet(fake, "s_a") == "172.16.0.128/26"


def test_an_engine_that_refuses_every_block_fails_the_change_in_the_end():
    fake = FakeDockerAPI()
    fake.fail("create_network", 403, "Pool overlaps with other one on this address space")
    with pytest.raises(PermanentError, match="refused 16 blocks"):
        driver(fake).create(with_hash(NetworkSpec(key="a", name="s_a")), LABELS)


def test_exhausted_pools_are_a_permanent_error_naming_them():
    fake = FakeDockerAPI()
    tiny = AddressPool(ipaddress.IPv4Network("172.30.8.0/26"), 26)
    fake.create_network("theirs", ipam={"Config": [{"Subnet": "172.30.8.0/24"}]})
    with pytest.raises(PermanentError, match="network s_a .* 172.30.8.0/26 in /26 blocks: add a pool"):
        driver(fake, address_pools=(tiny,)).create(with_hash(NetworkSpec(key="a", name="s_a")), LABELS)


def test_concurrent_creates_in_one_process_never_pick_the_same_block():
    fake = FakeDockerAPI()
    errors: list[BaseException] = []
    listed = fake.networks

    def slow_list(*args, **kwargs):  # every thread reads the list before any creates, unless the lock orders them
        found = listed(*args, **kwargs)
        time.sleep(0.02)
        return found

    fake.networks = slow_list

    def create(n: int) -> None:
        try:
            driver(fake).create(with_hash(NetworkSpec(key=f"n{n}", name=f"s_n{n}")), LABELS)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    subnets = network_subnets(fake.networks())
    assert len(set(subnets)) == 8 and fake.count("create_network") == 8  # none refused, none retried


def test_the_hosts_routes_are_avoided_when_the_engine_is_local(monkeypatch):
    monkeypatch.setattr(networks, "host_routes", lambda: [ipaddress.IPv4Network("172.16.0.0/25")])
    fake = FakeDockerAPI()
    driver(fake).create(with_hash(NetworkSpec(key="a", name="s_a")), LABELS)
    driver(fake, engine_url="tcp://far.example:2375").create(with_hash(NetworkSpec(key="b", name="s_b")), LABELS)
    assert subnet(fake, "s_a") == "172.16.0.128/26"
    assert subnet(fake, "s_b") == "172.16.0.0/26"  # another machine's routes are not this one's


def test_status_shows_the_subnet_the_engine_reports():
    fake = FakeDockerAPI()
    made = driver(fake)
    made.create(with_hash(NetworkSpec(key="a", name="s_a")), LABELS)
    [live] = made.observe("s", {})
    assert live.info == {"subnet": "172.16.0.0/26"}


@pytest.mark.parametrize("url, local", [
    (None, True), ("unix:///run/docker.sock", True), ("tcp://127.0.0.1:2375", True), ("tcp://localhost:2376", True),
    ("tcp://10.0.0.5:2375", False), ("ssh://me@host", False), ("unix:///a.sock,unix:///b.sock", False),
])
def test_which_engines_share_this_machines_routes(url, local):
    assert is_local_engine(url, environ={}) is local


def test_the_routing_table_is_read_without_its_default_route():
    def hexed(address: str) -> str:
        return "%08X" % struct.unpack("=I", socket.inet_aton(address))[0]

    rows = [("eth0", "0.0.0.0", "0.0.0.0"), ("eth0", "192.0.2.0", "255.255.255.0"),
            ("br-1", "172.16.4.0", "255.255.252.0")]
    text = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n" + "".join(
        f"{iface}\t{hexed(dest)}\t00000000\t0001\t0\t0\t0\t{hexed(mask)}\t0\t0\t0\n" for iface, dest, mask in rows)
    assert [str(n) for n in parse_routes(text + "garbage\n")] == ["192.0.2.0/24", "172.16.4.0/22"]


def test_the_spec_counts_each_networks_containers_outside_its_hash(tmp_path: Path):
    (tmp_path / "stack.yaml").write_text(
        "name: demo\nnetworks: {back: {}, quiet: {}}\ncontainers:\n  web: {image: 'base:1', replicas: 3}\n"
        "  db: {image: 'base:1', networks: [back, default]}\n  host: {image: 'base:1', network_mode: host}\n")
    state = load_desired([tmp_path / "stack.yaml"], environ={})
    default, back, quiet = (state.networks[k] for k in ("default", "back", "quiet"))
    assert (default.endpoints, back.endpoints, quiet.endpoints) == (4, 1, 0)
    for spec in (default, back, quiet):
        assert "endpoints" not in spec.config() and spec.config_hash == config_hash(spec.config())
    assert default.config_hash == quiet.config_hash  # the same config: how many join changes no hash
    assert default == NetworkSpec(**{**default.__dict__, "endpoints": 0})  # not what makes two specs differ


def test_daemon_yaml_takes_pools_and_says_where_one_is_wrong(tmp_path: Path):
    path = tmp_path / "daemon.yaml"
    path.write_text("sources: [{name: local, dir: .}]\ndefault_address_pools:\n  - {base: 172.30.0.0/16, size: 24}\n"
                    "  - {base: 172.31.0.0/20}\n")
    assert load_config(path).default_address_pools == (AddressPool(ipaddress.IPv4Network("172.30.0.0/16"), 24),
                                                       AddressPool(ipaddress.IPv4Network("172.31.0.0/20"), 26))
    path.write_text("sources: [{name: local, dir: .}]\ndefault_address_pools: []\n")
    assert load_config(path).default_address_pools == ()
    path.write_text("sources: [{name: local, dir: .}]\n")
    assert load_config(path).default_address_pools is None
    path.write_text("sources: [{name: local, dir: .}]\ndefault_address_pools:\n  - {base: 172.30.0.1/16}\n"
                    "  - {base: 172.30.0.0/16, size: 12}\n  - {base: nowhere}\n  - {size: 24}\n")
    with pytest.raises(SpecError) as caught:
        load_config(path)
    text = str(caught.value)
    assert f"{path}:5:" in text and "default_address_pools[2].base" in text  # the schema's pattern
    assert f"{path}:6:" in text and "base" in text  # required
    path.write_text("sources: [{name: local, dir: .}]\ndefault_address_pools:\n  - {base: 172.30.0.1/16}\n"
                    "  - {base: 172.30.0.0/16, size: 12}\n")
    with pytest.raises(SpecError) as caught:
        load_config(path)
    text = str(caught.value)
    assert f"{path}:3:" in text and "default_address_pools[0].base" in text and "host bits" in text
    assert f"{path}:4:" in text and "default_address_pools[1].size" in text and "from 16 to 30" in text


def test_the_cli_flag_and_the_environment_reach_the_drivers(monkeypatch):
    from reconciler.cli.local import reconciler_of
    from reconciler.cli.parser import build_parser

    def pools(argv: list[str]):
        args = build_parser(argv).parse_args(argv)
        return reconciler_of(args).drivers("s").get(Kind.NETWORK, "bridge").context.address_pools

    monkeypatch.delenv(ADDRESS_POOLS_ENV, raising=False)
    assert pools(["apply", "--default-address-pool", "base=172.30.0.0/16,size=24",
                  "--default-address-pool", "172.31.0.0/20"]) == (
        AddressPool(ipaddress.IPv4Network("172.30.0.0/16"), 24), AddressPool(ipaddress.IPv4Network("172.31.0.0/20")))
    assert pools(["plan", "--default-address-pool", "none"]) == ()
    assert pools(["watch"]) is None  # the defaults
    monkeypatch.setenv(ADDRESS_POOLS_ENV, "172.29.0.0/24,size=28")
    assert pools(["apply"]) == (AddressPool(ipaddress.IPv4Network("172.29.0.0/24"), 28),)
    assert pools(["apply", "--default-address-pool", "none"]) == ()  # the flag wins
    monkeypatch.setenv(ADDRESS_POOLS_ENV, "172.29.0.0")
    with pytest.raises(SpecError, match=ADDRESS_POOLS_ENV):
        pools(["apply"])


def test_a_flag_written_wrong_is_a_usage_error(capsys):
    from reconciler.cli.parser import build_parser

    with pytest.raises(SystemExit):
        build_parser(["apply"]).parse_args(["apply", "--default-address-pool", "base=10.0.0.0/16,size=8"])
    assert "--default-address-pool: size 8 does not fit the pool 10.0.0.0/16" in capsys.readouterr().err


def test_the_daemons_creates_share_one_read_of_the_engines_subnets_and_reread_after_a_refusal():
    fake = FakeDockerAPI()
    fake.create_network("theirs", ipam={"Config": [{"Subnet": "172.16.0.0/26"}]})
    fake.calls.clear()
    shared: dict = {}  # a daemon's engine_shared: the AddressBook lives there
    for name in ("s_a", "s_b", "s_c"):
        driver(fake, engine_shared=shared).create(with_hash(NetworkSpec(key="default", name=name)), LABELS)
    assert [call.verb for call in fake.calls] == ["networks"] + ["create_network"] * 3  # one read for three
    assert [subnet(fake, n) for n in ("s_a", "s_b", "s_c")] == ["172.16.0.64/26", "172.16.0.128/26",
                                                                 "172.16.0.192/26"]
    fake.create_network("later", ipam={"Config": [{"Subnet": "172.16.1.0/26"}]})  # another process
    fake.fail("create_network", 403, "Pool overlaps with other one on this address space", times=1)
    fake.calls.clear()
    driver(fake, engine_shared=shared).create(with_hash(NetworkSpec(key="default", name="s_d")), LABELS)
    assert [call.verb for call in fake.calls] == ["create_network", "networks", "create_network"]
    assert subnet(fake, "s_d") == "172.16.1.64/26"  # read again: past the block the other process holds


def test_the_daemons_concurrent_creates_never_pick_the_same_block():
    fake = FakeDockerAPI()
    shared: dict = {}
    names = [f"s_{n}" for n in range(24)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: driver(fake, engine_shared=shared).create(
            with_hash(NetworkSpec(key="default", name=name)), LABELS), names))
    reads = [c.verb for c in fake.calls].count("networks")
    assert len({subnet(fake, name) for name in names}) == 24 and reads == 1
