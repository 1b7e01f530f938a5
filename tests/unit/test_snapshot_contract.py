"""The storage contract's snapshots: the capability as declared, its defaults, the registry's answer, the
memory engine's driver, and the state directory drivers are given."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.drivers import DriverContext, DriverRegistry, StorageDriver
from reconciler.errors import PermanentError, TemporaryError
from reconciler.model import Kind, LiveObject, Restored, Snapshot, SnapshotRetention, VolumeSpec, snapshot_id
from reconciler.state import StateStore
from reconciler.testing import MemoryEngine, MemoryStorageDriver, make_reconciler


class Plain(StorageDriver):
    def observe(self, stack, wanted):
        return []

    def delete(self, live):
        pass

    def create(self, spec, labels):
        return spec.name


class Snapshotting(Plain):
    takes_snapshots = True


def test_a_driver_without_the_capability_says_so_for_each_method():
    driver = Plain()
    taken = Snapshot("20261207T184500Z-3f2a1c", "v", 0.0, 0, 0)
    calls = [lambda: driver.snapshot("v"), lambda: driver.restore("v", taken),
             lambda: driver.list_snapshots("v"), lambda: driver.delete_snapshot(taken)]
    for call in calls:
        with pytest.raises(PermanentError, match="the Plain storage driver takes no snapshots"):
            call()
    assert Plain.takes_snapshots is False


def test_the_registry_tells_which_storage_drivers_take_snapshots_without_making_them():
    made = []
    registry = DriverRegistry()
    view = registry.view("p")
    view.add_storage_driver("by-class", Snapshotting)
    view.add_storage_driver("by-keyword", lambda ctx: made.append(ctx), takes_snapshots=True)
    view.add_storage_driver("refused", Snapshotting, takes_snapshots=False)
    view.add_storage_driver("plain", Plain)
    view.add_storage_driver("unknown-factory", lambda ctx: made.append(ctx))
    answers = [registry.takes_snapshots(n) for n in ("by-class", "by-keyword", "refused", "plain",
                                                     "unknown-factory", "nobody")]
    assert answers == [True, True, False, False, False, False]
    assert made == []
    registry.forget("p")
    assert not registry.takes_snapshots("by-class")


def test_the_memory_engine_registers_its_storage_driver_as_taking_snapshots(memory_engine):
    registry = DriverRegistry()
    memory_engine.register(registry.view("memory"))
    assert registry.takes_snapshots("local")


def test_snapshot_ids_sort_by_time_and_look_alike():
    first, second = snapshot_id(1796669100.0), snapshot_id(1796669101.0)
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", first)
    assert first.startswith("20261207T") and first < second
    assert SnapshotRetention() == SnapshotRetention(keep=5, max_age=None)


def _volume(engine: MemoryEngine, name: str = "data") -> MemoryStorageDriver:
    engine.add(LiveObject(Kind.VOLUME, name, name))
    return engine.drivers("demo").get(Kind.VOLUME, "local")


def test_the_memory_driver_snapshots_and_restores_the_volume_content(memory_engine):
    driver = _volume(memory_engine)
    memory_engine.volume_content["data"] = {"a": b"one", "dir/b": b"two!"}
    seen = []
    taken = driver.snapshot("data", progress=lambda done, total: seen.append((done, total)))
    assert (taken.volume, taken.size, taken.content) == ("data", 7, 7)
    assert seen == [(7, 7)]
    assert driver.list_snapshots("data") == [taken] and driver.list_snapshots("other") == []

    memory_engine.volume_content["data"] = {"a": b"one", "dir/b": b"changed", "new": b"12345"}
    restored = driver.restore("data", taken)
    assert isinstance(restored, Restored) and restored.snapshot == taken
    assert restored.discarded == len(b"changed") + 5
    assert memory_engine.volume_content["data"] == {"a": b"one", "dir/b": b"two!"}
    assert driver.restore("data", taken).discarded == 0  # twice: the same result

    driver.delete_snapshot(taken)
    driver.delete_snapshot(taken)
    assert driver.list_snapshots("data") == []
    with pytest.raises(PermanentError, match="no snapshot"):
        driver.restore("data", taken)


def test_the_memory_driver_lists_oldest_first_and_refuses_a_missing_volume(memory_engine):
    driver = _volume(memory_engine)
    taken = [driver.snapshot("data") for _ in range(3)]
    assert driver.list_snapshots("data") == taken
    with pytest.raises(PermanentError, match="no such volume"):
        driver.snapshot("ghost")


def test_a_restore_that_failed_completes_when_run_again(memory_engine):
    driver = _volume(memory_engine)
    memory_engine.volume_content["data"] = {"a": b"1"}
    taken = driver.snapshot("data")
    memory_engine.volume_content["data"] = {"a": b"2"}
    memory_engine.fail("restore", TemporaryError("engine went away"))
    with pytest.raises(TemporaryError):
        driver.restore("data", taken)
    driver.restore("data", taken)
    assert memory_engine.volume_content["data"] == {"a": b"1"}
    assert [c[0] for c in memory_engine.calls] == ["snapshot", "restore", "restore"]


def test_a_deleted_memory_volume_loses_its_content(memory_engine):
    driver = _volume(memory_engine)
    memory_engine.volume_content["data"] = {"a": b"1"}
    driver.delete(LiveObject(Kind.VOLUME, "data", "data"))
    assert "data" not in memory_engine.volume_content
    driver.create(VolumeSpec(key="data", name="data"), {})
    assert memory_engine.volume_content.get("data", {}) == {}


def test_drivers_are_given_the_state_directory_of_the_record(tmp_path):
    engine = MemoryEngine()
    assert make_reconciler(engine).drivers("demo").context.state_dir is None  # a record in memory: the default
    reconciler = make_reconciler(engine)
    reconciler._state = StateStore.open(tmp_path / "state")
    assert reconciler.drivers("demo").context.state_dir == tmp_path / "state"
    assert DriverContext(stack="s").state_dir is None


def test_a_state_directory_given_to_the_reconciler_wins(tmp_path):
    from reconciler.reconcile import Reconciler

    engine = MemoryEngine()
    pm = make_reconciler(engine).pm
    reconciler = Reconciler(plugin_manager=pm, state=StateStore.open(tmp_path / "a"), state_dir=tmp_path / "b")
    assert reconciler.drivers("demo").context.state_dir == Path(tmp_path / "b")


def test_the_driver_catalog_tells_validation_which_storage_drivers_take_snapshots(memory_engine):
    catalog = make_reconciler(memory_engine).driver_catalog()
    assert catalog["volumes"]["local"].get("takes_snapshots") is True
    assert "takes_snapshots" not in catalog["networks"]["bridge"]
