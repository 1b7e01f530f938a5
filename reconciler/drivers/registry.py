"""How the core registers, looks up and makes drivers: the registry plugins fill, and one run's instances.

Plugins see ``PluginDrivers`` (one plugin's view, handed to the
``reconciler_register_drivers`` hook); the core reads ``DriverRegistry``
(factories, options schemas and checks by kind and name, conflicts between
plugins) without making any driver, which is what lets ``reconcile validate``
run with no engine; ``Drivers`` makes each driver of one run on first use.
What a driver is and does is the contract's (``reconciler.drivers.contract``).
"""
from __future__ import annotations

from typing import Any, Mapping

from ..errors import PluginError
from ..model import Kind
from .contract import Check, DriverContext, Factory, ObjectDriver, RuntimeDriver

__all__ = ["DriverRegistry", "Drivers", "PluginDrivers"]


class DriverRegistry:
    """Every driver plugins provide, by kind and name; read by the core.

    Plugins fill it through ``reconciler_register_drivers``, each through its
    own ``view`` (so a conflict can name both plugins). Two plugins giving one
    name different factories is not an error here: only a spec using that name
    fails (``factory`` raises), so one plugin's clash never stops the others.
    """

    def __init__(self) -> None:
        self._factories: dict[Kind, dict[str, tuple[Factory, str]]] = {kind: {} for kind in Kind}
        self._checks: dict[Kind, dict[str, Check]] = {kind: {} for kind in Kind}
        self._schemas: dict[Kind, dict[str, Mapping[str, Any]]] = {kind: {} for kind in Kind}
        self._rivals: dict[Kind, dict[str, list[str]]] = {kind: {} for kind in Kind}
        self._scheduling: set[str] = set()  # runtimes that schedule replicas themselves
        self._snapshotting: set[str] = set()  # storage drivers that take snapshots
        self._usable: dict[Kind, list[str]] = {}  # ``usable_names``, until the next ``add`` or ``forget``

    def view(self, plugin: str) -> PluginDrivers:
        """What one plugin registers through: its additions are credited to ``plugin``."""
        return PluginDrivers(self, plugin)

    def add(self, kind: Kind, name: str, factory: Factory, *, plugin: str, schema: Mapping[str, Any] | None = None,
            check: Check | None = None, schedules_replicas: bool | None = None,
            takes_snapshots: bool | None = None) -> None:
        """Register ``factory`` as the ``kind`` driver ``name``, credited to ``plugin`` (see ``PluginDrivers``)."""
        self._usable.clear()
        existing = self._factories[kind].get(name)
        if existing and existing[0] is not factory:
            rivals = self._rivals[kind].setdefault(name, [existing[1]])
            if plugin not in rivals:
                rivals.append(plugin)
            return
        self._factories[kind][name] = (factory, plugin)
        if check is not None:
            self._checks[kind][name] = check
        schema = schema if schema is not None else getattr(factory, "options_schema", None)
        if schema is not None:
            self._schemas[kind][name] = schema
        if kind is Kind.CONTAINER and (schedules_replicas if schedules_replicas is not None
                                       else getattr(factory, "schedules_replicas", False)):
            self._scheduling.add(name)
        if kind is Kind.VOLUME and (takes_snapshots if takes_snapshots is not None
                                    else getattr(factory, "takes_snapshots", False)):
            self._snapshotting.add(name)

    def spec_problems(self, kind: Kind, name: str, spec: Any) -> list[str]:
        """What the ``kind`` driver ``name`` refuses in ``spec``, by its registered ``Check``, without making it."""
        check = self._checks[kind].get(name)
        return list(check(spec)) if check is not None else []

    def schedules_replicas(self, name: str) -> bool:
        """Whether the runtime ``name`` schedules replicas itself (see ``RuntimeDriver.schedules_replicas``)."""
        return name in self._scheduling

    def takes_snapshots(self, name: str) -> bool:
        """Whether the storage driver ``name`` takes snapshots (see ``StorageDriver.takes_snapshots``), unmade."""
        return name in self._snapshotting

    def options_schema(self, kind: Kind, name: str) -> Mapping[str, Any] | None:
        """The JSON Schema of driver ``name``'s options (None: it takes any)."""
        return self._schemas[kind].get(name)

    def forget(self, plugin: str) -> None:
        """Drop everything ``plugin`` registered (it failed half-way through registering)."""
        self._usable.clear()
        for kind in Kind:
            for name, (_, provider) in list(self._factories[kind].items()):
                if provider == plugin:
                    del self._factories[kind][name]
                    self._checks[kind].pop(name, None)
                    self._schemas[kind].pop(name, None)
                    self._scheduling.discard(name)
                    self._snapshotting.discard(name)
            for name, rivals in list(self._rivals[kind].items()):
                if plugin in rivals:
                    rivals.remove(plugin)
                if len(rivals) < 2:
                    del self._rivals[kind][name]

    def conflicts(self) -> dict[tuple[Kind, str], str]:
        """(kind, name) → a message naming every plugin that registered that driver name."""
        return {(kind, name): f"{kind.role} driver {name!r} is registered twice: by "
                              + " and by ".join(p or "a plugin" for p in rivals)
                for kind in Kind for name, rivals in sorted(self._rivals[kind].items())}

    def names(self, kind: Kind) -> list[str]:
        """Every driver name of ``kind``, conflicted or not, sorted."""
        return sorted(self._factories[kind])

    def provider(self, kind: Kind, name: str) -> str:
        """The plugin that registered ``name`` (the first, when two did)."""
        return self._factories[kind][name][1]

    def providers(self, kind: Kind, name: str) -> list[str]:
        """Every plugin that registered ``name`` (more than one: a conflict)."""
        return self._rivals[kind].get(name) or [self.provider(kind, name)]

    def factory(self, kind: Kind, name: str) -> Factory:
        """The factory of ``name``; a ``PluginError`` when no plugin, or more than one, provides it."""
        factories = self._factories[kind]
        if name not in factories:
            available = ", ".join(sorted(factories)) or "none"
            raise PluginError(f"no {kind.role} driver named {name!r} (available: {available})")
        if name in self._rivals[kind]:
            raise PluginError(self.conflicts()[(kind, name)] + ": disable one of them (RECONCILER_DISABLED_PLUGINS)")
        return factories[name][0]

    def usable_names(self, kind: Kind) -> list[str]:
        """The names a spec can use without a conflict (a list of one's own)."""
        usable = self._usable.get(kind)
        if usable is None:
            usable = self._usable[kind] = [name for name in self.names(kind) if name not in self._rivals[kind]]
        return list(usable)

    def instantiate(self, context: DriverContext) -> Drivers:
        """The drivers of one run, made on first use with ``context``."""
        return Drivers(self, context)


