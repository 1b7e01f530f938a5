"""Reading the live state, through drivers only: one list call per driver and kind.

The drivers also look up names the spec wants that the stack does not own yet,
so the plan can refuse to take over someone else's object.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

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
    """The live state of ``desired.stack`` as every registered driver reports it.

    The drivers are asked concurrently: on a remote engine the list calls'
    round trips overlap instead of adding up.
    """
    wanted = _wanted(desired)
    jobs = [(kind, driver) for kind in Kind for driver in drivers.all(kind)]
    with ThreadPoolExecutor(max_workers=len(jobs) or 1, thread_name_prefix="observe") as pool:
        results = list(pool.map(lambda job: job[1].observe(desired.stack, wanted[job[0]]), jobs))
    found: dict[Kind, dict[str, LiveObject]] = {kind: {} for kind in Kind}
    for (kind, _), objects in zip(jobs, results):
        for obj in objects:
            found[kind][obj.name] = obj
    return LiveState(
        images=found[Kind.IMAGE],
        networks=found[Kind.NETWORK],
        volumes=found[Kind.VOLUME],
        containers=found[Kind.CONTAINER],
    )
