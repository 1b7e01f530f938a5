"""Address pools: the lowest free block, sized for a network's containers, never overlapping anything in use."""
from __future__ import annotations

import ipaddress

import pytest

from reconciler.addresses import (ADDRESS_POOLS_ENV, DEFAULT_ADDRESS_POOLS, AddressPool, PoolError, addresses_needed,
                                  allocate_subnet, block_prefix, parse_pool, parse_pools, pool_from_mapping,
                                  pools_from_env)
from reconciler.errors import PermanentError, SpecError


def pool(text: str = "172.16.0.0/16", size: int = 26) -> AddressPool:
    return AddressPool(ipaddress.IPv4Network(text), size)


def allocate(in_use=(), endpoints=0, pools=None) -> str:
    return str(allocate_subnet(pools or (pool(),), in_use, endpoints))


def test_an_empty_pool_gives_its_first_block():
    assert allocate() == "172.16.0.0/26"


@pytest.mark.parametrize("taken, expected", [
    (["172.16.0.0/26"], "172.16.0.64/26"),                        # the same block
    (["172.16.0.10/32"], "172.16.0.64/26"),                       # inside it
    (["172.16.0.60/30"], "172.16.0.64/26"),                       # its last addresses
    (["172.16.0.0/24"], "172.16.1.0/26"),                         # a bigger network around several blocks
    (["172.16.0.32/27", "172.16.0.64/27"], "172.16.0.128/26"),    # straddling two blocks
    (["172.15.255.0/24"], "172.16.0.0/26"),                       # just below the pool: no overlap
    (["172.16.0.64/26"], "172.16.0.0/26"),                        # a hole below a taken block is free
    (["172.0.0.0/8"], None),                                      # the whole pool and more
    (["0.0.0.0/1", "128.0.0.0/2"], None),                         # 172.16/16 lies in 128.0.0.0/2
    (["172.16.0.0/26", "172.16.0.0/26", "172.16.0.64/26"], "172.16.0.128/26"),  # listed twice
    (["172.16.0.128/26", "172.16.0.0/26", "172.16.0.64/26"], "172.16.0.192/26"),  # in any order
    (["fd00::/8", "::/0"], "172.16.0.0/26"),                      # IPv6 never blocks an IPv4 block
])
def test_a_block_never_overlaps_anything_in_use(taken, expected):
    if expected is None:
        with pytest.raises(PermanentError):
            allocate(taken)
    else:
        found = ipaddress.ip_network(allocate(taken))
        assert str(found) == expected
        assert not any(found.overlaps(ipaddress.ip_network(t)) for t in taken if ":" not in t)


def test_networks_given_as_objects_and_text_mix():
    assert allocate([ipaddress.IPv4Network("172.16.0.0/26"), "172.16.0.64/26"]) == "172.16.0.128/26"


def test_a_freed_block_is_the_lowest_free_one_again():
    taken = []
    for _ in range(5):
        taken.append(allocate(taken))
    assert taken[:3] == ["172.16.0.0/26", "172.16.0.64/26", "172.16.0.128/26"]
    taken.remove("172.16.0.64/26")  # its stack was removed
    assert allocate(taken) == "172.16.0.64/26"


def test_the_pool_gives_every_block_once_then_a_clear_error():
    small = (pool("172.16.0.0/24"),)
    taken: list[str] = []
    while len(taken) < 4:
        taken.append(allocate(taken, pools=small))
    assert taken == ["172.16.0.0/26", "172.16.0.64/26", "172.16.0.128/26", "172.16.0.192/26"]
    with pytest.raises(PermanentError) as caught:
        allocate_subnet(small, taken, 2, network="shop_default")
    text = str(caught.value)
    assert "network shop_default" in text and "172.16.0.0/24 in /26 blocks" in text
    assert "default_address_pools" in text and "--default-address-pool" in text and ADDRESS_POOLS_ENV in text


def test_the_next_pool_is_used_when_the_first_is_full():
    pools = (pool("172.16.0.0/26"), pool("172.30.200.0/24", 27))
    assert allocate(["172.16.0.0/26"], pools=pools) == "172.30.200.0/27"


@pytest.mark.parametrize("endpoints, prefix", [(0, 26), (1, 26), (29, 26), (30, 25), (61, 25), (62, 24), (200, 23)])
def test_a_network_that_needs_more_addresses_gets_a_bigger_block(endpoints, prefix):
    # (containers + network, gateway, broadcast) x 2 headroom
    assert addresses_needed(endpoints) == (endpoints + 3) * 2
    assert block_prefix(pool(), endpoints) == prefix
    found = allocate_subnet((pool(),), [], endpoints)
    assert found.prefixlen == prefix and found.num_addresses >= addresses_needed(endpoints)


