"""Default networks that fit: forty Compose-style stacks on one engine, each default network a /26 of our pool.

The engine's own default pools hold about 31 bridge networks (fewer on a
machine whose other tests hold some). These tests give the reconciler a pool of
their own, 172.16.240.0/20 (64 blocks of /26), so that the blocks they expect
are theirs alone; every stack is named after the test's, so the fixture removes
its containers and networks.
"""
from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor

import pytest

from reconciler.addresses import AddressPool
from reconciler.reconcile import ApplyRequest, Reconciler
from reconciler.spec import load_desired

from .conftest import BASE_IMAGE

pytestmark = pytest.mark.engine

POOL = ipaddress.IPv4Network("172.16.240.0/20")
POOL_FLAG = f"base={POOL},size=26"
STACKS = 40


def _spec(stack, index: int):
    """A Compose-style stack: one container, no ``networks:``, so it joins ``<name>_default``."""
    folder = stack.dir / f"s{index:02d}"
    folder.mkdir(exist_ok=True)
    (folder / "stack.yaml").write_text(f"name: {stack.name}x{index:02d}\ncontainers:\n"
                                       f"  app: {{image: '{BASE_IMAGE}', command: [sleep, '3600']}}\n")
    return load_desired([folder / "stack.yaml"], environ={})


def _subnet(engine, name: str) -> ipaddress.IPv4Network:
    [net] = [n for n in engine.networks(names=[name]) if n["Name"] == name]
    [config] = net["IPAM"]["Config"]
    return ipaddress.ip_network(config["Subnet"])


def test_forty_default_networks_converge_in_small_blocks_and_a_freed_block_is_reused(stack, tmp_path):
    from reconciler.state import StateStore

    reconciler = Reconciler(address_pools=(AddressPool(POOL, 26),), state=StateStore.open(tmp_path / "state"))
    specs = [_spec(stack, i) for i in range(STACKS)]
    with ThreadPoolExecutor(4) as pool:  # passes creating at once, as the daemon's workers do
        reports = list(pool.map(reconciler.apply, specs))
    failed = {r.stack: [o.error for o in r.outcomes if o.error] for r in reports if not r.ok}
    assert not failed

    subnets = {d.stack: _subnet(stack.engine, f"{d.stack}_default") for d in specs}
    assert all(s.prefixlen == 26 and s.subnet_of(POOL) for s in subnets.values())
    ordered = sorted(subnets.values())
    assert all(not a.overlaps(b) for a, b in zip(ordered, ordered[1:]))
    others = [ipaddress.ip_network(c["Subnet"]) for n in stack.engine.networks() if n["Name"] not in
              {f"{d.stack}_default" for d in specs} for c in (n.get("IPAM") or {}).get("Config") or []
              if c.get("Subnet") and ":" not in c["Subnet"]]
    assert not [s for s in subnets.values() if any(s.overlaps(o) for o in others)]

    again = reconciler.apply(specs[7])  # converged: the subnet is not part of the network's config
    assert again.ok and again.stats.get("write", 0) == 0

    freed = ordered[0]  # passes ran side by side: whichever network came first holds the lowest block
    [owner] = [name for name, held in subnets.items() if held == freed]
    assert reconciler.destroy(owner).ok
    newcomer = _spec(stack, STACKS)
    assert reconciler.apply(newcomer).ok
    assert _subnet(stack.engine, f"{newcomer.stack}_default") == freed  # the lowest free block again


def test_an_engine_made_network_stays_converged_and_no_pools_is_the_engines_behaviour(stack):
    stack.write("""
        containers:
          app: {image: BASE, command: [sleep, '3600']}
    """)
    made = stack.apply("--default-address-pool", "none")
    if made.code and "non-overlapping" in made.out + made.err:  # the engine's pools are full on this machine
        pytest.skip("the engine's own address pools are exhausted here: that too is the engine's behaviour")
    assert made.code == 0, made.out + made.err
    engines = _subnet(stack.engine, f"{stack.name}_default")
    assert not engines.subnet_of(POOL)  # the engine chose it, from its own pools

    plan = stack.cli("plan", "--detailed-exitcode", "--default-address-pool", POOL_FLAG)
    assert plan.code == 0, plan.out + plan.err  # nothing to change: the subnet is no part of the config
    status = stack.cli("status", "--output", "json").json()
    [row] = [o for o in status["objects"] if o["name"] == f"{stack.name}_default"]
    assert row["details"] == {"subnet": str(engines)}
    assert stack.apply("--default-address-pool", POOL_FLAG).code == 0
    assert _subnet(stack.engine, f"{stack.name}_default") == engines


def test_the_cli_flag_takes_the_block_from_the_pool_it_names(stack):
    stack.write("""
        networks:
          fixed: {ipam: {subnet: 172.16.255.192/26}}
        containers:
          app: {image: BASE, command: [sleep, '3600']}
          pinned: {image: BASE, command: [sleep, '3600'], networks: [fixed]}
    """)
    result = stack.apply("--default-address-pool", "base=172.16.255.0/24,size=27")
    assert result.code == 0, result.out + result.err
    default = _subnet(stack.engine, f"{stack.name}_default")
    assert default.prefixlen == 27 and default.subnet_of(ipaddress.ip_network("172.16.255.0/24"))
    assert _subnet(stack.engine, f"{stack.name}_fixed") == ipaddress.ip_network("172.16.255.192/26")  # its own wins
