"""Address pools and the one rule that picks a subnet from them, so that a host holds more than ~31 networks.

Why it exists: a bridge network created without a subnet takes a whole pool
from the engine's own ``default-address-pools`` (172.17-172.31/16, then
192.168.0.0/16 in /20s): about 31 networks, and the next stack stays down.
Raising them means editing /etc/docker/daemon.json and restarting the engine,
as root. Instead the docker plugin gives each such network a small block of
pools the reconciler is configured with (``DriverContext.address_pools``):
this module is the pure part of that, with no I/O. It parses pools as docker's
``--default-address-pool`` spells them, sizes a block for a network's
endpoints and picks the lowest block that overlaps nothing in use, so that a
block freed by a removed stack is simply the lowest free one again.

The defaults, ``172.16.0.0/16`` in /26 blocks (1,024 networks of up to 29
containers): the one /16 of RFC 1918's 172.16.0.0/12 that the engine's own
default pools leave out (they start at 172.17), so no network the engine
makes by itself ever competes with ours. 10.0.0.0/8 is where VPNs, cloud
VPCs, Kubernetes and Swarm's own overlay pool (10.0.0.0/8 in /24s) live;
192.168.0.0/16 is home LANs and the engine's last default pool;
100.64.0.0/10 is carrier NAT and Tailscale; anything else is someone's
public space. A host whose own routes use part of 172.16/16 is read when the
engine is local, and those blocks are skipped.

IPv4 only: an IPv6 network keeps what the engine allocates.
"""
from __future__ import annotations

import ipaddress
import os
from typing import Iterable, Mapping

from .errors import PermanentError, SpecError
from .values import value

__all__ = ["ADDRESS_POOLS_ENV", "AddressPool", "PoolError", "DEFAULT_ADDRESS_POOLS", "DEFAULT_BLOCK_SIZE", "addresses_needed",
           "allocate_subnet", "block_prefix", "parse_pool", "parse_pools", "pool_from_mapping", "pools_from_env",
           "pools_text"]

#: The environment variable read when neither a flag nor daemon.yaml names pools (same syntax, ``;``-separated).
ADDRESS_POOLS_ENV = "RECONCILER_DEFAULT_ADDRESS_POOLS"
#: The block size (prefix length) of a pool that gives none: 64 addresses, room for 29 containers with headroom.
DEFAULT_BLOCK_SIZE = 26
#: What ``off`` is spelled as on the command line and in the environment (``[]`` in daemon.yaml).
_OFF = ("none", "off")
#: The prefix lengths a block may have: a /31 or /32 has no room for a gateway and a container.
_SMALLEST_BLOCK = 30
_LARGEST_BLOCK = 8


class PoolError(ValueError):
    """A pool written wrong; ``field`` says which part (``base`` or ``size``), for a located message."""

    def __init__(self, message: str, field: str = "base") -> None:
        super().__init__(message)
        self.field = field


@value
class AddressPool:
    """A range to allocate network subnets from, in blocks of ``size``: the engine's ``default-address-pools`` entry."""

    #: The range, an IPv4 network (``172.16.0.0/16``).
    base: ipaddress.IPv4Network
    #: The prefix length of one block (26: 64 addresses); a network that needs more gets a bigger block.
    size: int = DEFAULT_BLOCK_SIZE

    def __post_init__(self) -> None:
        if not isinstance(self.base, ipaddress.IPv4Network):
            raise PoolError(f"an address pool's base is an IPv4 network, got {self.base!r}")
        if not self.base.prefixlen <= self.size <= _SMALLEST_BLOCK:
            raise PoolError(f"size {self.size} does not fit the pool {self.base}: give a prefix length from "
                            f"{self.base.prefixlen} to {_SMALLEST_BLOCK}", "size")

    def __str__(self) -> str:
        return f"base={self.base},size={self.size}"

    @property
    def blocks(self) -> int:
        """How many blocks of ``size`` the pool holds."""
        return 2 ** (self.size - self.base.prefixlen)


#: The pools used when none are configured (see the module's docstring for why these).
DEFAULT_ADDRESS_POOLS: tuple[AddressPool, ...] = (AddressPool(ipaddress.IPv4Network("172.16.0.0/16"), 26),)


def _base(text: str) -> ipaddress.IPv4Network:
    """A pool's base as written: an IPv4 network in CIDR notation, without host bits."""
    if "/" not in text:
        raise PoolError(f"a pool's base is a network in CIDR notation (such as 172.16.0.0/16), got {text!r}")
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise PoolError(f"{text!r} is not a network in CIDR notation: {exc}") from None
    if not isinstance(network, ipaddress.IPv4Network):
        raise PoolError(f"{text}: only IPv4 pools are allocated (an IPv6 network keeps the engine's allocation)")
    if network.prefixlen < _LARGEST_BLOCK:
        raise PoolError(f"{text}: a pool is at most a /{_LARGEST_BLOCK}")
    return network


def _size(text: object) -> int:
    try:
        return int(str(text).strip().lstrip("/"))
    except ValueError:
        raise PoolError(f"size is a prefix length such as 26, got {text!r}", "size") from None