def test_a_bigger_block_is_aligned_and_skips_small_ones_in_use():
    assert allocate(["172.16.0.0/26"], endpoints=40) == "172.16.0.128/25"


def test_a_pool_too_small_for_the_network_is_passed_over():
    pools = (pool("172.16.0.0/26"), pool("172.30.200.0/24", 27))
    assert block_prefix(pools[0], 100) is None
    assert allocate(endpoints=100, pools=pools) == "172.30.200.0/24"


def test_the_defaults_hold_a_thousand_networks_outside_the_engines_own_pools():
    blocks = sum(p.blocks for p in DEFAULT_ADDRESS_POOLS if p.size == 26)
    assert blocks >= 1024
    engine = [ipaddress.ip_network(f"172.{n}.0.0/16") for n in range(17, 32)] + [
        ipaddress.ip_network("192.168.0.0/16"), ipaddress.ip_network("10.0.0.0/8")]  # and Swarm's overlay pool
    for default in DEFAULT_ADDRESS_POOLS:
        assert default.base.is_private and not any(default.base.overlaps(e) for e in engine)


def test_a_thousand_networks_are_allocated_quickly_and_apart():
    taken: list[ipaddress.IPv4Network] = []
    for _ in range(1024):
        taken.append(allocate_subnet(DEFAULT_ADDRESS_POOLS, taken, 1))
    assert len(set(taken)) == 1024 and all(t.prefixlen == 26 for t in taken)
    with pytest.raises(PermanentError):
        allocate_subnet(DEFAULT_ADDRESS_POOLS, taken, 1)


@pytest.mark.parametrize("text, base, size", [
    ("base=10.10.0.0/16,size=24", "10.10.0.0/16", 24),     # docker's own flag
    ("size=24, base=10.10.0.0/16", "10.10.0.0/16", 24),
    ("172.80.0.0/16,size=26", "172.80.0.0/16", 26),       # the base unnamed
    ("172.80.0.0/16", "172.80.0.0/16", 26),               # the default size
    ("base=172.16.0.0/16,size=/27", "172.16.0.0/16", 27),
])
def test_a_pool_is_written_as_dockers_flag(text, base, size):
    assert parse_pool(text) == pool(base, size)


@pytest.mark.parametrize("text, field, words", [
    ("base=10.10.0.1/16,size=24", "base", "host bits"),
    ("base=10.10.0.0,size=24", "base", "CIDR"),
    ("base=fd00::/48,size=64", "base", "only IPv4"),
    ("base=10.10.0.0/16,size=12", "size", "from 16 to 30"),
    ("base=10.10.0.0/16,size=31", "size", "from 16 to 30"),
    ("base=10.10.0.0/16,size=big", "size", "prefix length"),
    ("size=24", "base", "names no base"),
    ("base=10.10.0.0/16,mask=24", "base", "expected base=CIDR"),
    ("base=10.0.0.0/16,base=10.1.0.0/16", "base", "twice"),
])
def test_a_pool_written_wrong_says_what_and_where(text, field, words):
    with pytest.raises(PoolError, match=words) as caught:
        parse_pool(text)
    assert caught.value.field == field


def test_the_environment_lists_pools_or_turns_them_off():
    assert pools_from_env({}) is None
    assert pools_from_env({ADDRESS_POOLS_ENV: "none"}) == () == pools_from_env({ADDRESS_POOLS_ENV: ""})
    assert pools_from_env({ADDRESS_POOLS_ENV: "base=172.30.0.0/16,size=24; 172.31.0.0/20"}) == (
        pool("172.30.0.0/16", 24), pool("172.31.0.0/20"))
    assert parse_pools("172.30.0.0/16;") == (pool("172.30.0.0/16"),)
    with pytest.raises(SpecError, match=f"{ADDRESS_POOLS_ENV}: .*not a network"):
        pools_from_env({ADDRESS_POOLS_ENV: "base=300.0.0.0/16"})


def test_a_daemon_yaml_entry_is_a_pool():
    assert pool_from_mapping({"base": "172.30.0.0/16", "size": 24}) == pool("172.30.0.0/16", 24)
    assert pool_from_mapping({"base": "172.30.0.0/16"}).size == 26
