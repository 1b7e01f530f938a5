"""The driver contract as tests: what our own drivers pass, ready for a plugin author to subclass.

A driver is only useful if it behaves the way the planner assumes: it lists
what a stack owns by its labels, reports the config hash it was given, tolerates
deleting what is gone, and turns backend failures into ``TemporaryError`` or
``PermanentError``. Rather than describe that in prose only, this module ships
the checks::

    from reconciler.testing import StorageDriverContract

    class TestMyDriver(StorageDriverContract):
        driver_name = "mine"                        # the spec's ``driver:``

        @pytest.fixture
        def driver(self, driver_context):
            return MyDriver(driver_context)

        def changed(self, spec):                    # optional: a config change
            return dataclasses.replace(spec, options=(("size", "32m"),))

It also ships one engine in memory, ``MemoryEngine``, with a driver for each
role, so the core, lifecycle hooks and policies are tested without Docker
(httpx's ``MockTransport`` is the model: the real code runs, only the far side
of the seam is fake)::

    engine = MemoryEngine()
    reconciler = make_reconciler(engine, plugins={"my-policy": MyPolicy()})
    reconciler.apply(desired)
    assert ("start", "demo-web-1") in engine.calls

This module is also a pytest plugin (the ``pytest11`` entry point), so the
fixtures below (``driver_context``, ``unique_name``, ``unreachable_context``,
``memory_engine``) are available in any test once reconciler is installed. It
imports no Docker: an in-memory driver is tested without an engine.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
import threading
import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Iterator, Mapping

import pytest

from .defaults import ARCHIVE_DRIVER, DEFAULT_DRIVERS
from .drivers import (
    DriverContext,
    DriverRegistry,
    Drivers,
    NetworkDriver,
    ObjectDriver,
    PluginDrivers,
    RegistryDriver,
    RuntimeDriver,
    StorageDriver,
    owned_plus_wanted,
)
from .errors import ConflictError, DriverError, PermanentError, TemporaryError
from .hookspecs import hookimpl
from .labels import STACK as STACK_LABEL, is_owned
from .model import ContainerSpec, ImageSpec, Kind, LiveObject, NetworkSpec, VolumeSpec

if TYPE_CHECKING:
    from .reconcile import Reconciler

__all__ = [
    "ContractHarness",
    "MemoryEngine",
    "MemoryNetworkDriver",
    "MemoryRegistryDriver",
    "MemoryRuntimeDriver",
    "MemoryStorageDriver",
    "NetworkDriverContract",
    "STACK_PREFIX",
    "StorageDriverContract",
    "assert_maps_errors",
    "driver_context",
    "make_reconciler",
    "memory_engine",
    "spec_config",
    "unique_name",
    "unreachable_context",
    "with_hash",
]

STACK_PREFIX = "contract-"


# --- hashes and labels, as the core computes them -------------------------------------------


def spec_config(spec: NetworkSpec | VolumeSpec) -> dict[str, Any]:
    """The normalized config the core hashes for a network or volume (``spec.config()``)."""
    if not isinstance(spec, (NetworkSpec, VolumeSpec)):
        raise TypeError(f"with_hash takes a NetworkSpec or VolumeSpec, not {type(spec).__name__}")
    return spec.config()


def with_hash(spec: Any) -> Any:
    """``spec`` with ``config_hash`` filled in from its fields, exactly as a loaded spec would have it."""
    from .hashing import config_hash

    return dataclasses.replace(spec, config_hash=config_hash(spec_config(spec)))


def _object_labels(stack: str, kind: Kind, spec: Any) -> dict[str, str]:
    from .labels import object_labels

    return object_labels(stack, kind, spec)


# --- the error contract ---------------------------------------------------------------------


def assert_maps_errors(call: Callable[[], Any], expected_type: type[DriverError]) -> DriverError:
    """Call ``call`` and check it fails with ``expected_type``; return the error.

    ``expected_type`` is ``TemporaryError`` (the core retries) or
    ``PermanentError`` (the change fails, its dependents are skipped), or a
    subclass. A raw backend exception leaking out, the other kind of error, or
    no error at all fails the test with a message saying which.
    """
    __tracebackhide__ = True
    if not (isinstance(expected_type, type) and issubclass(expected_type, (TemporaryError, PermanentError))):
        raise TypeError("expected_type must be TemporaryError, PermanentError or a subclass of one")
    try:
        call()
    except expected_type as exc:
        if not str(exc).strip():
            pytest.fail(f"{type(exc).__name__} carries no message: say what failed")
        return exc
    except (TemporaryError, PermanentError) as exc:
        pytest.fail(f"expected {expected_type.__name__}, the driver raised {type(exc).__name__}: {exc}")
    except DriverError as exc:
        pytest.fail(f"the driver raised a bare {type(exc).__name__} ({exc}): "
                    "raise TemporaryError (worth retrying) or PermanentError (retrying will not help)")
    except Exception as exc:
        pytest.fail(f"the driver leaked {type(exc).__module__}.{type(exc).__qualname__} ({exc}): "
                    f"map backend errors onto TemporaryError or PermanentError")
    pytest.fail(f"expected {expected_type.__name__}, but the call succeeded")


# --- fixtures, available to every test through the pytest11 entry point -----------------------


@pytest.fixture
def driver_context() -> DriverContext:
    """A ``DriverContext`` for a fresh stack ``contract-<hex>``; engine from ``DOCKER_HOST``, else the default."""
    return DriverContext(stack=STACK_PREFIX + uuid.uuid4().hex[:10], engine_url=os.environ.get("DOCKER_HOST") or None)


@pytest.fixture
def unique_name(driver_context: DriverContext) -> str:
    """An object name no other test uses, starting with the stack's name (so leftovers are recognisable)."""
    return f"{driver_context.stack}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def unreachable_context(driver_context: DriverContext) -> DriverContext:
    """Like ``driver_context`` but with ``engine_url`` a local TCP port where nothing listens."""
    with socket.socket() as probe:  # a port the kernel just handed out and nobody has taken since
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return DriverContext(stack=driver_context.stack, engine_url=f"tcp://127.0.0.1:{port}")


