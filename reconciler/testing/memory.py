"""One engine in memory, with a driver for each role: the core, hooks and policies tested without Docker.

httpx tests a client with ``MockTransport``: the real code runs, only the far
side of the seam is fake. Our seam is the driver interface, so this module
fakes the engine behind it: ``MemoryEngine`` keeps objects as ``LiveObject``
records, journals every driver call and fails chosen ones on demand, and
``make_reconciler`` builds a ``Reconciler`` whose only plugins are the engine
and the test's own. What the engine holds is ``memory_objects.py``, its
drivers ``memory_drivers.py``; this module makes them one plugin.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from ..defaults import ARCHIVE_DRIVER, DEFAULT_DRIVERS
from ..drivers import DriverContext, DriverRegistry, Drivers, PluginDrivers
from ..hookspecs import hookimpl
from ..model import Kind
from ..state import StateStore
from .memory_drivers import (
    MEMORY_DRIVERS,
    MemoryNetworkDriver,
    MemoryRegistryDriver,
    MemoryRuntimeDriver,
    MemoryStorageDriver,
)
from .memory_objects import EngineObjects

if TYPE_CHECKING:
    from ..reconcile import Reconciler

__all__ = [
    "MemoryEngine",
    "MemoryNetworkDriver",
    "MemoryRegistryDriver",
    "MemoryRuntimeDriver",
    "MemoryStorageDriver",
    "make_reconciler",
]


class MemoryEngine(EngineObjects):
    """An engine held in memory, with a driver for each role: the core runs against it unchanged.

    Objects are ``LiveObject`` records by name (images by reference) in
    ``images``, ``networks``, ``volumes`` and ``containers``; ``owned`` is
    worked out per observe, from the labels. ``add`` puts objects there as a
    user or another stack would have made them.

    Every driver call is journaled in ``calls`` before it takes effect:
    ``("observe", kind)``; ``("pull" | "build" | "push", ref)``;
    ``("create-network" | "delete-network" | "create-volume" | "delete-volume", name)``;
    ``("create" | "start" | "delete", name)`` and ``("wait", name, condition)``
    for containers; ``("events", stack)`` when an event stream opens; ``("logs", name)`` when a
    container's output (``write``) is read; ``("snapshot", volume)``, ``("restore", volume, id)``,
    ``("list-snapshots", volume)`` and ``("delete-snapshot", volume, id)`` for the storage driver's
    snapshots of ``volume_content`` (path → bytes, per volume: tests set it). ``fail``
    makes chosen calls raise.

    Every change, whoever makes it, is an event: the runtime driver's
    ``events`` follows them for all kinds, as ``reconcile watch`` and the
    daemon follow an engine's. ``remove`` and ``stop`` change the engine by
    hand, the drift those loops exist to repair; like ``add``, they are not
    journaled.

    Where the core relies on the engine, it behaves as the engine does: a name
    that exists cannot be created again (``ConflictError``); a container needs
    its image and networks; a network in use cannot be removed; deleting what
    is gone is quiet; pulling a reference twice gives the same image id.
    Nothing runs: ``start`` makes a container ``running`` (and ``healthy``
    when it has a healthcheck) at once, and ``wait`` answers at once. An option
    with an empty value is refused, the invalid config of the contract kit.

    Calls take no time unless ``delays`` says so, by verb (``{"delete": 0.3}``:
    every container removal takes 0.3 s, as a stop grace period would); the
    engine is not held while a call sleeps, so slow calls overlap and
    ``peak`` shows how many did.
    """

    def __init__(self, *, delays: Mapping[str, float] | None = None, rolls: bool = True) -> None:
        super().__init__(delays=delays, rolls=rolls)
        #: The reconciler's record of what it made here: it lives and dies with the engine.
        self.state = StateStore.in_memory()
        self._factories = {cls.kind: (lambda context, cls=cls: cls(self, context)) for cls in MEMORY_DRIVERS}

    def register(self, registry: PluginDrivers) -> None:
        """Add the memory drivers under the default driver names (images also as ``archive``)."""
        images = self._factories[Kind.IMAGE]
        registry.add_registry_driver(DEFAULT_DRIVERS["images"], images)
        registry.add_registry_driver(ARCHIVE_DRIVER, images)
        registry.add_network_driver(DEFAULT_DRIVERS["networks"], self._factories[Kind.NETWORK])
        registry.add_storage_driver(DEFAULT_DRIVERS["volumes"], self._factories[Kind.VOLUME],
                                    takes_snapshots=MemoryStorageDriver.takes_snapshots)
        registry.add_runtime_driver(DEFAULT_DRIVERS["containers"], self._factories[Kind.CONTAINER])

    @hookimpl
    def reconciler_register_drivers(self, registry: PluginDrivers) -> None:
        """The engine is a plugin too: ``pm.register(engine)`` gives the core its drivers."""
        self.register(registry)

    def drivers(self, stack: str) -> Drivers:
        """Driver instances for ``stack``, as ``apply_plan`` takes them (no plugin manager needed)."""
        registry = DriverRegistry()
        self.register(registry.view("memory-engine"))
        return registry.instantiate(DriverContext(stack=stack))


def make_reconciler(engine: MemoryEngine, *, plugins: Mapping[str, object] | None = None) -> Reconciler:
    """A ``Reconciler`` whose only plugins are ``engine`` and ``plugins`` (by name); nothing installed loads.

    Its stack lock is keyed on this engine (its ``id``, else this URL), so a
    test never waits for a real run, or for another engine's test, on the
    same stack name.
    """
    import pluggy

    from .. import hookspecs
    from ..reconcile import Reconciler

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(engine, name="memory-engine")
    for name, plugin in (plugins or {}).items():
        pm.register(plugin, name=name)
    pm.check_pending()  # a misspelled hook fails here, as it does in make_plugin_manager
    return Reconciler(engine_url=f"memory://{id(engine):x}", plugin_manager=pm, state=engine.state)
