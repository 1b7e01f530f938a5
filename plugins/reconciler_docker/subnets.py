"""What address space is taken, as the bridge driver sees it before it picks a network's subnet.

Why it exists apart from the driver: the engine's networks say which subnets
they hold (their IPAM config, in the one list call a create makes), and the
host's routing table says what else the machine reaches (a LAN, a VPN, another
engine's bridges). Both are read here, and one lock per engine keeps two passes
of one process from picking the same block; ``reconciler.sdk.allocate_subnet``
does the picking.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import struct
import threading
import time
from typing import Callable, Iterable, Mapping
from urllib.parse import urlsplit

from reconciler.sdk import allocate_subnet

__all__ = ["AddressBook", "engine_lock", "host_routes", "is_local_engine", "network_subnets", "parse_routes"]

ROUTES_FILE = "/proc/net/route"
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def engine_lock(engine: str) -> threading.Lock:
    """The lock held while a subnet for a network on ``engine`` (its ID, else its URL) is chosen and created."""
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(engine, threading.Lock())


class AddressBook:
    """The subnets in use on one engine as a long-lived process (the daemon) last read them, and the blocks its
    passes are creating networks in now.

    A cold start of a thousand stacks listed every network (a thousand, with their IPAM) before each create,
    one create at a time. The book lists them once per ``TTL`` (and again when the engine refuses a block:
    another process took it), and hands out blocks under its lock without a call; the creates run at once.
    Blocks another process frees are seen at the next read.
    """

    TTL = 30.0  # seconds a read of the engine's subnets is trusted

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: list = []
        self._read_at = float("-inf")
        self._reserved: set = set()

    def reserve(self, pools, endpoints: int, name: str, read: Callable[[], list]):
        """The lowest free block for network ``name``, held for it until ``settle``; ``read()``: what the
        engine (and the host) hold, called when the book's copy is older than ``TTL``."""
        with self._lock:
            if time.monotonic() - self._read_at > self.TTL:
                self._known, self._read_at = list(read()), time.monotonic()
            subnet = allocate_subnet(pools, [*self._known, *self._reserved], endpoints, network=name)
            self._reserved.add(subnet)
            return subnet

    def settle(self, subnet, *, made: bool = False, taken_elsewhere: bool = False) -> None:
        """The create in ``subnet`` ended: ``made`` (ours now), ``taken_elsewhere`` (the engine refused it: read
        the engine again before the next block), or neither (failed: free again)."""
        with self._lock:
            self._reserved.discard(subnet)
            if made or taken_elsewhere:
                self._known.append(subnet)
            if taken_elsewhere:
                self._read_at = float("-inf")


def network_subnets(networks: Iterable[Mapping]) -> list[str]:
    """Every subnet the engine's networks hold (``IPAM.Config[].Subnet`` of a network list), IPv6 ones too."""
    return [config["Subnet"] for net in networks for config in ((net.get("IPAM") or {}).get("Config") or [])
            if config.get("Subnet")]


def is_local_engine(engine_url: str | None, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the engine runs on this machine (a ``unix://`` socket, or tcp to a loopback address),
    so that this machine's routes are the engine's too."""
    url = engine_url or environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if "," in url:  # the managers of a swarm: whichever answers is another machine
        return False
    parts = urlsplit(url)
    if parts.scheme in ("unix", "npipe"):
        return True
    return parts.scheme in ("tcp", "http", "https") and (parts.hostname or "") in _LOCAL_HOSTS


def host_routes(path: str = ROUTES_FILE) -> list[ipaddress.IPv4Network]:
    """The IPv4 destinations this machine routes to, default routes left out ([] where there is no such file)."""
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            return parse_routes(file.read())
    except OSError:
        return []


def parse_routes(text: str) -> list[ipaddress.IPv4Network]:
    """The destinations of ``/proc/net/route`` (hex, in the host's byte order), without the default route."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            destination, mask = (socket.inet_ntoa(struct.pack("=I", int(f, 16))) for f in (fields[1], fields[7]))
            network = ipaddress.IPv4Network(f"{destination}/{mask}", strict=False)
        except (ValueError, struct.error):
            continue
        if network.prefixlen:  # 0.0.0.0/0 is where everything else goes, not a subnet in use
            found.append(network)
    return found
