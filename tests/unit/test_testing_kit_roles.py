"""The registry and runtime contracts of the test kit, proved on the in-memory engine; clean-up survives a
broken driver."""
from __future__ import annotations

import pytest

from reconciler.errors import EngineUnreachable
from reconciler.model import ImageSpec, Kind, LiveObject
from reconciler.testing import (
    MemoryEngine,
    MemoryRegistryDriver,
    MemoryRuntimeDriver,
    RegistryDriverContract,
    RuntimeDriverContract,
    with_hash,
)

pytest_plugins = ["pytester"]


class TestMemoryRegistry(RegistryDriverContract):
    @pytest.fixture
    def driver(self, driver_context, memory_engine):
        return MemoryRegistryDriver(memory_engine, driver_context)

    @pytest.fixture
    def spec(self, unique_name):
        return ImageSpec(key="app", ref=f"registry.test/{unique_name}:1")

    @pytest.fixture
    def build_spec(self, unique_name):
        return ImageSpec(key="built", ref=f"{unique_name}-built:latest", build_context="/ctx", build_hash="sha256:b1",
                         pull="never")

    @pytest.fixture
    def push_spec(self, build_spec):
        return build_spec

    @pytest.fixture
    def change_source(self, memory_engine):
        return lambda spec: memory_engine.publish(spec.ref)

    @pytest.fixture
    def unreachable_driver(self, unreachable_context):
        down = MemoryEngine()
        down.fail("observe", EngineUnreachable("the memory engine is down"), times=None)
        return MemoryRegistryDriver(down, unreachable_context)


class TestMemoryRuntime(RuntimeDriverContract):
    @pytest.fixture
    def driver(self, driver_context, memory_engine):
        return MemoryRuntimeDriver(memory_engine, driver_context)

    @pytest.fixture
    def image_ref(self, memory_engine):
        memory_engine.add(LiveObject(Kind.IMAGE, "busybox:contract", "sha256:busy", image_id="sha256:busy"))
        return "busybox:contract"

    @pytest.fixture
    def unreachable_driver(self, unreachable_context):
        down = MemoryEngine()
        down.fail("observe", EngineUnreachable("the memory engine is down"), times=None)
        return MemoryRuntimeDriver(down, unreachable_context)


def test_with_hash_works_for_images_and_containers():
    from reconciler.model import ContainerSpec

    assert with_hash(ImageSpec(key="a", ref="x:1")).config_hash == ""
    assert with_hash(ImageSpec(key="a", ref="x:1", track="digest")).config_hash == ""
    assert with_hash(ImageSpec(key="a", ref="x:1", build_context="/c", build_hash="h")).config_hash == "h"
    container = with_hash(ContainerSpec(key="w", name="s-w-1", replica=1, image_key=None, image_ref="x:1"))
    assert container.config_hash and dict(container.field_hashes)


BROKEN_OBSERVE = '''
import pytest
from reconciler.testing import MemoryEngine, MemoryNetworkDriver, MemoryRuntimeDriver, NetworkDriverContract
from reconciler.testing import RuntimeDriverContract
from reconciler.model import Kind, LiveObject

ENGINE = MemoryEngine()
ENGINE.add(LiveObject(Kind.IMAGE, "img:1", "sha256:i", image_id="sha256:i"))


class BrokenNetworks(MemoryNetworkDriver):
    def observe(self, stack, wanted):
        raise RuntimeError("observe is broken")


class BrokenRuntime(MemoryRuntimeDriver):
    def observe(self, stack, wanted):
        return ["not a LiveObject"]


class TestBrokenNetworks(NetworkDriverContract):
    driver_name = "memory"

    @pytest.fixture
    def driver(self, driver_context):
        return BrokenNetworks(ENGINE, driver_context)


class TestBrokenRuntime(RuntimeDriverContract):
    @pytest.fixture
    def driver(self, driver_context):
        return BrokenRuntime(ENGINE, driver_context)

    @pytest.fixture
    def image_ref(self):
        return "img:1"


def test_nothing_left_behind():
    assert ENGINE.networks == {} and ENGINE.containers == {}
'''


def test_clean_up_works_when_the_driver_under_test_is_broken(pytester):
    pytester.makepyfile(test_broken_observe=BROKEN_OBSERVE)
    reprec = pytester.inline_run("-p", "no:cacheprovider", "-p", "no:randomly")
    assert [r for r in reprec.getfailures() if r.when != "call"] == [], "clean-up must not fail"
    assert any(r.when == "call" for r in reprec.getfailures()), "a broken observe must fail the contract"
    passed, _, _ = reprec.listoutcomes()
    assert any(r.nodeid.endswith("test_nothing_left_behind") for r in passed), "the kit left objects behind"
