"""The driver contract as tests: what our own drivers pass, ready for a plugin author to subclass.

A driver is only useful if it behaves the way the planner assumes: it lists
what a stack owns by its labels, reports the config hash it was given, tolerates
deleting what is gone, and turns backend failures into ``TemporaryError`` or
``PermanentError``. Rather than describe that in prose only, this module ships
the checks (see ``reconciler.testing`` for how a plugin author uses them; the
storage role's, with its snapshots, are in ``storage_contract.py``), the
``ContractHarness`` they create and observe through, and the helpers a test of
a driver needs: ``with_hash`` and ``assert_maps_errors``.
"""
from __future__ import annotations

import dataclasses
import queue
import threading
import time
from typing import Any, Callable, ClassVar, Iterable, Mapping

import pytest

from ..drivers import DriverContext, NetworkDriver, ObjectDriver
from ..errors import DriverError, PermanentError, TemporaryError
from ..hashing import config_hash
from ..labels import KIND as KIND_LABEL, STACK as STACK_LABEL, object_labels
from ..model import ContainerSpec, EngineEvent, ImageSpec, Kind, LiveObject, NetworkSpec, VolumeSpec

__all__ = [
    "ContractHarness",
    "NetworkDriverContract",
    "STACK_PREFIX",
    "assert_maps_errors",
    "spec_config",
    "with_hash",
]

#: Every stack a contract test makes is named ``contract-<hex>``, so leftovers are recognisable.
STACK_PREFIX = "contract-"


# --- hashes and labels, as the core computes them -------------------------------------------


def spec_config(spec: NetworkSpec | VolumeSpec | ContainerSpec) -> dict[str, Any]:
    """The normalized config the core hashes for a network, volume or container (``spec.config()``)."""
    if not isinstance(spec, (NetworkSpec, VolumeSpec, ContainerSpec)):
        raise TypeError(f"spec_config takes a NetworkSpec, VolumeSpec or ContainerSpec, not {type(spec).__name__}")
    return spec.config()


def with_hash(spec: Any) -> Any:
    """``spec`` with ``config_hash`` (and a container's ``field_hashes``) filled in, exactly as a loaded spec would
    have them. Works for every kind: an image's hash is a build's ``build_hash``, else empty."""
    from ..spec.containerspecs import with_container_hashes

    if isinstance(spec, ImageSpec):
        return dataclasses.replace(spec, config_hash=spec.build_hash if spec.is_build else "")
    if isinstance(spec, ContainerSpec):
        return with_container_hashes(spec)
    return dataclasses.replace(spec, config_hash=config_hash(spec_config(spec)))


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


# --- the contract -------------------------------------------------------------------------------


class ContractHarness:
    """One test's view of the driver: creates through it, observes through it, cleans up after it."""

    def __init__(self, driver: ObjectDriver, context: DriverContext, kind: Kind) -> None:
        self.driver = driver
        self.context = context
        self.kind = kind
        self.stack = context.stack
        self.names: set[str] = set()
        self._specs: dict[str, Any] = {}  # what ``create`` was given, by name: the clean-up's ``wanted``

    def labels(self, spec: Any, *, stack: str | None = None) -> dict[str, str]:
        """The labels the core gives ``spec`` in ``stack`` (default: this test's stack)."""
        return object_labels(stack or self.stack, self.kind, spec)

    def create(self, spec: Any, labels: Mapping[str, str] | None = None) -> Any:
        """``driver.create`` with the core's labels (or ``labels``), remembered for clean-up; returns its answer."""
        self.names.add(spec.name)
        self._specs[spec.name] = spec
        return self.driver.create(spec, self.labels(spec) if labels is None else dict(labels))

    def observe(self, wanted: Iterable[Any] = (), *, stack: str | None = None) -> dict[str, LiveObject]:
        """``driver.observe`` as a dict by name, ``wanted`` given as the core does: these specs by name.

        Checks the result's shape.
        """
        wanted = {_name(spec): spec for spec in wanted}
        self.context.pass_cache.clear()  # a new observe pass, as the core starts one
        found = self.driver.observe(stack or self.stack, wanted)
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
        name = _name(spec)
        assert name in found, f"observe with {name!r} wanted did not report it (got {sorted(found)})"
        return found[name]

    def cleanup(self) -> None:
        """Delete everything this stack owns and everything the test created, owned or not.

        Works when the driver under test is broken: an ``observe`` that raises
        only means each name is deleted as the core can, by name, and a delete
        that raises does not stop the others (the test itself reports the bug).
        """
        if not self.names:
            return
        try:
            found = self.observe(self._specs.values())
        except Exception:  # a broken observe (or its failed shape check) must not leak objects
            found = {}
        for live in found.values():
            if live.owned or live.name in self.names:
                self._quietly(live)
        for name in self.names - set(found):
            # Not reported: most likely gone, unless observe is what is broken. Delete by
            # name as the core can; a failure here is the deletion test's to report.
            self._quietly(LiveObject(kind=self.kind, name=name, id=name))

    def _quietly(self, live: LiveObject) -> None:
        try:
            self.driver.delete(live)
        except Exception:
            pass


