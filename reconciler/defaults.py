"""The default of every driver choice a spec may leave out, in one table.

The model, the spec's builder, the semantic checks and the planner all read
this table, so "which driver handles an entry without ``driver:``" has one
answer. Driver names appear nowhere else in the core: the drivers themselves
come from plugins (the built-in ones from ``reconciler_docker``).
"""
from __future__ import annotations

from typing import Any, Mapping

__all__ = ["ARCHIVE_DRIVER", "DEFAULT_DRIVERS", "DEFAULT_NETWORK_KEY", "driver_for"]

#: Spec section → the driver an entry gets when it names none. ``containers``
#: is the runtime driver, chosen per stack with the top-level ``runtime:``.
DEFAULT_DRIVERS: Mapping[str, str] = {
    "images": "docker",
    "networks": "bridge",
    "volumes": "local",
    "containers": "docker",
}
#: Images loaded from a ``docker save`` archive (``archive:``) default to this registry driver.
ARCHIVE_DRIVER = "archive"
#: The network key every stack has without defining it (Compose's project default
#: network): containers without ``networks:`` or ``network_mode`` join it, and a
#: ``networks.default`` entry in the spec configures it. Named ``<stack>_default``.
DEFAULT_NETWORK_KEY = "default"


def driver_for(section: str, entry: Mapping[str, Any] | None) -> str:
    """The driver that handles one entry of ``section`` (``runtime:`` for containers is read by the caller)."""
    entry = entry or {}
    if entry.get("driver"):
        return str(entry["driver"])
    if section == "images" and entry.get("archive"):
        return ARCHIVE_DRIVER
    return DEFAULT_DRIVERS[section]
