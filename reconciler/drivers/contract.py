"""The driver contract: the only way the core reaches a backend.

Four roles, one per object kind: a *registry* driver for images, a *network*
driver, a *storage* driver for volumes and a *runtime* driver for containers.
Plugins add them through the ``reconciler_register_drivers(registry)`` hook
under one or more names (the ``driver:`` a spec names). A driver is created
once per run from its factory, so a factory registered under several names
gives one instance, observed once.

Contract for every driver:

- ``observe(stack, wanted)`` lists what this stack owns (by its labels) plus
  any object whose name is in ``wanted`` (so the plan can refuse to take over
  an object it does not own). ``wanted`` is a ``Wanted``: the specs by name
  (``wanted.specs``), which as a mapping still gives each name's desired
  config hash; a driver may use it to read details only of objects that changed.
- ``create`` / ``delete`` are idempotent where the backend allows: deleting
  what is already gone is not an error.
- ``create`` returns the new object's id, as ``observe`` will report it in
  ``LiveObject.id``; the core writes it in its record (``reconciler.state``),
  which is what lets it tell its own objects from ones that merely copy their
  labels. A driver returning None (as before 0.3) is fine: the core then
  matches the object by name and config hash on the next observe.
- Backend failures are mapped onto ``TemporaryError`` (retried by the core)
  or ``PermanentError`` (that change fails, its dependents are skipped).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
import threading
from typing import Any, Callable, ClassVar, Collection, Iterable, Iterator, Mapping, TypeVar

from .errors import PermanentError, PluginError
from .model import ContainerSpec, ImageSpec, Kind, LiveObject, NetworkSpec, TLSFiles, VolumeSpec

__all__ = [
    "DriverContext",
    "DriverRegistry",
    "OptionCheck",
    "SpecCheck",
    "Drivers",
    "PluginDrivers",
    "Wanted",
    "NetworkDriver",
    "ObjectDriver",
    "RegistryDriver",
    "RuntimeDriver",
    "StorageDriver",
    "owned_plus_wanted",
    "stream_opened",
    "wanted_specs",
]


def stream_opened(stop: threading.Event) -> None:
    """Tell the loop that ``ObjectDriver.events``' stream is open: call it once, before the first name."""
    opened = getattr(stop, "opened", None)
    if opened is not None:  # the loop's; a plain Event (a test, a caller of its own) does not ask
        opened()


class Wanted(dict):
    """What ``observe`` is asked to look for: the specs, by name (images: by reference).

    ``wanted.specs[name]`` is the spec (``ImageSpec``, ``NetworkSpec``, ...), so a
    driver reads what it needs from it (an image's ``tracks_tag``, ``archive``,
    ``options``). The mapping itself still maps each name to the
    spec's ``config_hash``, as it did for drivers written against plugin API 1.
    """

    def __init__(self, specs: Mapping[str, Any] | None = None) -> None:
        specs = dict(specs or {})
        super().__init__({name: getattr(spec, "config_hash", "") for name, spec in specs.items()})
        self.specs: dict[str, Any] = specs


def wanted_specs(wanted: Mapping[str, Any]) -> Mapping[str, Any]:
    """The specs in ``wanted`` (empty for a plain name → hash mapping, as older callers pass)."""
    return getattr(wanted, "specs", {})


@dataclass
class DriverContext:
    """What a driver factory gets: which engine, which stack, and a place to share state.

    ``shared`` lets the drivers of one plugin share a connection for the
    context's lifetime; ``pass_cache`` lets them share reads within one
    observe pass (the core clears it when a pass starts); ``stats`` counts
    backend calls (``"read"``, ``"write"``) so a converged apply can be shown
    to make zero writes. ``progress``, when set, takes one line of progress
    text about a named object (a build step, a pull or push status) as it
    happens; drivers call it from worker threads and must redact secrets first.
    ``engine_tls`` holds the client certificate files for a ``tcp://`` engine
    that verifies its clients (a fleet target's ``tls:``).
    """

    stack: str
    engine_url: str | None = None
    engine_tls: TLSFiles | None = None
    shared: dict = field(default_factory=dict)
    pass_cache: dict = field(default_factory=dict)
    stats: Counter = field(default_factory=Counter)
    progress: Callable[[str, str], None] | None = None


