"""Reading the live state, through drivers only: one list call per driver and kind.

The drivers also look up names the spec wants that the stack does not own yet,
so the plan can refuse to take over someone else's object.
"""
from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor, wait
from typing import Any

from .drivers import Drivers, ObjectDriver
from .model import DesiredState, Kind, LiveObject, LiveState

__all__ = ["observe", "writable_sizes"]


def _jobs(desired: DesiredState, drivers: Drivers) -> list[tuple[Kind, ObjectDriver, dict[str, Any]]]:
    """Each distinct driver with the specs that use it, by name (what its ``observe`` is given as ``wanted``).

    Every driver is observed, even one no spec names: it may own objects to prune.
    """
    jobs = []
    for kind in Kind:
        per_driver: dict[int, tuple[ObjectDriver, dict[str, Any]]] = {id(d): (d, {}) for d in drivers.all(kind)}
        for name, spec in desired.of(kind).items():
            driver = drivers.get(kind, spec.driver)
            per_driver.setdefault(id(driver), (driver, {}))[1][name] = spec
        jobs += [(kind, driver, specs) for driver, specs in per_driver.values()]
    return jobs


def observe(desired: DesiredState, drivers: Drivers, *, as_of: float | None = None,
            pool: Executor | None = None) -> LiveState:
    """The live state of ``desired.stack`` as every registered driver reports it.

    The drivers are asked concurrently: on a remote engine the list calls'
    round trips overlap instead of adding up (on ``pool``, a long-lived one the
    caller keeps, else threads of this call's own). ``as_of`` (monotonic): the
    pass is one of a burst (a resync sweep) whose lists its drivers share with
    the others' (``fresh_read``), none read before that moment; with a shared
    engine such a pass observes in the caller's thread (picking out of lists
    costs less than two thread hand-offs per driver).
    """
    drivers.context.pass_cache.clear()
    drivers.context.fresh_after = as_of
    jobs = _jobs(desired, drivers)
    if as_of is not None and drivers.context.engine_shared is not None:
        # A pass of a sweep picks its objects out of the sweep's lists (one listing per kind for every stack,
        # read by the first pass that asks): in this thread, without handing each job to the pool and back.
        results = [job[1].observe(desired.stack, job[2]) for job in jobs]
    elif pool is not None:  # every job ends before the pass does, a failed one's siblings too
        futures = [pool.submit(job[1].observe, desired.stack, job[2]) for job in jobs]
        wait(futures)
        results = [future.result() for future in futures]
    else:
        with ThreadPoolExecutor(max_workers=len(jobs) or 1, thread_name_prefix="observe") as own:
            results = list(own.map(lambda job: job[1].observe(desired.stack, job[2]), jobs))
    found: dict[Kind, dict[str, LiveObject]] = {kind: {} for kind in Kind}
    for (kind, _, _), objects in zip(jobs, results):
        for obj in objects:
            found[kind][obj.name] = obj
    return LiveState.by_kind(found)


def writable_sizes(desired: DesiredState, drivers: Drivers) -> dict[str, int] | None:
    """The writable-layer size of each container, for ``status``, when some container's ``filesystem:`` watches it.

    Costs the runtime drivers that can tell (``writable_sizes(stack)``) one list call each; a stack
    with ``filesystem: ignore`` everywhere (the default) costs nothing, and None says "not read".
    """
    runtimes = {spec.driver for spec in desired.containers.values() if spec.filesystem.watched}
    if not runtimes:
        return None
    sizes: dict[str, int] = {}
    for name in sorted(runtimes):
        read = getattr(drivers.get(Kind.CONTAINER, name), "writable_sizes", None)
        if read is not None:
            sizes.update(read(desired.stack))
    return sizes
