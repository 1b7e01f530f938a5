"""A git source's ``previews:`` in the daemon's configuration: checked beyond its schema, and read as rules."""
from __future__ import annotations

import re

from ..model import PreviewRules
from ..spec.locations import nearest_mark, problem_at
from ..spec.units import parse_bytes

__all__ = ["preview_problems", "preview_rules"]


def preview_problems(data: dict, marks: dict) -> list:
    """``previews:`` is for git sources, and its ``port_range`` is a range of ports, first to last."""
    problems = []
    for index, entry in enumerate(data["sources"]):
        previews = entry.get("previews")
        if previews is None:
            continue
        if "git" not in entry:
            where = ("sources", index, "previews")
            problems.append(problem_at(nearest_mark(marks, where), where, "a directory source has no branches: previews: "
                                                                   "is for git sources only"))
        first, _, last = previews.get("port_range", "30000-32767").partition("-")
        if not 1 <= int(first) <= int(last) <= 65535:
            where = ("sources", index, "previews", "port_range")
            problems.append(problem_at(nearest_mark(marks, where), where, f"{first}-{last} is not a range of ports: "
                                                                   "FIRST-LAST, 1 <= FIRST <= LAST <= 65535"))
    return problems


def preview_rules(data: dict | None) -> PreviewRules | None:
    """A source's ``previews:`` block, its defaults where a key is left out; None without one."""
    if data is None:
        return None
    branches = data["branches"]
    limits = data.get("limits") or {}
    first, _, last = data.get("port_range", "30000-32767").partition("-")
    ttl = data.get("ttl")
    return PreviewRules(branches=(branches,) if isinstance(branches, str) else tuple(branches),
                        ttl=_seconds(ttl) if ttl is not None else None, max=int(data.get("max", PreviewRules.max)),
                        ports=data.get("ports", PreviewRules.ports), port_range=(int(first), int(last)),
                        memory=parse_bytes(limits["memory"]) if "memory" in limits else None,
                        nano_cpus=int(limits["cpus"] * 1e9) if "cpus" in limits else None, host=data.get("host"))


def _seconds(value: float | str) -> float:
    """A duration as the schema allows it (seconds, or ``72h``, ``7d``, ``1h30m``) in seconds."""
    if not isinstance(value, str):
        return float(value)
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return sum(float(number) * units[unit] for number, unit in re.findall(r"([0-9.]+)([dhms])", value))