class ObjectDriver(ABC):
    """What every driver does: list its objects and delete one."""

    kind: ClassVar[Kind]
    #: The JSON Schema (draft 2020-12) of the ``options:`` a spec gives this driver, or None
    #: (any options). Read from the class when the factory registered is the class itself;
    #: otherwise pass ``schema=`` when registering. A property marked
    #: ``"x-reconciler-change": "in-place"`` can change without recreating the object
    #: (the driver implements ``update``); every other option forces a replacement.
    options_schema: ClassVar[Mapping[str, Any] | None] = None

    @abstractmethod
    def observe(self, stack: str, wanted: Mapping[str, str]) -> list[LiveObject]:
        """Objects this stack owns, plus unowned ones whose names are in ``wanted``."""

    @abstractmethod
    def delete(self, live: LiveObject) -> None:
        """Remove the object; an object already gone is not an error."""

    def validate(self, spec: object) -> list[str]:
        """Problems with a spec's driver options, checked before any change is applied.

        The default finds none; drivers with options of their own override it.
        """
        return []

    def events(self, stack: str, names: Collection[str], stop: threading.Event) -> Iterator[str]:
        """Optional: follow the backend's changes, yielding the name of each object of ``stack`` that changed.

        ``reconcile watch`` and the daemon run a pass when one arrives, so a
        container stopped or removed by hand is repaired within seconds.
        ``names`` is the stack's current object names (read it on every event:
        it changes); report objects that claim the stack or carry one of those
        names. Return when ``stop`` is set; raise ``TemporaryError`` when the
        stream breaks (the loop opens it again). The default yields nothing:
        the loop then relies on its resync interval. Drivers sharing one
        backend should let one of them follow it for all kinds.

        Call ``stream_opened(stop)`` once the stream is open, before the
        first name: the loop then looks once more, so a change made between
        its last read of the live state and the stream (a container exiting
        just after the first pass started it) is not missed until the
        resync. ``stop`` has the ``is_set`` and ``wait`` of a
        ``threading.Event``.
        """
        return iter(())


class RegistryDriver(ObjectDriver):
    """Makes images present: pulls references, builds contexts.

    ``observe`` says whether the content behind a reference changed (a tag
    moved upstream, an archive holds another image) by setting each image's
    ``LiveObject.content``; the core then calls ``pull`` again and replaces
    the containers that use the image. That is the only signal the planner
    reads for it: an image reported with ``content=None`` is never updated for
    its content (``pull: always`` still pulls a tag it follows), whatever its
    ``details`` say.
    """

    kind = Kind.IMAGE

    @abstractmethod
    def pull(self, spec: ImageSpec) -> None:
        """Pull ``spec.ref`` from its registry."""

    @abstractmethod
    def build(self, spec: ImageSpec, labels: Mapping[str, str]) -> None:
        """Build ``spec`` and tag it ``spec.ref``, with ``labels`` on the image."""

    def push(self, spec: ImageSpec) -> None:
        """Push ``spec.ref`` to its registry (for images with ``push: true``).

        Optional: a driver that cannot push keeps this default, and a spec
        asking it to push fails that change with this message.
        """
        raise PermanentError(f"the {type(self).__name__} registry driver cannot push {spec.ref}")

    def delete(self, live: LiveObject) -> None:
        """Images are shared caches: the core never deletes them."""


class NetworkDriver(ObjectDriver):
    kind = Kind.NETWORK

    @abstractmethod
    def create(self, spec: NetworkSpec, labels: Mapping[str, str]) -> str | None:
        """Create the network named ``spec.name`` with ``labels``; return its id (None: unknown)."""

    def update(self, spec: NetworkSpec, live: LiveObject, labels: Mapping[str, str]) -> None:
        """Change the options the options schema marks in place, and set ``labels`` (the new config hash).

        Called only when every changed field is such an option. The default refuses.
        """
        raise PermanentError(f"the {type(self).__name__} network driver cannot change {spec.name} in place")


class StorageDriver(ObjectDriver):
    kind = Kind.VOLUME

    @abstractmethod
    def create(self, spec: VolumeSpec, labels: Mapping[str, str]) -> str | None:
        """Create the volume named ``spec.name`` with ``labels``; return its id (None: unknown).

        Volumes have no engine id: ``labels`` carries one the core made up
        (``reconciler.labels.VOLUME_ID``). A driver that reports it as the
        volume's ``LiveObject.id`` (as the built-in ones do) returns it here;
        one that reports the name returns the name, or None.
        """

    def update(self, spec: VolumeSpec, live: LiveObject, labels: Mapping[str, str]) -> None:
        """Change the options the options schema marks in place, and set ``labels`` (the new config hash).

        Called only when every changed field is such an option; ``labels`` keep the
        volume's id label. The default refuses.
        """
        raise PermanentError(f"the {type(self).__name__} storage driver cannot change {spec.name} in place")