def parse_pool(text: str) -> AddressPool:
    """One pool as docker's ``--default-address-pool`` writes it: ``base=172.16.0.0/16,size=26``.

    ``172.16.0.0/16,size=26`` (the base first, unnamed) and ``172.16.0.0/16`` (size 26) are
    accepted too. Raises ``PoolError`` saying what is wrong.
    """
    fields: dict[str, str] = {}
    for index, part in enumerate(p.strip() for p in text.split(",")):
        key, eq, val = part.partition("=")
        if not eq and index == 0:
            key, val = "base", part
        elif key.strip() not in ("base", "size"):
            raise PoolError(f"{part!r}: expected base=CIDR and size=N, as in base=172.16.0.0/16,size=26")
        if key.strip() in fields:
            raise PoolError(f"{key.strip()} is given twice in {text!r}")
        fields[key.strip()] = val.strip()
    if not fields.get("base"):
        raise PoolError(f"{text!r} names no base: expected base=CIDR,size=N, as in base=172.16.0.0/16,size=26")
    return AddressPool(_base(fields["base"]), _size(fields.get("size", DEFAULT_BLOCK_SIZE)))


def parse_pools(text: str) -> tuple[AddressPool, ...]:
    """``;``-separated pools (``RECONCILER_DEFAULT_ADDRESS_POOLS``); ``none`` (or nothing) turns allocation off."""
    if text.strip().lower() in ("", *_OFF):
        return ()
    return tuple(parse_pool(part) for part in text.split(";") if part.strip())


def pool_from_mapping(entry: Mapping[str, object]) -> AddressPool:
    """A daemon.yaml entry, ``{base: 172.16.0.0/16, size: 26}``; ``PoolError`` saying what is wrong."""
    return AddressPool(_base(str(entry.get("base", ""))), _size(entry.get("size", DEFAULT_BLOCK_SIZE)))


def pools_from_env(environ: Mapping[str, str] = os.environ) -> tuple[AddressPool, ...] | None:
    """The pools ``RECONCILER_DEFAULT_ADDRESS_POOLS`` names, () when it turns them off, None when it is unset."""
    text = environ.get(ADDRESS_POOLS_ENV)
    if text is None:
        return None
    try:
        return parse_pools(text)
    except ValueError as exc:
        raise SpecError(f"{ADDRESS_POOLS_ENV}: {exc}") from None


def pools_text(pools: Iterable[AddressPool]) -> str:
    """The pools as one line, for messages: ``172.16.0.0/16 in /26 blocks, ...``."""
    return ", ".join(f"{p.base} in /{p.size} blocks" for p in pools) or "none"


def addresses_needed(endpoints: int) -> int:
    """Addresses a network with ``endpoints`` containers needs: network, gateway and broadcast, all doubled.

    The headroom lets a replacement's new container join before the old one leaves, and a stack grow a little.
    """
    return (max(endpoints, 0) + 3) * 2


def block_prefix(pool: AddressPool, endpoints: int) -> int | None:
    """The prefix length of the block a network of ``endpoints`` gets from ``pool``: the pool's size, or a
    bigger block (a smaller prefix) when it needs more; None when not even the whole pool is enough."""
    needed = addresses_needed(endpoints)
    prefix = pool.size
    while 2 ** (32 - prefix) < needed:
        prefix -= 1
    return prefix if prefix >= pool.base.prefixlen else None


def allocate_subnet(pools: Iterable[AddressPool], in_use: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network | str],
                    endpoints: int = 0, *, network: str = "") -> ipaddress.IPv4Network:
    """The lowest block of the first pool that has one free: big enough for ``endpoints``, overlapping nothing
    in ``in_use`` (subnets or routes, as networks or text; IPv6 ones are ignored).

    Raises ``PermanentError`` naming the pools, and how to add one, when none is left (``network``: the
    network's name, for that message).
    """
    pools = tuple(pools)
    taken = sorted(_intervals(in_use))
    for pool in pools:
        prefix = block_prefix(pool, endpoints)
        if prefix is not None:
            found = _lowest_free(pool.base, prefix, taken)
            if found is not None:
                return found
    what = f"network {network}" if network else "a network"
    raise PermanentError(
        f"no free subnet for {what} ({endpoints} containers: {addresses_needed(endpoints)} addresses) in the "
        f"address pools {pools_text(pools)}: add a pool (default_address_pools in daemon.yaml, "
        f"--default-address-pool base=CIDR,size=N, or {ADDRESS_POOLS_ENV}), remove networks no longer used, "
        "or give the network an ipam.subnet of its own")


def _intervals(in_use: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network | str]) -> Iterable[tuple[int, int]]:
    """Each IPv4 subnet in use as (first, last) address numbers."""
    for item in in_use:
        net = item if not isinstance(item, str) else ipaddress.ip_network(item, strict=False)
        if isinstance(net, ipaddress.IPv4Network):
            yield int(net.network_address), int(net.broadcast_address)


def _lowest_free(base: ipaddress.IPv4Network, prefix: int, taken: list[tuple[int, int]]) -> ipaddress.IPv4Network | None:
    """The lowest block of ``/prefix`` inside ``base`` that meets no interval of ``taken`` (sorted by first)."""
    step = 2 ** (32 - prefix)
    start, end = int(base.network_address), int(base.broadcast_address)
    candidate = start
    for first, last in taken:
        if last < candidate:
            continue
        if first > candidate + step - 1:
            break  # sorted: this one and every later one start after the candidate block
        candidate = start + -(-(last + 1 - start) // step) * step  # the next block boundary after it
        if candidate > end:
            return None
    if candidate + step - 1 > end:
        return None
    return ipaddress.IPv4Network((candidate, prefix))
