"""A network's addresses, checked as the engine will read them, so that a typo fails at validate, not at apply.

The schema can only say that ``ipam.subnet`` is a string; ``ipaddress`` says
whether it is a subnet, and whether the gateway and the range lie inside it
(the engine refuses a gateway or a range without a subnet).
"""
from __future__ import annotations

import ipaddress

from .locations import format_path

__all__ = ["ipam_findings"]


def ipam_findings(base: tuple, ipam: dict) -> list[tuple[tuple, str]]:
    """A network's addresses as the engine needs them: a subnet in CIDR notation, a gateway and an ip_range
    inside it (neither without it)."""
    out: list[tuple[tuple, str]] = []
    subnet = _parsed(out, base, ipam, "subnet", "a subnet in CIDR notation, such as 172.30.0.0/24 or fd00:30::/64")
    gateway = _parsed(out, base, ipam, "gateway", "an IP address, such as 172.30.0.1")
    ip_range = _parsed(out, base, ipam, "ip_range", "a range in CIDR notation, such as 172.30.0.128/25")
    for field, value in (("gateway", gateway), ("ip_range", ip_range)):
        if value is None:  # absent, or already reported as unreadable
            continue
        if "subnet" not in ipam:
            out.append(((*base, field), f"{field} needs a subnet: set {format_path(base)}.subnet too"))
        elif subnet is not None and not _within(value, subnet):
            out.append(((*base, field), f"{field} {value} is not inside the subnet {subnet}"))
    return out


def _parsed(out: list[tuple[tuple, str]], base: tuple, ipam: dict, field: str, expected: str):
    """``ipam[field]`` as an address (gateway) or a network, or None (a finding joins ``out`` if it is not one)."""
    text = ipam.get(field)
    if text is None:
        return None
    try:
        if field == "gateway":
            return ipaddress.ip_address(text)
        if "/" not in text:
            raise ValueError(text)
        return ipaddress.ip_network(text, strict=False)  # host bits set are the engine's to accept, as it does
    except ValueError:
        out.append(((*base, field), f"expected {expected}, got {text!r}"))
        return None


def _within(value, subnet) -> bool:
    """Whether an address or a network lies inside ``subnet`` (never when their IP versions differ)."""
    if value.version != subnet.version:
        return False
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return value in subnet
    return value.subnet_of(subnet)