# --- the contract -------------------------------------------------------------------------------


class ContractHarness:
    """One test's view of the driver: creates through it, observes through it, cleans up after it."""

    def __init__(self, driver: ObjectDriver, context: DriverContext, kind: Kind) -> None:
        self.driver = driver
        self.context = context
        self.kind = kind
        self.stack = context.stack
        self.names: set[str] = set()

    def labels(self, spec: Any, *, stack: str | None = None) -> dict[str, str]:
        """The labels the core gives ``spec`` in ``stack`` (default: this test's stack)."""
        return _object_labels(stack or self.stack, self.kind, spec)

    def create(self, spec: Any, labels: Mapping[str, str] | None = None) -> None:
        """``driver.create`` with the core's labels (or ``labels``); remembered for clean-up."""
        self.names.add(spec.name)
        self.driver.create(spec, self.labels(spec) if labels is None else dict(labels))

    def observe(self, wanted: Mapping[str, str] | Iterable[Any] = (), *, stack: str | None = None) -> dict[str, LiveObject]:
        """``driver.observe`` as a dict by name; ``wanted`` is a mapping or specs. Checks the result's shape."""
        if not isinstance(wanted, Mapping):
            wanted = {spec.name: spec.config_hash for spec in wanted}
        self.context.pass_cache.clear()  # a new observe pass, as the core starts one
        found = self.driver.observe(stack or self.stack, dict(wanted))
        assert isinstance(found, list), f"observe must return a list of LiveObject, not {type(found).__name__}"
        out: dict[str, LiveObject] = {}
        for live in found:
            assert isinstance(live, LiveObject), f"observe returned {live!r}, not a LiveObject"
            assert live.kind is self.kind, f"observe returned {live.name!r} of kind {live.kind}, not {self.kind}"
            assert live.name not in out, f"observe reported {live.name!r} twice: one object per name"
            out[live.name] = live
        return out

    def observe_one(self, spec: Any, *, stack: str | None = None) -> LiveObject:
        """The object named ``spec.name``, observed as the core would (its name wanted)."""
        found = self.observe([spec], stack=stack)
        assert spec.name in found, f"observe with {spec.name!r} wanted did not report it (got {sorted(found)})"
        return found[spec.name]

    def cleanup(self) -> None:
        """Delete everything this stack owns and everything the test created, owned or not."""
        if not self.names:
            return
        found = self.observe({name: "" for name in self.names})
        for live in found.values():
            if live.owned or live.name in self.names:
                self.driver.delete(live)
        for name in self.names - set(found):
            # Not reported: most likely gone, unless observe is what is broken. Delete by
            # name as the core can; a failure here is the deletion test's to report.
            try:
                self.driver.delete(LiveObject(kind=self.kind, name=name, id=name))
            except Exception:
                pass


