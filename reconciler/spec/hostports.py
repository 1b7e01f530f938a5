"""Host ports a stack publishes twice: found at validate, not when the second container fails to start.

The engine gives a host address and port (per protocol) to one container at a
time; two containers of one stack asking for the same one pass ``plan`` and
then fail at apply, one of them half-made. A port without a host port (the
engine picks a free one) never clashes, nor do two distinct host addresses;
an empty host address (every address) or ``0.0.0.0``/``::`` (every address of
the family) clashes with any address it covers.
"""
from __future__ import annotations

import ipaddress
from typing import Iterable

from ..model import Port

__all__ = ["HostPorts", "shown"]


def shown(port: Port) -> str:
    """``127.0.0.1:8080/tcp``, ``8080/udp``: the host side of a published port, as a message names it."""
    return f"{port.host_ip + ':' if port.host_ip else ''}{port.published}/{port.protocol}"


def _family(host_ip: str) -> int | None:
    try:
        return ipaddress.ip_address(host_ip.strip("[]")).version
    except ValueError:
        return None


def _overlap(a: str, b: str) -> bool:
    """Whether two host addresses of one port and protocol cannot both be bound."""
    if a == b or not a or not b:
        return True
    for wildcard, other in ((a, b), (b, a)):
        if wildcard in ("0.0.0.0", "::") and _family(other) == _family(wildcard):
            return True
    return False


class HostPorts:
    """The host ports claimed so far, and by whom (a path in the spec, as messages name it)."""

    def __init__(self) -> None:
        self._claims: list[tuple[Port, str]] = []

    def claim(self, owner: str, ports: Iterable[Port]) -> list[str]:
        """Record ``owner``'s published ports; for each one another owner holds, the message saying so."""
        clashes, mine = [], []
        for port in ports:
            if port.published is None:
                continue
            holder = next((who for held, who in self._claims if who != owner and held.published == port.published
                           and held.protocol == port.protocol and _overlap(held.host_ip, port.host_ip)), None)
            if holder is not None:
                clashes.append(f"host port {shown(port)} is already published by {holder}: "
                               "one host port serves one container (change one, or leave the host port out)")
            mine.append((port, owner))
        self._claims += mine
        return clashes
