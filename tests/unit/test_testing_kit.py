"""The driver test kit, proved without Docker: the in-memory engine's drivers pass it, broken ones fail it."""
from __future__ import annotations

import textwrap
from dataclasses import replace

import pytest

from reconciler.errors import DriverError, EngineUnreachable, PermanentError, TemporaryError
from reconciler.reconcile import load_desired
from reconciler.testing import (
    MemoryEngine,
    MemoryNetworkDriver,
    MemoryStorageDriver,
    NetworkDriverContract,
    StorageDriverContract,
    assert_maps_errors,
    with_hash,
)

pytest_plugins = ["pytester"]


class _MemoryFixtures:
    """The contract kit pointed at the in-memory engine's drivers."""

    driver_name = "memory"
    driver_class: type[MemoryStorageDriver] | type[MemoryNetworkDriver]

    @pytest.fixture(autouse=True)
    def engine(self, memory_engine):
        yield memory_engine
        # Torn down after the kit's own clean-up: it must have removed everything.
        left = sorted(memory_engine.of(self.kind))
        assert left == [], f"the kit left objects behind: {left}"

    @pytest.fixture
    def driver(self, driver_context, engine):
        return self.driver_class(engine, driver_context)

    @pytest.fixture
    def unreachable_driver(self, unreachable_context):
        down = MemoryEngine()
        down.fail("observe", EngineUnreachable("the memory engine is down"), times=None)
        return self.driver_class(down, unreachable_context)

    def invalid(self, spec):
        return replace(spec, options=(("size", ""),))


class TestMemoryVolumes(_MemoryFixtures, StorageDriverContract):
    driver_class = MemoryStorageDriver

    @pytest.fixture
    def write_content(self, engine):
        return lambda volume, files: engine.volume_content.setdefault(volume, {}).update(files)

    @pytest.fixture
    def read_content(self, engine):
        return lambda volume: dict(engine.volume_content.get(volume, {}))


class TestMemoryNetworks(_MemoryFixtures, NetworkDriverContract):
    driver_class = MemoryNetworkDriver

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
from reconciler.labels import STACK
from reconciler.testing import MemoryEngine, MemoryStorageDriver, StorageDriverContract

ENGINE = MemoryEngine()


class ForgetsDeleted(MemoryStorageDriver):
    def delete(self, live):
        del self.engine.volumes[live.name]


class BlindToStrangers(MemoryStorageDriver):
    def observe(self, stack, wanted):
        return [live for live in super().observe(stack, wanted) if live.owned]


class DropsLabels(MemoryStorageDriver):
    def create(self, spec, labels):
        return super().create(spec, {STACK: labels.get(STACK, "")} if labels else {})


class LeaksErrors(MemoryStorageDriver):
    def create(self, spec, labels):
        if spec.options:
            raise ValueError("bad option")
        return super().create(spec, labels)


class Base(StorageDriverContract):
    driver_name = "memory"
    broken = MemoryStorageDriver

    @pytest.fixture
    def driver(self, driver_context):
        return self.broken(ENGINE, driver_context)

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
    assert ENGINE.volumes == {}
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


BROKEN_SNAPSHOTS = '''
import pytest
from reconciler.drivers import StorageDriver
from reconciler.testing import MemoryEngine, MemoryStorageDriver, StorageDriverContract

ENGINE = MemoryEngine()


class KeepsNewFiles(MemoryStorageDriver):
    def restore(self, volume, snapshot, *, progress=None):
        now = dict(self.engine.volume_content.get(volume, {}))
        restored = super().restore(volume, snapshot, progress=progress)
        self.engine.volume_content[volume] = {**now, **self.engine.volume_content[volume]}
        return restored


class ClaimsWithoutMethods(MemoryStorageDriver):
    list_snapshots = StorageDriver.list_snapshots


class Base(StorageDriverContract):
    driver_name = "memory"
    broken = MemoryStorageDriver

    @pytest.fixture
    def driver(self, driver_context):
        return self.broken(ENGINE, driver_context)

    @pytest.fixture
    def write_content(self):
        return lambda volume, files: ENGINE.volume_content.setdefault(volume, {}).update(files)

    @pytest.fixture
    def read_content(self):
        return lambda volume: dict(ENGINE.volume_content.get(volume, {}))


class TestKeepsNewFiles(Base):
    broken = KeepsNewFiles


class TestClaimsWithoutMethods(Base):
    broken = ClaimsWithoutMethods
'''


def test_the_kit_fails_drivers_whose_snapshots_do_not_give_the_content_back(pytester):
    pytester.makepyfile(test_broken_snapshots=BROKEN_SNAPSHOTS)
    reprec = pytester.inline_run("-p", "no:cacheprovider", "-p", "no:randomly")
    failed = {report.nodeid.split("::", 1)[1] for report in reprec.getfailures() if report.when == "call"}
    assert failed == {
        "TestKeepsNewFiles::test_a_restore_gives_the_snapshots_content_back",
        "TestKeepsNewFiles::test_a_restore_run_again_completes_and_changes_nothing_more",
        "TestClaimsWithoutMethods::test_snapshots_are_declared_as_implemented",
        "TestClaimsWithoutMethods::test_a_restore_gives_the_snapshots_content_back",
        "TestClaimsWithoutMethods::test_snapshots_list_oldest_first_per_volume",
    }
    assert [r for r in reprec.getfailures() if r.when != "call"] == [], "clean-up must not fail"


def test_a_driver_without_snapshots_passes_their_checks_with_nothing_to_check(pytester):
    """The capability is optional: a plugin's own contract run shows no skip for what it never offered."""
    pytester.makepyfile(test_plain="""
import pytest
from reconciler.drivers import StorageDriver
from reconciler.testing import MemoryEngine, MemoryStorageDriver, StorageDriverContract


class Plain(MemoryStorageDriver):
    takes_snapshots = False
    snapshot, restore = StorageDriver.snapshot, StorageDriver.restore
    list_snapshots, delete_snapshot = StorageDriver.list_snapshots, StorageDriver.delete_snapshot


class TestPlain(StorageDriverContract):
    driver_name = "memory"

    @pytest.fixture
    def driver(self, driver_context):
        return Plain(MemoryEngine(), driver_context)
""")
    reprec = pytester.inline_run("-p", "no:cacheprovider", "-p", "no:randomly", "-rs")
    passed, skipped, failed = reprec.listoutcomes()
    assert failed == []
    assert not [r for r in skipped if "snapshot" in r.nodeid]
    assert {r.nodeid.split("::")[-1] for r in passed} >= {
        "test_a_restore_gives_the_snapshots_content_back", "test_snapshots_list_oldest_first_per_volume"}
