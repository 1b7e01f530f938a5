"""Parsing of the small value languages in a spec: durations, byte sizes, ports, mounts.

The schema has already checked the shapes; these functions turn the accepted
text into numbers and records, raising ``ValueError`` with a message fit for a
user if a value still makes no sense (an out-of-range port, say).
"""
from __future__ import annotations

import re
from typing import Any

from ..model import Port

__all__ = ["parse_bytes", "parse_duration_ns", "parse_port", "parse_volume_string"]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_NS = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_BYTES = re.compile(r"^(\d+(?:\.\d+)?)([bkmg]?)$", re.IGNORECASE)
_BYTE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_duration_ns(value: Any) -> int:
    """``"1m30s"``, ``"500ms"`` or a number of seconds, as nanoseconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value * 10**9)
    text = str(value).strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration {value!r} (expected e.g. 10s, 1m30s, 500ms)")
    return int(sum(float(n) * _UNIT_NS[u] for n, u in parts))


def parse_bytes(value: Any) -> int:
    """``"128m"``, ``"1g"`` or a plain number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _BYTES.match(str(value).strip())
    if not match:
        raise ValueError(f"invalid size {value!r} (expected e.g. 512k, 128m, 1g)")
    return int(float(match.group(1)) * _BYTE_UNITS[match.group(2).lower()])


def _port_number(text: str) -> int:
    number = int(text)
    if not 0 < number < 65536:
        raise ValueError(f"port {number} out of range 1-65535")
    return number


def parse_port(value: Any) -> list[Port]:
    """A port string (``"127.0.0.1:8080:80/udp"``) or object as one or more ``Port``s."""
    if isinstance(value, dict):
        published = value.get("published")
        return [
            Port(
                target=_port_number(str(value["target"])),
                published=_port_number(str(published)) if published is not None else None,
                protocol=value.get("protocol", "tcp"),
                host_ip=value.get("host_ip", ""),
            )
        ]
    text = str(value)
    text, _, protocol = text.partition("/")
    pieces = text.rsplit(":", 2)
    host_ip = pieces[0] if len(pieces) == 3 else ""
    published = pieces[-2] if len(pieces) >= 2 else None
    targets = _expand_range(pieces[-1])
    publisheds = _expand_range(published) if published else [None] * len(targets)
    if len(publisheds) != len(targets):
        raise ValueError(f"port ranges {value!r} differ in length")
    return [
        Port(target=t, published=p, protocol=protocol or "tcp", host_ip=host_ip)
        for t, p in zip(targets, publisheds)
    ]


def _expand_range(text: str) -> list[int]:
    start, _, end = text.partition("-")
    first = _port_number(start)
    last = _port_number(end) if end else first
    if last < first:
        raise ValueError(f"port range {text!r} is reversed")
    return list(range(first, last + 1))


def parse_volume_string(value: str) -> dict[str, Any]:
    """``"src:dst[:ro|rw]"`` or ``"dst"`` as the object form of a mount."""
    pieces = value.split(":")
    mode = ""
    if len(pieces) == 3 or (len(pieces) == 2 and pieces[1] in ("ro", "rw")):
        mode = pieces.pop()
    if len(pieces) == 1:
        return {"type": "volume", "target": pieces[0], "read_only": mode == "ro"}
    source, target = pieces
    kind = "bind" if source.startswith((".", "/", "~")) else "volume"
    return {"type": kind, "source": source, "target": target, "read_only": mode == "ro"}