class RuntimeDriver(ObjectDriver):
    """Runs containers.

    ``delete`` (which stops a running container gracefully first) and ``wait``
    may block for a long time: a stop grace period, a healthcheck. The core
    calls them from its wait lane, where they hold none of the workers that
    bound ``create`` and ``start``: they should wait on the backend, not load it.
    """

    kind = Kind.CONTAINER
    #: True for a runtime that schedules a container's replicas itself (a Swarm service, a
    #: Kubernetes deployment): the spec then gives it one ``ContainerSpec`` per container key,
    #: with ``replicas`` set, instead of one per replica. Read from the class when the factory
    #: registered is the class itself; otherwise pass ``schedules_replicas=`` when registering.
    schedules_replicas: ClassVar[bool] = False

    @abstractmethod
    def create(self, spec: ContainerSpec, labels: Mapping[str, str]) -> str | None:
        """Create (not start) the container ``spec.name``, attached to its networks; return its id."""

    def update(self, spec: ContainerSpec, live: LiveObject, labels: Mapping[str, str]) -> str | None:
        """Optional: change the object ``live`` to match ``spec`` in place, with ``labels`` (the new config hash).

        A runtime that implements it (``updates_in_place``) gets an ``update``
        change instead of a replacement when a container's config changed or
        the runtime reported drift (``LiveObject.details["drift"]``): a Swarm
        service is updated, and the Swarm rolls its tasks over. Returns the
        object's id (the same). The default refuses.
        """
        raise PermanentError(f"the {type(self).__name__} runtime driver cannot change {spec.name} in place")

    @property
    def updates_in_place(self) -> bool:
        """Whether this runtime implements ``update``."""
        return type(self).update is not RuntimeDriver.update

    @abstractmethod
    def start(self, name: str) -> None:
        """Start (or unpause) the container.

        Raise ``RecreateRequired`` when the backend can no longer start this
        container but a new one from the same spec would start (after an
        engine crash: a task that outlived it). The core then removes it and
        creates it again, if the stack owns it and its config is unchanged.
        """

    @abstractmethod
    def wait(self, name: str, condition: str, *, timeout: float) -> None:
        """Block until the container is ``started``, ``healthy`` or ``completed``.

        Raises ``PermanentError`` when the condition can no longer be met
        (exited with an error, no healthcheck) or ``timeout`` passes.
        """

    def engine_id(self) -> str | None:
        """The identity of the engine this driver runs containers on, or None when it cannot say.

        The same for every address that reaches the engine (Docker's is the
        ``docker info`` ID), so the core keys the stack's lock on it: two runs
        reaching one engine through a socket and through ``tcp://`` take one
        lock. Optional: the default says nothing, and the lock falls back to
        the engine URL's text. Asked once per apply, before observing; an
        answer that costs a backend call should be one the driver reuses.
        """
        return None

    def prune_files(self, stack: str) -> None:
        """Optional: remove what ``create`` materialized for configs and secrets that no container needs now.

        The core calls it once after an apply that changed containers, and
        after ``destroy``, when every change has finished (the old containers
        are gone). A driver that writes no files keeps this default, which
        does nothing.
        """

    # Rolling replacements (``reconciler.rollout``). A runtime that keeps the
    # defaults has its containers replaced the simple way: the old one is
    # removed, then the new one created and started.

    def rename(self, container_id: str, name: str) -> None:
        """Give the container ``container_id`` the name ``name`` (the old one steps aside for its successor)."""
        raise NotImplementedError

    def stop(self, container_id: str) -> None:
        """Stop the container gracefully (its stop signal and grace period); a stopped one is fine."""
        raise NotImplementedError

    def drain(self, container_id: str) -> None:
        """Optional: stop sending the container new work before it is stopped (start-first rollouts).

        The Docker runtime takes it out of its networks' name resolution, so
        clients looking up its alias reach only its successor. The default does nothing.
        """

    def ready(self, name: str, *, healthcheck: bool, min_ready: float, timeout: float) -> None:
        """Block until a just-started container can take over: healthy when it has a healthcheck,
        else still running after ``min_ready`` seconds.

        Raises ``PermanentError`` saying why not (unhealthy with its last probe's
        output, exited with its code and last log lines, or ``timeout``).
        """
        self.wait(name, "healthy" if healthcheck else "started", timeout=timeout)

    @property
    def rolls(self) -> bool:
        """Whether this runtime can replace a container in place (it implements ``rename`` and ``stop``)."""
        return type(self).rename is not RuntimeDriver.rename and type(self).stop is not RuntimeDriver.stop


