"""The driver test kit, proved without an engine: in-memory drivers pass it, broken ones fail it."""
from __future__ import annotations

import textwrap
import uuid
from dataclasses import replace
from typing import Mapping

import pytest

from reconciler.drivers import DriverContext, NetworkDriver, StorageDriver
from reconciler.errors import DriverError, EngineUnreachable, PermanentError, TemporaryError
from reconciler.labels import STACK as STACK_LABEL
from reconciler.model import Kind, LiveObject
from reconciler.reconcile import load_desired
from reconciler.testing import NetworkDriverContract, StorageDriverContract, assert_maps_errors, with_hash

pytest_plugins = ["pytester"]


class MemoryBackend:
    """What a real backend holds: objects by name, each with an id and its labels."""

    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}


class MemoryObjects:
    """A driver over a ``MemoryBackend``; ``backend=None`` plays a backend that does not answer."""

    kind: Kind

    def __init__(self, context: DriverContext, backend: MemoryBackend | None) -> None:
        self.context = context
        self.backend = backend

    def _objects(self) -> dict[str, dict]:
        if self.backend is None:
            raise EngineUnreachable("the memory backend is down")
        return self.backend.objects

    def observe(self, stack: str, wanted: Mapping[str, str]) -> list[LiveObject]:
        objects = self._objects()
        self.context.stats["read"] += 1
        return [LiveObject(kind=self.kind, name=name, id=obj["id"], labels=dict(obj["labels"]),
                           owned=obj["labels"].get(STACK_LABEL) == stack)
                for name, obj in objects.items() if obj["labels"].get(STACK_LABEL) == stack or name in wanted]

    def create(self, spec, labels: Mapping[str, str]) -> None:
        objects = self._objects()
        if any(not value for _, value in spec.options):
            raise PermanentError(f"create {spec.name}: an option has an empty value")
        self.context.stats["write"] += 1
        objects.setdefault(spec.name, {"id": uuid.uuid4().hex, "labels": dict(labels)})

    def delete(self, live: LiveObject) -> None:
        self._objects().pop(live.name, None)


class MemoryVolumes(MemoryObjects, StorageDriver):
    pass


class MemoryNetworks(MemoryObjects, NetworkDriver):
    pass


class _MemoryFixtures:
    driver_name = "memory"
    driver_class: type[MemoryObjects]

    @pytest.fixture(autouse=True)
    def backend(self):
        backend = MemoryBackend()
        yield backend
        # Torn down after the kit's own clean-up: it must have removed everything.
        assert backend.objects == {}, f"the kit left objects behind: {sorted(backend.objects)}"

    @pytest.fixture
    def driver(self, driver_context, backend):
        return self.driver_class(driver_context, backend)

    @pytest.fixture
    def unreachable_driver(self, unreachable_context):
        return self.driver_class(unreachable_context, None)

    def invalid(self, spec):
        return replace(spec, options=(("size", ""),))


class TestMemoryVolumes(_MemoryFixtures, StorageDriverContract):
    driver_class = MemoryVolumes


class TestMemoryNetworks(_MemoryFixtures, NetworkDriverContract):
    driver_class = MemoryNetworks

    def changed(self, spec):
        return replace(spec, internal=not spec.internal)


# --- the kit's helpers ----------------------------------------------------------------------


def test_with_hash_matches_a_loaded_spec(tmp_path):
    (tmp_path / "stack.yaml").write_text(textwrap.dedent("""
        name: demo
        networks:
          back:
            driver: bridge
            options: {com.docker.network.bridge.name: br-x, mtu: "1400"}
            internal: true
            ipam: {subnet: 172.30.0.0/24, gateway: 172.30.0.1}
            labels: {team: core}
        volumes:
          data: {driver: ramdisk, options: {size: 8m}, labels: {keep: "yes"}}
          plain: {}
    """))
    desired = load_desired([tmp_path / "stack.yaml"], environ={})
    for spec in [*desired.networks.values(), *desired.volumes.values()]:
        assert spec.config_hash
        assert with_hash(replace(spec, config_hash="")) == spec


def test_with_hash_refuses_other_specs():
    with pytest.raises(TypeError):
        with_hash(object())