class PluginDrivers:
    """The registry as one plugin sees it in ``reconciler_register_drivers``.

    Every ``add_*_driver`` takes the name a spec uses, a ``Factory``, and
    ``check``: the driver's ``Check`` of a spec of its kind, for what the
    options schema cannot say (an owner looked up on this host, a field a
    Swarm service cannot honour). The registry, image, network and storage
    drivers also take ``schema``: the JSON Schema of a spec's ``options:``
    (default: the factory's ``options_schema`` when it is a driver class),
    which joins validation.
    """

    def __init__(self, registry: DriverRegistry, plugin: str) -> None:
        self._registry = registry
        self.plugin = plugin

    def add_registry_driver(self, name: str, factory: Factory, *, schema: Mapping[str, Any] | None = None,
                            check: Check | None = None) -> None:
        """Register an image driver (``images.<key>.driver``)."""
        self._registry.add(Kind.IMAGE, name, factory, plugin=self.plugin, schema=schema, check=check)

    def add_network_driver(self, name: str, factory: Factory, *, schema: Mapping[str, Any] | None = None,
                           check: Check | None = None) -> None:
        """Register a network driver (``networks.<key>.driver``)."""
        self._registry.add(Kind.NETWORK, name, factory, plugin=self.plugin, schema=schema, check=check)

    def add_storage_driver(self, name: str, factory: Factory, *, schema: Mapping[str, Any] | None = None,
                           check: Check | None = None, takes_snapshots: bool | None = None) -> None:
        """Register a volume driver (``volumes.<key>.driver``).

        ``takes_snapshots`` (default: the factory's ``StorageDriver.takes_snapshots`` when it is
        a driver class, else False): it implements the snapshot methods, so a spec may ask
        for snapshots of its volumes (``DriverRegistry.takes_snapshots``, checked at validate).
        """
        self._registry.add(Kind.VOLUME, name, factory, plugin=self.plugin, schema=schema, check=check,
                           takes_snapshots=takes_snapshots)

    def add_runtime_driver(self, name: str, factory: Factory, *, schedules_replicas: bool | None = None,
                           check: Check | None = None) -> None:
        """Register a container runtime (a stack picks one with ``runtime:``).

        ``schedules_replicas`` (default: the factory's ``schedules_replicas`` when it is a
        driver class, else False): the runtime runs a container's replicas itself, so a
        stack using it gets one ``ContainerSpec`` per container key (``replicas`` set),
        named ``<stack>_<key>``, instead of ``<stack>-<key>-<n>`` per replica. ``check``
        refuses what the runtime cannot run (a Swarm service cannot be privileged).
        """
        self._registry.add(Kind.CONTAINER, name, factory, plugin=self.plugin, check=check,
                           schedules_replicas=schedules_replicas)

    def lookup(self, kind: Kind, name: str) -> Factory:
        """A factory that makes the ``kind`` driver another plugin registers as ``name``.

        For a driver that wraps another (the sandbox example wraps the ``docker``
        runtime) without importing its plugin: plugins never import each other.
        The name is looked up when the factory is called, once every plugin has
        registered, so the order plugins load in does not matter; a name nobody
        provides is then a ``PluginError``.
        """
        registry = self._registry

        def make(context: DriverContext) -> ObjectDriver:
            return registry.factory(kind, name)(context)

        return make