class _ObjectDriverContract:
    """The checks every network and storage driver must pass. Subclass a concrete contract below."""

    kind: ClassVar[Kind]
    role: ClassVar[type[ObjectDriver]]
    driver_name: ClassVar[str] = ""  # the ``driver:`` a spec names; used by the default ``spec`` fixture

    # -- what a subclass provides --------------------------------------------------------------

    @pytest.fixture
    def driver(self, driver_context: DriverContext) -> ObjectDriver:
        """The driver under test, built from ``driver_context``. Override this fixture."""
        pytest.fail(f"{type(self).__name__} must define a 'driver' fixture returning the driver under test")

    def changed(self, spec: Any) -> Any:
        """``spec`` with a different config (a different hash). Default: one more user label."""
        return dataclasses.replace(spec, labels=tuple(sorted({**dict(spec.labels), "contract.changed": "yes"}.items())))

    def invalid(self, spec: Any) -> Any | None:
        """``spec`` with a config the backend refuses (expects ``PermanentError``); None skips that test."""
        return None

    @pytest.fixture
    def unreachable_driver(self, unreachable_context: DriverContext) -> ObjectDriver | None:
        """The driver pointed at a backend that does not answer (expects ``TemporaryError``); None skips."""
        return None

    # -- machinery -------------------------------------------------------------------------------

    @pytest.fixture
    def harness(self, driver: ObjectDriver, driver_context: DriverContext):
        """Creates and observes through ``driver``; removes what the test made even when it fails."""
        harness = ContractHarness(driver, driver_context, self.kind)
        yield harness
        harness.cleanup()

    @pytest.fixture
    def desired(self, spec: Any) -> Any:
        """``spec`` with its config hash filled in, as the core hands it to ``create``."""
        return with_hash(spec)

    # -- the contract ----------------------------------------------------------------------------

    def test_driver_has_its_role(self, driver: ObjectDriver) -> None:
        assert isinstance(driver, self.role), f"{type(driver).__name__} must subclass {self.role.__name__}"
        assert driver.kind is self.kind, f"{type(driver).__name__}.kind must be {self.kind}"

    def test_a_new_stack_owns_nothing(self, harness: ContractHarness, desired: Any) -> None:
        assert harness.observe() == {}, "a stack nobody created must own nothing"
        assert harness.observe([desired]) == {}, "a wanted name that does not exist must not be reported"

    def test_create_then_observe_shows_it_owned_and_hashed(self, harness: ContractHarness, desired: Any) -> None:
        harness.create(desired)
        listed = harness.observe()
        assert desired.name in listed, "observe must list what the stack owns by its labels, even when not wanted"
        live = harness.observe_one(desired)
        assert live.owned, "an object carrying the stack's label must be reported with owned=True"
        assert live.id, "a live object needs an id (the core deletes by it)"
        assert live.labels.get(STACK_LABEL) == harness.stack, "observe must report the stack label"
        assert live.config_hash == desired.config_hash, "observe must report the config hash it was created with"
        given = harness.labels(desired)
        lost = {k: v for k, v in given.items() if live.labels.get(k) != v}
        assert not lost, f"observe must report every label given to create; lost or changed: {sorted(lost)}"

    def test_observe_lists_only_its_own_stack(self, harness: ContractHarness, desired: Any) -> None:
        harness.create(desired)
        other = harness.observe(stack=harness.stack + "-other")
        assert desired.name not in other, "another stack's observe must not list this stack's object"

    def test_create_twice_leaves_one_object(self, harness: ContractHarness, desired: Any) -> None:
        harness.create(desired)
        try:
            harness.create(desired)  # a retry after a lost answer: succeeding is best, a driver error is allowed
        except DriverError:
            pass
        found = harness.observe([desired])
        assert list(found) == [desired.name], f"expected exactly one {desired.name!r}, got {sorted(found)}"
        assert found[desired.name].owned and found[desired.name].config_hash == desired.config_hash

    def test_unchanged_object_observes_the_same_and_writes_nothing(self, harness: ContractHarness,
                                                                   desired: Any) -> None:
        harness.create(desired)
        first = harness.observe_one(desired)
        writes = harness.context.stats["write"]
        second = harness.observe_one(desired)
        assert (second.id, second.config_hash) == (first.id, first.config_hash), "observe must be stable"
        assert harness.context.stats["write"] == writes, "observe must not write to the backend"

    def test_change_is_delete_then_create(self, harness: ContractHarness, desired: Any) -> None:
        new = with_hash(self.changed(desired))
        assert new.name == desired.name, "changed() must keep the name"
        assert new.config_hash != desired.config_hash, "changed() must change the config (its hash is the same)"
        harness.create(desired)
        harness.driver.delete(harness.observe_one(desired))
        harness.create(new)
        live = harness.observe_one(new)
        assert live.owned and live.config_hash == new.config_hash, "observe must show the new config hash"

    def test_delete_then_observe_empty(self, harness: ContractHarness, desired: Any) -> None:
        harness.create(desired)
        harness.driver.delete(harness.observe_one(desired))
        assert desired.name not in harness.observe(), "a deleted object must not be listed"
        assert desired.name not in harness.observe([desired]), "a deleted object must not be reported when wanted"

    def test_deleting_what_is_gone_is_a_no_op(self, harness: ContractHarness, desired: Any) -> None:
        harness.create(desired)
        live = harness.observe_one(desired)
        harness.driver.delete(live)
        harness.driver.delete(live)
        # The core deletes by the name when it has no id: that too must be quiet.
        harness.driver.delete(LiveObject(kind=self.kind, name=desired.name, id=desired.name))

    def test_unowned_object_with_a_wanted_name_is_reported_not_owned(self, harness: ContractHarness,
                                                                     desired: Any) -> None:
        harness.create(desired, labels={})  # made by hand: no labels at all
        assert desired.name not in harness.observe(), "an object without the stack's label is not the stack's"
        live = harness.observe_one(desired)
        assert not live.owned, "an object without the stack's label must be reported with owned=False"

    def test_another_stacks_object_is_not_owned(self, harness: ContractHarness, desired: Any) -> None:
        harness.create(desired, labels=harness.labels(desired, stack=harness.stack + "-other"))
        assert desired.name not in harness.observe(), "another stack's object must not be listed as this stack's"
        assert not harness.observe_one(desired).owned, "another stack's object must be reported with owned=False"

    def test_invalid_config_is_a_permanent_error(self, harness: ContractHarness, desired: Any) -> None:
        bad = self.invalid(desired)
        if bad is None:
            pytest.skip("define invalid(spec) to check that a refused config raises PermanentError")
        assert_maps_errors(lambda: harness.create(with_hash(bad)), PermanentError)

    def test_unreachable_backend_is_a_temporary_error(self, unreachable_driver: ObjectDriver | None,
                                                      driver_context: DriverContext) -> None:
        if unreachable_driver is None:
            pytest.skip("define the unreachable_driver fixture to check that an absent backend raises TemporaryError")
        assert_maps_errors(lambda: unreachable_driver.observe(driver_context.stack, {}), TemporaryError)


