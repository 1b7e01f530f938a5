"""A release's data in the spec: a container's ``update.snapshot``/``restore`` and a volume's ``snapshots:``.

The JSON Schema says the shapes; this module says what only the whole stack
can tell, at the line of the entry at fault: that each key under
``update.snapshot`` is a volume of the stack, made by it (not external),
mounted by that container, kept by a storage driver that takes snapshots
(``DriverRegistry.takes_snapshots``, as ``Reconciler.driver_catalog`` reports
it), and that the container runs one replica (replicas share the volume: one
of them cannot roll back the data of the others). It also reads a volume's
retention into ``model.SnapshotRetention``. See docs/releases.md.
"""
from __future__ import annotations

import re
from typing import Any, Collection, Mapping

from ..defaults import driver_for
from ..model import SnapshotRetention
from . import units

__all__ = ["retention", "snapshot_findings"]

_Finding = tuple[tuple, str]  # (path, message)
_AGE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_AGE_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def snapshot_findings(data: dict, failed: set[tuple],
                      drivers: Mapping[str, Collection[str]] | None = None) -> list[_Finding]:
    """Every ``update.snapshot`` entry the stack cannot honour, at its path.

    ``drivers``: a driver catalog (``Reconciler.driver_catalog``); a volume
    driver counts as taking snapshots when its facts say ``takes_snapshots``.
    None, or a plain list of names, leaves that check out (nothing known).
    """
    containers = data.get("containers")
    volumes = data.get("volumes") if isinstance(data.get("volumes"), dict) else {}
    out: list[_Finding] = []
    for key, container in (containers.items() if isinstance(containers, dict) else ()):
        update = container.get("update") if isinstance(container, dict) else None
        base = ("containers", key, "update", "snapshot")
        if not isinstance(update, dict) or not update.get("snapshot") or _failed(failed, base):
            continue
        replicas = container.get("replicas", 1)
        if isinstance(replicas, int) and replicas > 1:
            out.append((base, f"snapshot needs one replica, and {key} has {replicas}: replicas share the volume, "
                              "so one of them cannot take its data back"))
            continue
        mounted = _mounted(container.get("volumes"))
        for index, name in enumerate(update["snapshot"]):
            message = _refusal(name, volumes, mounted, key, drivers)
            if message:
                out.append(((*base, index), message))
    return out


def _refusal(name: str, volumes: Mapping[str, Any], mounted: set[str], container: str,
             drivers: Mapping[str, Collection[str]] | None) -> str:
    """Why the volume key ``name`` cannot be snapshotted for ``container`` ("" when it can)."""
    if name not in volumes:
        return (f"{name!r} is not a volume of this stack (volumes: {', '.join(sorted(volumes)) or 'none'})")
    entry = volumes[name] if isinstance(volumes[name], dict) else {}
    if entry.get("external"):
        return f"volume {name!r} is external: the stack does not own its data, so it does not snapshot it"
    if name not in mounted:
        return f"{container} does not mount volume {name!r}: only what it writes is snapshotted for it"
    driver = driver_for("volumes", entry)
    known = (drivers or {}).get("volumes")
    if isinstance(known, Mapping) and driver in known and isinstance(known[driver], Mapping) \
            and not known[driver].get("takes_snapshots"):
        return f"volume {name!r}: its storage driver {driver!r} takes no snapshots"
    return ""


def _mounted(mounts: Any) -> set[str]:
    """The volume keys a container's ``volumes:`` mount (named volumes only)."""
    found = set()
    for mount in mounts if isinstance(mounts, list) else ():
        try:
            spec = units.parse_volume_string(mount) if isinstance(mount, str) else mount
        except ValueError:
            continue
        if isinstance(spec, dict) and spec.get("type", "volume") == "volume" and spec.get("source"):
            found.add(str(spec["source"]))
    return found


def _failed(failed: set[tuple], prefix: tuple) -> bool:
    return any(p[: len(prefix)] == prefix or prefix[: len(p)] == p for p in failed)


def retention(value: Mapping[str, Any] | None) -> SnapshotRetention | None:
    """A volume's ``snapshots:`` (validated), as the model keeps it; None when the spec says nothing."""
    if value is None:
        return None
    default = SnapshotRetention()
    age = value.get("max_age")
    return SnapshotRetention(keep=int(value.get("keep", default.keep)),
                             max_age=None if age is None else age_seconds(age))


def age_seconds(value: Any) -> float:
    """``"30d"``, ``"12h"``, ``"1h30m"`` or a number of seconds, in seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    parts = _AGE.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid age {value!r} (expected e.g. 12h, 30d)")
    return sum(float(n) * _AGE_SECONDS[u] for n, u in parts)
