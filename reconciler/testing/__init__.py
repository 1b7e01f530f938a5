"""Testing a driver, a hook or a policy without Docker: the contract kit, one engine in memory, fixtures.

A driver is checked by subclassing its role's contract: ``StorageDriverContract`` and
``NetworkDriverContract`` (``contract.py``), ``RegistryDriverContract`` (``registry_contract.py``)
and ``RuntimeDriverContract`` (``runtime_contract.py``)::

    from reconciler.testing import StorageDriverContract

    class TestMyDriver(StorageDriverContract):
        driver_name = "mine"                        # the spec's ``driver:``

        @pytest.fixture
        def driver(self, driver_context):
            return MyDriver(driver_context)

        def changed(self, spec):                    # optional: a config change
            return dataclasses.replace(spec, options=(("size", "32m"),))

The core, lifecycle hooks and policies run against ``MemoryEngine``
(``memory.py``), an engine held in memory with a driver for each role::

    engine = MemoryEngine()
    reconciler = make_reconciler(engine, plugins={"my-policy": MyPolicy()})
    desired = load_desired([path], drivers=reconciler.driver_names())   # a spec file, as a run loads it
    reconciler.apply(desired)
    assert ("start", "demo-web-1") in engine.calls

This package is also a pytest plugin (the ``pytest11`` entry point), so the
fixtures below (``driver_context``, ``unique_name``, ``unreachable_context``,
``memory_engine``) are available in any test once reconciler is installed. It
imports no Docker: an in-memory driver is tested without an engine.

A driver that wraps another it finds by name (``registry.lookup``) is made for
its test as a run makes it, from the installed plugins: ``installed_driver``.

A driver that talks to a ``docker.APIClient`` itself is tested against
``reconciler.testing.fakedocker.FakeDockerAPI``, the engine's API held in memory,
handed to every driver of the run through ``reconciler.sdk.docker.use_client``.
It is imported from its own module (it needs the Docker SDK), not from here.
"""
from __future__ import annotations

import os
import socket
import uuid

import pytest

from ..drivers import DriverContext, ObjectDriver
from ..model import Kind
from ..spec import load_desired
from .contract import (
    STACK_PREFIX,
    ContractHarness,
    NetworkDriverContract,
    StorageDriverContract,
    assert_maps_errors,
    spec_config,
    with_hash,
)
from .registry_contract import RegistryDriverContract
from .runtime_contract import RuntimeDriverContract
from .memory import (
    MemoryEngine,
    MemoryNetworkDriver,
    MemoryRegistryDriver,
    MemoryRuntimeDriver,
    MemoryStorageDriver,
    make_reconciler,
)

__all__ = [
    "ContractHarness",
    "MemoryEngine",
    "MemoryNetworkDriver",
    "MemoryRegistryDriver",
    "MemoryRuntimeDriver",
    "MemoryStorageDriver",
    "NetworkDriverContract",
    "RegistryDriverContract",
    "RuntimeDriverContract",
    "STACK_PREFIX",
    "StorageDriverContract",
    "assert_maps_errors",
    "driver_context",
    "installed_driver",
    "load_desired",
    "make_reconciler",
    "memory_engine",
    "spec_config",
    "unique_name",
    "unreachable_context",
    "with_hash",
]


def installed_driver(kind: Kind, name: str, context: DriverContext) -> ObjectDriver:
    """The ``kind`` driver ``name`` made for ``context`` as a run makes it: from the installed plugins.

    The plugins are those a run loads (entry points, ``RECONCILER_PLUGINS``),
    each registering through its hook; for a driver whose factory wraps
    another plugin's driver found by name (``registry.lookup``).
    """
    from ..plugins import load_driver_registry, make_plugin_manager

    return load_driver_registry(make_plugin_manager()).factory(kind, name)(context)


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


@pytest.fixture
def memory_engine() -> MemoryEngine:
    """A fresh, empty ``MemoryEngine``."""
    return MemoryEngine()