T = TypeVar("T")


def owned_plus_wanted(
    owned: Iterable[T],
    wanted: Iterable[str],
    lookup: Callable[[list[str]], Iterable[T]],
    name_of: Callable[[T], str],
) -> dict[str, T]:
    """What ``observe`` returns, by name: the stack's own objects plus any object under a wanted name.

    ``owned`` is the backend's answer for the stack (one filtered list call).
    ``lookup(names)`` is asked only for wanted names the stack does not own, so
    a converged stack costs one call; it may return more than asked (a
    substring filter): only exact names are kept. Reporting those strangers
    is what lets the plan refuse to take over an object it does not own.
    """
    found = {name_of(obj): obj for obj in owned}
    missing = [name for name in wanted if name not in found]
    if missing:
        for obj in lookup(missing):
            if name_of(obj) in missing:
                found.setdefault(name_of(obj), obj)
    return found


Factory = Callable[[DriverContext], ObjectDriver]
#: A driver's check of a spec's ``options`` (each value a string), returning one message per
#: problem. It must not need the backend or import its client: ``reconcile validate`` runs it,
#: so that a bad option is an error at file:line before anything is observed.
OptionCheck = Callable[[Mapping[str, str]], Iterable[str]]
#: A runtime's check of a ``ContainerSpec``, returning one message per field it cannot honour
#: (naming the field first: ``"privileged: ..."``). Like an ``OptionCheck``, it must not need
#: the backend or import its client: ``reconcile validate`` runs it.
SpecCheck = Callable[[ContainerSpec], Iterable[str]]


class DriverRegistry:
    """Every driver plugins provide, by kind and name; read by the core.

    Plugins fill it through ``reconciler_register_drivers``, each through its
    own ``view`` (so a conflict can name both plugins). Two plugins giving one
    name different factories is not an error here: only a spec using that name
    fails (``factory`` raises), so one plugin's clash never stops the others.
    """

    def __init__(self) -> None:
        self._factories: dict[Kind, dict[str, tuple[Factory, str]]] = {kind: {} for kind in Kind}
        self._option_checks: dict[Kind, dict[str, OptionCheck]] = {kind: {} for kind in Kind}
        self._schemas: dict[Kind, dict[str, Mapping[str, Any]]] = {kind: {} for kind in Kind}
        self._rivals: dict[Kind, dict[str, list[str]]] = {kind: {} for kind in Kind}
        self._scheduling: set[str] = set()  # runtimes that schedule replicas themselves
        self._spec_checks: dict[str, SpecCheck] = {}  # runtime name → its check of a ContainerSpec

    def view(self, plugin: str) -> PluginDrivers:
        """What one plugin registers through: its additions are credited to ``plugin``."""
        return PluginDrivers(self, plugin)

    def add(self, kind: Kind, name: str, factory: Factory, *, plugin: str, options: OptionCheck | None = None,
            schema: Mapping[str, Any] | None = None, schedules_replicas: bool | None = None,
            spec_check: SpecCheck | None = None) -> None:
        existing = self._factories[kind].get(name)
        if existing and existing[0] is not factory:
            rivals = self._rivals[kind].setdefault(name, [existing[1]])
            if plugin not in rivals:
                rivals.append(plugin)
            return
        self._factories[kind][name] = (factory, plugin)
        if options is not None:
            self._option_checks[kind][name] = options
        schema = schema if schema is not None else getattr(factory, "options_schema", None)
        if schema is not None:
            self._schemas[kind][name] = schema
        if kind is Kind.CONTAINER and (schedules_replicas if schedules_replicas is not None
                                       else getattr(factory, "schedules_replicas", False)):
            self._scheduling.add(name)
        if spec_check is not None:
            self._spec_checks[name] = spec_check

    def spec_problems(self, kind: Kind, name: str, spec: Any) -> list[str]:
        """What the runtime ``name`` cannot run in a container ``spec``, without making the driver (see ``SpecCheck``)."""
        check = self._spec_checks.get(name) if kind is Kind.CONTAINER else None
        return list(check(spec)) if check is not None else []

    def schedules_replicas(self, name: str) -> bool:
        """Whether the runtime ``name`` schedules replicas itself (see ``RuntimeDriver.schedules_replicas``)."""
        return name in self._scheduling

    def options_schema(self, kind: Kind, name: str) -> Mapping[str, Any] | None:
        """The JSON Schema of driver ``name``'s options (None: it takes any)."""
        return self._schemas[kind].get(name)

    def forget(self, plugin: str) -> None:
        """Drop everything ``plugin`` registered (it failed half-way through registering)."""
        for kind in Kind:
            for name, (_, provider) in list(self._factories[kind].items()):
                if provider == plugin:
                    del self._factories[kind][name]
                    self._option_checks[kind].pop(name, None)
                    self._schemas[kind].pop(name, None)
                    self._scheduling.discard(name)
                    self._spec_checks.pop(name, None)
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

    def option_problems(self, kind: Kind, name: str, options: Mapping[str, str]) -> list[str]:
        """What the driver ``name`` finds wrong with ``options``, without making the driver (see ``OptionCheck``)."""
        check = self._option_checks[kind].get(name)
        return list(check(options)) if check is not None else []

    def names(self, kind: Kind) -> list[str]:
        return sorted(self._factories[kind])

    def provider(self, kind: Kind, name: str) -> str:
        return self._factories[kind][name][1]

    def providers(self, kind: Kind, name: str) -> list[str]:
        """Every plugin that registered ``name`` (more than one: a conflict)."""
        return self._rivals[kind].get(name) or [self.provider(kind, name)]

    def factory(self, kind: Kind, name: str) -> Factory:
        factories = self._factories[kind]
        if name not in factories:
            available = ", ".join(sorted(factories)) or "none"
            raise PluginError(f"no {kind.role} driver named {name!r} (available: {available})")
        if name in self._rivals[kind]:
            raise PluginError(self.conflicts()[(kind, name)] + ": disable one of them (RECONCILER_DISABLED_PLUGINS)")
        return factories[name][0]

    def usable_names(self, kind: Kind) -> list[str]:
        """The names a spec can use without a conflict."""
        return [name for name in self.names(kind) if name not in self._rivals[kind]]

    def instantiate(self, context: DriverContext) -> Drivers:
        return Drivers(self, context)