class Drivers:
    """Driver instances for one run: one per factory, looked up by kind and name."""

    def __init__(self, registry: DriverRegistry, context: DriverContext) -> None:
        self.context = context
        self._registry = registry
        self._instances: dict[int, ObjectDriver] = {}

    def get(self, kind: Kind, name: str) -> ObjectDriver:
        """The driver ``name`` of ``kind``, made on first use; a ``PluginError`` when no plugin provides it."""
        factory = self._registry.factory(kind, name)
        if id(factory) not in self._instances:
            self._instances[id(factory)] = factory(self.context)
        return self._instances[id(factory)]

    def engine_id(self, runtime: str | None = None) -> str | None:
        """What the runtime drivers say the engine is (``RuntimeDriver.engine_id``), or None.

        ``runtime``: the stack's runtime, whose answer alone keys its lock and
        record (a Swarm stack's is the swarm, a container stack's the engine).
        Without it (or when it says nothing) every runtime driver is asked, as
        every one is observed; with more than one identity the key names them all.
        """
        if runtime is not None and runtime in self._registry.usable_names(Kind.CONTAINER):
            driver = self.get(Kind.CONTAINER, runtime)
            found = driver.engine_id() if isinstance(driver, RuntimeDriver) else None
            if found:
                return found
        return "+".join(sorted(self.engine_ids())) or None

    def engine_ids(self) -> set[str]:
        """Every identity the runtime drivers give the engine (a swarm manager has its own and its swarm's)."""
        return {found for driver in self.all(Kind.CONTAINER) if isinstance(driver, RuntimeDriver)
                for found in [driver.engine_id()] if found}

    def all(self, kind: Kind) -> list[ObjectDriver]:
        """Every distinct driver of a kind (each observed once)."""
        seen: dict[int, ObjectDriver] = {}
        for name in self._registry.usable_names(kind):  # a conflicted name fails only a spec that uses it
            driver = self.get(kind, name)
            seen.setdefault(id(driver), driver)
        return list(seen.values())

    def unreported(self, desired: Any) -> list[str]:
        """The drivers ``desired``'s objects and runtime use whose changes may come without an event
        (``ObjectDriver.changes_reported``), as ``role name``: only looking sees those."""
        return sorted(f"{kind.role} {name}" for kind, name in self._used(desired)
                      if not _reported(self.get(kind, name)))

    def _used(self, desired: Any) -> set[tuple[Kind, str]]:
        """(kind, driver name) of every usable driver ``desired``'s objects and runtime name."""
        usable = {kind: set(self._registry.usable_names(kind)) for kind in Kind}
        wanted = {(kind, spec.driver) for kind in Kind for spec in desired.section(kind).values()}
        wanted.add((Kind.CONTAINER, desired.runtime))
        return {(kind, name) for kind, name in wanted if name in usable[kind]}

    def event_sources(self, desired: Any = None) -> list[ObjectDriver]:
        """Every distinct driver that follows its backend's changes (overrides ``events`` or ``engine_events``).

        ``desired`` (a ``DesiredState``): only the drivers its objects and its runtime use, so a stack on the
        engine's containers does not also follow a swarm's services.
        """
        used: set[int] | None = None
        if desired is not None:
            used = {id(self.get(kind, name)) for kind, name in self._used(desired)}
        seen: dict[int, ObjectDriver] = {}
        for kind in Kind:
            for driver in self.all(kind):
                if _follows(driver) and (used is None or id(driver) in used):
                    seen.setdefault(id(driver), driver)
        return list(seen.values())


def _follows(driver: ObjectDriver) -> bool:
    """Whether ``driver`` follows its backend's changes (overrides ``events`` or ``engine_events``)."""
    return (type(driver).events is not ObjectDriver.events
            or type(driver).engine_events is not ObjectDriver.engine_events)


def _reported(driver: ObjectDriver) -> bool:
    """``ObjectDriver.changes_reported``, its default (whether the driver follows its backend) when None."""
    said = getattr(driver, "changes_reported", None)
    return _follows(driver) if said is None else bool(said)