def test_assert_maps_errors_returns_the_expected_error():
    def fail():
        raise EngineUnreachable("no engine")

    assert isinstance(assert_maps_errors(fail, TemporaryError), EngineUnreachable)


@pytest.mark.parametrize("raised, expected, says", [
    (ValueError("boom"), PermanentError, "leaked builtins.ValueError"),
    (TemporaryError("later"), PermanentError, "expected PermanentError, the driver raised TemporaryError"),
    (DriverError("which?"), TemporaryError, "bare DriverError"),
    (PermanentError(""), PermanentError, "carries no message"),
    (None, TemporaryError, "the call succeeded"),
])
def test_assert_maps_errors_fails_a_driver_that_breaks_the_contract(raised, expected, says):
    def call():
        if raised is not None:
            raise raised

    with pytest.raises(pytest.fail.Exception, match=says):
        assert_maps_errors(call, expected)


def test_assert_maps_errors_takes_only_temporary_or_permanent():
    with pytest.raises(TypeError):
        assert_maps_errors(lambda: None, DriverError)


def test_fixtures_give_a_fresh_stack_and_names(driver_context, unique_name, unreachable_context):
    assert driver_context.stack.startswith("contract-")
    assert unique_name.startswith(driver_context.stack + "-")
    assert unreachable_context.stack == driver_context.stack
    assert unreachable_context.engine_url.startswith("tcp://127.0.0.1:")


# --- the kit catches broken drivers -----------------------------------------------------------

BROKEN = '''
from dataclasses import replace
import pytest
from reconciler.model import STACK_LABEL, LiveObject
from reconciler.testing import StorageDriverContract
from tests.unit.test_testing_kit import MemoryBackend, MemoryVolumes

BACKEND = MemoryBackend()


class ForgetsDeleted(MemoryVolumes):
    def delete(self, live):
        del self._objects()[live.name]


class BlindToStrangers(MemoryVolumes):
    def observe(self, stack, wanted):
        return [live for live in super().observe(stack, wanted) if live.owned]


class DropsLabels(MemoryVolumes):
    def create(self, spec, labels):
        super().create(spec, {STACK_LABEL: labels.get(STACK_LABEL, "")} if labels else {})


class LeaksErrors(MemoryVolumes):
    def create(self, spec, labels):
        if spec.options:
            raise ValueError("bad option")
        super().create(spec, labels)


class Base(StorageDriverContract):
    driver_name = "memory"
    broken = MemoryVolumes

    @pytest.fixture
    def driver(self, driver_context):
        return self.broken(driver_context, BACKEND)

    def invalid(self, spec):
        return replace(spec, options=(("size", ""),))


class TestForgetsDeleted(Base):
    broken = ForgetsDeleted


class TestBlindToStrangers(Base):
    broken = BlindToStrangers


class TestDropsLabels(Base):
    broken = DropsLabels


class TestLeaksErrors(Base):
    broken = LeaksErrors


def test_nothing_left_behind():
    assert BACKEND.objects == {}
'''


def test_the_kit_fails_broken_drivers_and_cleans_up_after_them(pytester):
    pytester.makepyfile(test_broken=BROKEN)
    reprec = pytester.inline_run("-p", "no:cacheprovider", "-p", "no:randomly")
    failed = {report.nodeid.split("::", 1)[1] for report in reprec.getfailures() if report.when == "call"}
    assert failed == {
        "TestForgetsDeleted::test_deleting_what_is_gone_is_a_no_op",
        "TestBlindToStrangers::test_unowned_object_with_a_wanted_name_is_reported_not_owned",
        "TestBlindToStrangers::test_another_stacks_object_is_not_owned",
        "TestDropsLabels::test_create_then_observe_shows_it_owned_and_hashed",
        "TestDropsLabels::test_create_twice_leaves_one_object",
        "TestDropsLabels::test_change_is_delete_then_create",
        "TestLeaksErrors::test_invalid_config_is_a_permanent_error",
    }
    assert [r for r in reprec.getfailures() if r.when != "call"] == [], "clean-up must not fail"
    passed, _, _ = reprec.listoutcomes()
    assert any(r.nodeid.endswith("test_nothing_left_behind") for r in passed), "the kit left objects behind"