class PluginDrivers:
    """The registry as one plugin sees it in ``reconciler_register_drivers``."""

    def __init__(self, registry: DriverRegistry, plugin: str) -> None:
        self._registry = registry
        self.plugin = plugin

    def add_registry_driver(self, name: str, factory: Factory, *, options: OptionCheck | None = None,
                            schema: Mapping[str, Any] | None = None) -> None:
        """Register an image driver (``images.<key>.driver``). See ``add_storage_driver`` for the keywords."""
        self._registry.add(Kind.IMAGE, name, factory, plugin=self.plugin, options=options, schema=schema)

    def add_network_driver(self, name: str, factory: Factory, *, options: OptionCheck | None = None,
                           schema: Mapping[str, Any] | None = None) -> None:
        """Register a network driver (``networks.<key>.driver``). See ``add_storage_driver`` for the keywords."""
        self._registry.add(Kind.NETWORK, name, factory, plugin=self.plugin, options=options, schema=schema)

    def add_storage_driver(self, name: str, factory: Factory, *, options: OptionCheck | None = None,
                           schema: Mapping[str, Any] | None = None) -> None:
        """Register a volume driver (``volumes.<key>.driver``).

        ``schema`` is the JSON Schema of a spec's ``options:`` for this driver
        (default: the factory's ``options_schema`` when it is a driver class);
        validation checks every spec against it. ``options`` is a function
        for checks a schema cannot express (see ``OptionCheck``).
        """
        self._registry.add(Kind.VOLUME, name, factory, plugin=self.plugin, options=options, schema=schema)

    def add_runtime_driver(self, name: str, factory: Factory, *, schedules_replicas: bool | None = None,
                           check: SpecCheck | None = None) -> None:
        """Register a container runtime (a stack picks one with ``runtime:``).

        ``schedules_replicas`` (default: the factory's ``schedules_replicas`` when it is a
        driver class, else False): the runtime runs a container's replicas itself, so a
        stack using it gets one ``ContainerSpec`` per container key (``replicas`` set),
        named ``<stack>_<key>``, instead of ``<stack>-<key>-<n>`` per replica. ``check`` (see
        ``SpecCheck``) refuses, at ``validate``, what the runtime cannot run (a Swarm service
        cannot be privileged), one message per field.
        """
        self._registry.add(Kind.CONTAINER, name, factory, plugin=self.plugin, schedules_replicas=schedules_replicas,
                           spec_check=check)


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

    def event_sources(self) -> list[ObjectDriver]:
        """Every distinct driver that follows its backend's changes (overrides ``events``)."""
        seen: dict[int, ObjectDriver] = {}
        for kind in Kind:
            for driver in self.all(kind):
                if type(driver).events is not ObjectDriver.events:
                    seen.setdefault(id(driver), driver)
        return list(seen.values())