class StorageDriverContract(_ObjectDriverContract):
    """The contract of a storage (volume) driver. Subclass it as ``Test...`` and give it a ``driver``."""

    kind = Kind.VOLUME
    role = StorageDriver

    @pytest.fixture
    def spec(self, unique_name: str) -> VolumeSpec:
        if not self.driver_name:
            pytest.fail(f"{type(self).__name__}: set driver_name or define a 'spec' fixture")
        return VolumeSpec(key="data", name=unique_name, driver=self.driver_name)


class NetworkDriverContract(_ObjectDriverContract):
    """The contract of a network driver. Subclass it as ``Test...`` and give it a ``driver``."""

    kind = Kind.NETWORK
    role = NetworkDriver

    @pytest.fixture
    def spec(self, unique_name: str) -> NetworkSpec:
        if not self.driver_name:
            pytest.fail(f"{type(self).__name__}: set driver_name or define a 'spec' fixture")
        return NetworkSpec(key="net", name=unique_name, driver=self.driver_name)


# --- one engine in memory, for tests of the core, hooks and policies --------------------------


@dataclasses.dataclass
class _Fault:
    call: tuple  # a journal entry, or its first items
    error: BaseException
    times: int | None  # None: every matching call


class MemoryEngine:
    """An engine held in memory, with a driver for each role: the core runs against it unchanged.

    Objects are ``LiveObject`` records by name (images by reference) in
    ``images``, ``networks``, ``volumes`` and ``containers``; ``owned`` is
    worked out per observe, from the labels. ``add`` puts objects there as a
    user or another stack would have made them.

    Every driver call is journaled in ``calls`` before it takes effect:
    ``("observe", kind)``; ``("pull" | "build" | "push", ref)``;
    ``("create-network" | "delete-network" | "create-volume" | "delete-volume", name)``;
    ``("create" | "start" | "delete", name)`` and ``("wait", name, condition)``
    for containers. ``fail`` makes chosen calls raise.

    Where the core relies on the engine, it behaves as the engine does: a name
    that exists cannot be created again (``ConflictError``); a container needs
    its image and networks; a network in use cannot be removed; deleting what
    is gone is quiet; pulling a reference twice gives the same image id.
    Nothing runs: ``start`` makes a container ``running`` (and ``healthy``
    when it has a healthcheck) at once, and ``wait`` answers at once. An option
    with an empty value is refused, the invalid config of the contract kit.
    """

    def __init__(self) -> None:
        self.images: dict[str, LiveObject] = {}
        self.networks: dict[str, LiveObject] = {}
        self.volumes: dict[str, LiveObject] = {}
        self.containers: dict[str, LiveObject] = {}
        #: Every driver call, in the order made (see the class docstring).
        self.calls: list[tuple] = []
        self._faults: list[_Fault] = []
        self._lock = threading.RLock()  # apply calls drivers from worker threads
        self._factories = {cls.kind: (lambda context, cls=cls: cls(self, context)) for cls in _MEMORY_DRIVERS}

    def of(self, kind: Kind) -> dict[str, LiveObject]:
        """The records of one kind, by name."""
        return {Kind.IMAGE: self.images, Kind.NETWORK: self.networks,
                Kind.VOLUME: self.volumes, Kind.CONTAINER: self.containers}[kind]

    def add(self, *objects: LiveObject) -> None:
        """Put objects in the engine as made by hand or by another tool; not journaled."""
        with self._lock:
            for obj in objects:
                self.of(obj.kind)[obj.name] = obj

    def fail(self, call: tuple | str, error: BaseException, *, times: int | None = 1) -> None:
        """Make the next ``times`` calls matching ``call`` raise ``error`` (``times=None``: every one).

        ``call`` is a journal entry or its first items (``("wait", "demo-db-1")``),
        or a verb alone (``"observe"``). A failed call is still journaled, so a
        retried call shows once per attempt. Faults added first are used first.
        """
        with self._lock:
            self._faults.append(_Fault((call,) if isinstance(call, str) else tuple(call), error, times))

    def register(self, registry: PluginDrivers) -> None:
        """Add the memory drivers under the default driver names (images also as ``archive``)."""
        images = self._factories[Kind.IMAGE]
        registry.add_registry_driver(DEFAULT_DRIVERS["images"], images)
        registry.add_registry_driver(ARCHIVE_DRIVER, images)
        registry.add_network_driver(DEFAULT_DRIVERS["networks"], self._factories[Kind.NETWORK])
        registry.add_storage_driver(DEFAULT_DRIVERS["volumes"], self._factories[Kind.VOLUME])
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

    @contextmanager
    def _call(self, *call: Any) -> Iterator[None]:
        """Journal ``call``, raise its injected fault if any, and hold the engine for its body."""
        with self._lock:
            self.calls.append(call)
            for fault in self._faults:
                if call[:len(fault.call)] == fault.call and fault.times != 0:
                    if fault.times is not None:
                        fault.times -= 1
                    raise fault.error
            yield


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class _MemoryDriver:
    """What the memory drivers share: observe, delete, and writing records."""

    kind: ClassVar[Kind]
    noun: ClassVar[str]  # journal suffix: "create-network"; containers have none

    def __init__(self, engine: MemoryEngine, context: DriverContext) -> None:
        self.engine = engine
        self.context = context

    @property
    def records(self) -> dict[str, LiveObject]:
        return self.engine.of(self.kind)

    def observe(self, stack: str, wanted: Mapping[str, str]) -> list[LiveObject]:
        """The stack's own records plus any under a wanted name, ``owned`` set from the labels."""
        with self.engine._call("observe", self.kind.value):
            records = self.records
            found = owned_plus_wanted([r for r in records.values() if is_owned(r.labels, stack)], wanted,
                                      lambda names: [records[n] for n in names if n in records], lambda r: r.name)
            self.context.stats["read"] += 1
        return [dataclasses.replace(r, owned=is_owned(r.labels, stack)) for _, r in sorted(found.items())]

    def delete(self, live: LiveObject) -> None:
        """Remove the record named ``live.name`` (or with its id); one already gone is not an error."""
        with self.engine._call("delete" + self.noun, live.name):
            name = next((n for n, r in self.records.items() if live.name == n or live.id == r.id), None)
            if name is not None:
                self._check_removable(name)
                del self.records[name]
                self.context.stats["write"] += 1

    def _check_removable(self, name: str) -> None:
        pass

    def _get(self, name: str) -> LiveObject:
        if name not in self.records:
            raise PermanentError(f"no such {self.kind.value}: {name}")
        return self.records[name]

    def _put(self, record: LiveObject, *, new: bool = False) -> None:
        if new and record.name in self.records:
            raise ConflictError(f"{self.kind.value} {record.name} already exists")
        self.records[record.name] = record
        self.context.stats["write"] += 1