class _Stop(threading.Event):
    """The ``stop`` a contract check gives ``engine_events``: it remembers ``stream_opened``."""

    def __init__(self) -> None:
        super().__init__()
        self.was_opened = threading.Event()

    def opened(self) -> None:
        self.was_opened.set()


def _drain(driver: ObjectDriver, stop: _Stop, seen: queue.SimpleQueue) -> None:
    """Put each event of ``driver.engine_events(stop)`` on ``seen``, then what ended it (None: it returned)."""
    try:
        for event in driver.engine_events(stop):
            seen.put(event)
        seen.put(None)
    except BaseException as exc:  # handed to the test, which reports it
        seen.put(exc)


def _first_about(seen: queue.SimpleQueue, kind: Kind, name: str, timeout: float = 15.0) -> EngineEvent:
    """The first event about the object ``kind``/``name``, checking that every event before it is one."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            event = seen.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            pytest.fail(f"engine_events reported nothing about the new {kind.value} {name!r} within {timeout:g}s")
        if not isinstance(event, EngineEvent):
            raise AssertionError(f"engine_events must yield EngineEvent, then return only on stop; got {event!r}")
        if event.kind is kind and event.name == name:
            return event


def _name(spec: Any) -> str:
    return spec.ref if isinstance(spec, ImageSpec) else spec.name


class _DriverContract:
    """What the contract of every role shares: the fixtures a subclass overrides, and the role check."""

    kind: ClassVar[Kind]
    role: ClassVar[type[ObjectDriver]]

    @pytest.fixture
    def driver(self, driver_context: DriverContext) -> ObjectDriver:
        """The driver under test, built from ``driver_context``. Override this fixture."""
        pytest.fail(f"{type(self).__name__} must define a 'driver' fixture returning the driver under test")

    @pytest.fixture
    def unreachable_driver(self, unreachable_context: DriverContext) -> ObjectDriver | None:
        """The driver pointed at a backend that does not answer (expects ``TemporaryError``); None skips."""
        return None

    def test_driver_has_its_role(self, driver: ObjectDriver) -> None:
        assert isinstance(driver, self.role), f"{type(driver).__name__} must subclass {self.role.__name__}"
        assert driver.kind is self.kind, f"{type(driver).__name__}.kind must be {self.kind}"


class _OwnedObjectContract(_DriverContract):
    """What the contract of every driver whose objects a stack owns by their labels shares.

    Networks, volumes and containers: each test creates through the driver, and
    the harness removes what it made. Images are shared caches, never deleted.
    """

    #: What the messages call one of the driver's objects.
    noun: ClassVar[str] = "object"

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

    def test_a_new_stack_owns_nothing(self, harness: ContractHarness, desired: Any) -> None:
        assert harness.observe() == {}, "a stack nobody created must own nothing"
        assert harness.observe([desired]) == {}, "a wanted name that does not exist must not be reported"

    def test_create_returns_the_id_observe_reports(self, harness: ContractHarness, desired: Any) -> None:
        created = harness.create(desired)
        assert isinstance(created, str) and created, \
            f"create must return the new {self.noun}'s id (a non-empty str), not {created!r}: the core records it"
        assert harness.observe_one(desired).id == created, "create must return the id observe reports"

    def test_labels_naming_another_kind_claim_nothing(self, harness: ContractHarness, desired: Any) -> None:
        # As a container carries the labels of the image it was made from, and we label the images we build.
        harness.create(desired, {**harness.labels(desired), KIND_LABEL: Kind.IMAGE.value})
        assert desired.name not in harness.observe(), \
            f"labels whose kind names another kind claim nothing: this {self.noun} must not be listed as the stack's"
        wanted = harness.observe([desired]).get(desired.name)  # reporting it is another test's
        assert wanted is None or not wanted.owned, \
            f"labels whose kind names another kind claim nothing: this {self.noun} is not owned when wanted"

    def test_unreachable_backend_is_a_temporary_error(self, unreachable_driver: ObjectDriver | None,
                                                      driver_context: DriverContext) -> None:
        if unreachable_driver is None:
            pytest.skip("define the unreachable_driver fixture to check that an absent backend raises TemporaryError")
        assert_maps_errors(lambda: unreachable_driver.observe(driver_context.stack, {}), TemporaryError)

    def test_engine_events_opens_reports_a_created_object_and_ends_on_stop(self, driver: ObjectDriver,
                                                                           harness: ContractHarness,
                                                                           desired: Any) -> None:
        if type(driver).engine_events is ObjectDriver.engine_events:
            return  # an optional capability: a driver that does not follow its backend engine-wide is not faulted
        stop, seen = _Stop(), queue.SimpleQueue()
        follower = threading.Thread(target=_drain, args=(driver, stop, seen), daemon=True)
        follower.start()
        try:
            assert stop.was_opened.wait(10), "engine_events must call stream_opened(stop) once its stream is open"
            harness.create(desired)
            event = _first_about(seen, self.kind, desired.name)
            assert event.action, "an EngineEvent must say what happened (its action)"
            assert event.stack in ("", harness.stack), \
                f"the event claims stack {event.stack!r}: only the stack its labels claim for its kind, or \"\""
        finally:
            stop.set()
            follower.join(timeout=15)
        assert not follower.is_alive(), "engine_events must return soon after stop is set"


class _ObjectDriverContract(_OwnedObjectContract):
    """The checks every network and storage driver must pass. Subclass a concrete contract below."""

    driver_name: ClassVar[str] = ""  # the ``driver:`` a spec names; used by the default ``spec`` fixture
    #: What the default ``spec`` fixture makes, and the key it gives it.
    spec_class: ClassVar[type]
    spec_key: ClassVar[str]

    # -- what a subclass provides --------------------------------------------------------------

    @pytest.fixture
    def spec(self, unique_name: str) -> Any:
        """A ``spec_class`` named ``unique_name`` for ``driver_name``. Override it for any other spec."""
        if not self.driver_name:
            pytest.fail(f"{type(self).__name__}: set driver_name or define a 'spec' fixture")
        return self.spec_class(key=self.spec_key, name=unique_name, driver=self.driver_name)

    def changed(self, spec: Any) -> Any:
        """``spec`` with a different config (a different hash). Default: one more user label."""
        return dataclasses.replace(spec, labels=tuple(sorted({**dict(spec.labels), "contract.changed": "yes"}.items())))

    def invalid(self, spec: Any) -> Any | None:
        """``spec`` with a config the backend refuses (expects ``PermanentError``); None skips that test."""
        return None

    # -- the contract ----------------------------------------------------------------------------

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


class NetworkDriverContract(_ObjectDriverContract):
    """The contract of a network driver. Subclass it as ``Test...`` and give it a ``driver``."""

    kind = Kind.NETWORK
    role = NetworkDriver
    spec_class = NetworkSpec
    spec_key = "net"
