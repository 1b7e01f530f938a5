"""Reading the live state, through drivers only: one list call per driver and kind.

The drivers also look up names the spec wants that the stack does not own yet,
so the plan can refuse to take over someone else's object.
"""
from __future__ import annotations

from typing import Mapping

from .drivers import Drivers
from .model import DesiredState, Kind, LiveObject, LiveState
from .plan import wanted_images

__all__ = ["observe"]


def _wanted(desired: DesiredState) -> dict[Kind, dict[str, str]]:
    return {
        Kind.IMAGE: {ref: spec.config_hash for ref, spec in wanted_images(desired).items()},
        Kind.NETWORK: {s.name: s.config_hash for s in desired.networks.values()},
        Kind.VOLUME: {s.name: s.config_hash for s in desired.volumes.values()},
        Kind.CONTAINER: {s.name: s.config_hash for s in desired.containers.values()},
    }


def observe(desired: DesiredState, drivers: Drivers) -> LiveState:
    """The live state of ``desired.stack`` as every registered driver reports it."""
    wanted = _wanted(desired)
    found: dict[Kind, Mapping[str, LiveObject]] = {}
    for kind in Kind:
        objects: dict[str, LiveObject] = {}
        for driver in drivers.all(kind):
            for obj in driver.observe(desired.stack, wanted[kind]):
                objects[obj.name] = obj
        found[kind] = objects
    return LiveState(
        images=found[Kind.IMAGE],
        networks=found[Kind.NETWORK],
        volumes=found[Kind.VOLUME],
        containers=found[Kind.CONTAINER],
    )