class _MemoryObjectDriver(_MemoryDriver):
    def create(self, spec: NetworkSpec | VolumeSpec, labels: Mapping[str, str]) -> None:
        """Store ``spec.name`` with ``labels``; an option with an empty value is a ``PermanentError``."""
        with self.engine._call("create" + self.noun, spec.name):
            empty = [key for key, value in spec.options if not value]
            if empty:
                raise PermanentError(f"create {self.kind.value} {spec.name}: option {empty[0]} has no value")
            object_id = spec.name if self.kind is Kind.VOLUME else uuid.uuid4().hex  # volumes have no id
            self._put(LiveObject(self.kind, spec.name, object_id, dict(labels)), new=True)


class MemoryNetworkDriver(_MemoryObjectDriver, NetworkDriver):
    """The network driver of a ``MemoryEngine``."""

    noun = "-network"

    def _check_removable(self, name: str) -> None:
        users = sorted(c.name for c in self.engine.containers.values() if name in c.details.get("networks", ()))
        if users:
            raise PermanentError(f"network {name} has active endpoints: {', '.join(users)}")


class MemoryStorageDriver(_MemoryObjectDriver, StorageDriver):
    """The storage (volume) driver of a ``MemoryEngine``."""

    noun = "-volume"


class MemoryRegistryDriver(_MemoryDriver, RegistryDriver):
    """The registry (image) driver of a ``MemoryEngine``: pulls, loads archives, builds and pushes."""

    def pull(self, spec: ImageSpec) -> None:
        """Make ``spec.ref`` present: an archive's image id, else an id derived from the reference."""
        with self.engine._call("pull", spec.ref):
            image_id = spec.archive_image_id or _digest(spec.ref)
            self._put(LiveObject(Kind.IMAGE, spec.ref, image_id, image_id=image_id))

    def build(self, spec: ImageSpec, labels: Mapping[str, str]) -> None:
        """Make ``spec.ref`` present with ``labels``, its id derived from the build hash."""
        with self.engine._call("build", spec.ref):
            image_id = _digest(spec.build_hash or spec.ref)
            self._put(LiveObject(Kind.IMAGE, spec.ref, image_id, dict(labels), image_id=image_id))

    def push(self, spec: ImageSpec) -> None:
        """Record a ``repo_digests`` entry for the reference's repository, as the engine does on a push."""
        with self.engine._call("push", spec.ref):
            image = self._get(spec.ref)
            name, sep, tag = spec.ref.rpartition(":")  # host:port/name:tag → host:port/name
            repository = name if sep and "/" not in tag else spec.ref
            digests = (*image.details.get("repo_digests", ()), f"{repository}@{_digest(image.id)}")
            self._put(dataclasses.replace(image, details={**image.details, "repo_digests": digests}))

    def delete(self, live: LiveObject) -> None:
        """Images are shared caches: the core never deletes them."""


