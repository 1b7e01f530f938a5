"""What an image weighs and what it shares: the ``layers`` of a detailed status row. Pure.

Registry drivers report each image's layers (``RegistryDriver.layers``);
images built from the same base share those layers on disk, so their sizes
do not add up. Each image's row says its total size and how many of its bytes
it shares with the stack's other images (layers with the same id). Asked only
by a detailed status: a plain apply never reads an image's history.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from .model import DesiredState, Kind, LiveState

if TYPE_CHECKING:
    from .drivers import Drivers

__all__ = ["image_layers", "layer_lines", "layer_views"]


def image_layers(drivers: Drivers, desired: DesiredState, live: LiveState) -> dict[str, dict | None]:
    """Each present wanted image's ``layer_views`` entry, asking its registry driver (``RegistryDriver.layers``)."""
    return layer_views({ref: drivers.get(Kind.IMAGE, spec.driver).layers(ref)
                        for ref, spec in desired.of(Kind.IMAGE).items() if ref in live.images})


def layer_views(layers: Mapping[str, list[dict] | None]) -> dict[str, dict | None]:
    """Pure: per image reference: ``{"size", "shared_bytes", "items"}``, or None where the driver could not tell."""
    owners: dict[str, set[str]] = {}
    for ref, items in layers.items():
        for item in items or ():
            owners.setdefault(item["id"], set()).add(ref)
    out: dict[str, dict | None] = {}
    for ref, items in layers.items():
        if items is None:
            out[ref] = None
            continue
        out[ref] = {
            "size": sum(int(i["size"]) for i in items),
            "shared_bytes": sum(int(i["size"]) for i in items if owners[i["id"]] - {ref}),
            "items": [dict(i) for i in items],
        }
    return out


def layer_lines(view: Mapping) -> list[str]:
    """``status --detailed``'s lines under an image: its size and shared bytes, then one line per layer."""
    lines = [f"layers: {_size(view['size'])}, {_size(view['shared_bytes'])} shared with the stack's other images"]
    for item in view["items"]:
        cache = {True: "cached", False: "built", None: ""}[item.get("reused")]
        lines.append(f"  {item['id']:<12}  {_size(item['size']):>9}  {cache:<6}  {item['created_by'] or '-'}")
    return lines


def _size(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size} B"
