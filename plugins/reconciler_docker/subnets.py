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
from typing import Iterable, Mapping
from urllib.parse import urlsplit

__all__ = ["engine_lock", "host_routes", "is_local_engine", "network_subnets", "parse_routes"]

ROUTES_FILE = "/proc/net/route"
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def engine_lock(engine: str) -> threading.Lock:
    """The lock held while a subnet for a network on ``engine`` (its ID, else its URL) is chosen and created."""
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(engine, threading.Lock())


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