class MemoryRuntimeDriver(_MemoryDriver, RuntimeDriver):
    """The runtime (container) driver of a ``MemoryEngine``. Nothing runs; states change at once."""

    noun = ""

    def create(self, spec: ContainerSpec, labels: Mapping[str, str]) -> None:
        """Store a ``created`` container; its image and networks must exist."""
        with self.engine._call("create", spec.name):
            if spec.image_ref not in self.engine.images:
                raise PermanentError(f"create container {spec.name}: no such image: {spec.image_ref}")
            networks = [name for name, _ in spec.networks]
            for network in networks:
                if network not in self.engine.networks:
                    raise PermanentError(f"create container {spec.name}: no such network: {network}")
            checked = spec.healthcheck is not None and spec.healthcheck.test != ("NONE",)
            details = {"networks": sorted(networks) or [spec.network_mode or "bridge"],  # the engine's default
                       "volumes": sorted(m.source for m in spec.mounts if m.type == "volume")}
            self._put(LiveObject(Kind.CONTAINER, spec.name, uuid.uuid4().hex, dict(labels), state="created",
                                 health="starting" if checked else "",
                                 image_id=self.engine.images[spec.image_ref].image_id, details=details), new=True)

    def start(self, name: str) -> None:
        """Make the container ``running``, and ``healthy`` if it has a healthcheck."""
        with self.engine._call("start", name):
            container = self._get(name)
            self._put(dataclasses.replace(container, state="running", health="healthy" if container.health else ""))

    def wait(self, name: str, condition: str, *, timeout: float) -> None:
        """Return if the container is ``started``, ``healthy`` or ``completed`` now; else ``PermanentError``."""
        with self.engine._call("wait", name, condition):
            container = self._get(name)
            met = {"started": container.state != "created", "healthy": container.health == "healthy",
                   "completed": container.state == "exited" and container.exit_code == 0}.get(condition, False)
            if not met:
                raise PermanentError(f"container {name} is {container.state or 'unknown'}"
                                     f"{' and ' + container.health if container.health else ''}, not {condition}")


_MEMORY_DRIVERS = (MemoryRegistryDriver, MemoryNetworkDriver, MemoryStorageDriver, MemoryRuntimeDriver)


def make_reconciler(engine: MemoryEngine, *, plugins: Mapping[str, object] | None = None) -> Reconciler:
    """A ``Reconciler`` whose only plugins are ``engine`` and ``plugins`` (by name); nothing installed loads.

    Its stack lock is keyed on this engine, so a test never waits for a real
    run, or for another engine's test, on the same stack name.
    """
    import pluggy

    from . import hookspecs
    from .reconcile import Reconciler

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(engine, name="memory-engine")
    for name, plugin in (plugins or {}).items():
        pm.register(plugin, name=name)
    pm.check_pending()  # a misspelled hook fails here, as it does in make_plugin_manager
    return Reconciler(engine_url=f"memory://{id(engine):x}", plugin_manager=pm)


@pytest.fixture
def memory_engine() -> MemoryEngine:
    """A fresh, empty ``MemoryEngine``."""
    return MemoryEngine()
