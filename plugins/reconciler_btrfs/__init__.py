"""The ``btrfs`` storage driver: volumes as btrfs subvolumes, with instant copy-on-write snapshots.

A spec asks for one with ``volumes: {db: {driver: btrfs, options: {root: /srv/pool}}}``
(``root``: a directory on a mounted btrfs; default ``$RECONCILER_BTRFS_ROOT``).
Declared in the ``reconciler`` entry-point group by this distribution's
pyproject.toml, like the other built-in plugins. It wraps the ``local``
storage driver, found by name through the registry, and runs btrfs-progs on
the reconciler's host, so the engine must be local. Loading it imports
neither the Docker SDK nor the driver: ``validate`` stays cheap. See
docs/drivers.md, "The btrfs driver".
"""
from __future__ import annotations

import os

from reconciler.sdk import Kind, hookimpl

from .layout import NAME, ROOT_ENV, name_problems

__all__ = ["OPTIONS", "RECONCILER_API_VERSION", "reconciler_register_drivers", "refusals"]

RECONCILER_API_VERSION = 2

#: The options a btrfs volume takes: where its pool is. Changing it makes a new volume (a replacement).
OPTIONS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "root": {"description": f"An absolute directory on a mounted btrfs that holds the pool (default: ${ROOT_ENV})",
                 "type": "string", "pattern": "^/"},
    },
}


def refusals(spec) -> list[str]:
    """What ``validate`` refuses in a btrfs volume: no pool named at all, or a name the swap would collide with."""
    problems = name_problems(spec.name)
    if not dict(spec.options).get("root") and not os.environ.get(ROOT_ENV):
        problems.append(f"the btrfs driver needs options.root (a directory on a mounted btrfs) or {ROOT_ENV}")
    return problems


@hookimpl
def reconciler_register_drivers(registry) -> None:
    """Offer ``driver: btrfs`` for volumes: the ``local`` driver's engine volumes, on subvolumes, with snapshots."""
    local = registry.lookup(Kind.VOLUME, "local")

    def make(context):
        from .driver import BtrfsVolumeDriver

        return BtrfsVolumeDriver(context, local(context))

    registry.add_storage_driver(NAME, make, schema=OPTIONS, check=refusals, takes_snapshots=True)
