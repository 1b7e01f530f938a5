"""Testing a driver, a hook or a policy without Docker: the contract kit, one engine in memory, fixtures.

A driver is checked by subclassing its role's contract: ``NetworkDriverContract`` (``contract.py``),
``StorageDriverContract`` (``storage_contract.py``, with snapshots when the driver takes them),
``RegistryDriverContract`` (``registry_contract.py``) and ``RuntimeDriverContract`` (``runtime_contract.py``)::

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
fixtures of ``fixtures.py`` (``driver_context``, whose ``progress`` collects
into ``progress_lines``, ``unique_name``, ``unreachable_context``,
``memory_engine``) are available in any test once reconciler is installed. It
imports no Docker: an in-memory driver is tested without an engine.

Nor does it need pytest for the in-memory engine: ``MemoryEngine``,
``make_reconciler``, ``load_desired`` and ``installed_driver`` import without
it. The contract classes and fixtures are pytest's; without pytest, asking for
one says to ``pip install 'reconciler[testing]'``.

A driver that wraps another it finds by name (``registry.lookup``) is made for
its test as a run makes it, from the installed plugins: ``installed_driver``.

A driver that talks to a ``docker.APIClient`` itself is tested against
``reconciler.testing.fakedocker.FakeDockerAPI``, the engine's API held in memory,
handed to every driver of the run through ``reconciler.sdk.docker.use_client``.
It is imported from its own module (it needs the Docker SDK), not from here.
"""
from __future__ import annotations

from ..drivers import DriverContext, ObjectDriver
from ..model import Kind
from ..spec import load_desired
from .memory import (
    MemoryEngine,
    MemoryNetworkDriver,
    MemoryRegistryDriver,
    MemoryRuntimeDriver,
    MemoryStorageDriver,
    make_reconciler,
)

#: What needs pytest: the contract classes, their helpers and the fixtures.
_PYTEST_NAMES = (
    "ContractHarness",
    "NetworkDriverContract",
    "ProgressLines",
    "RegistryDriverContract",
    "RuntimeDriverContract",
    "STACK_PREFIX",
    "StorageDriverContract",
    "assert_maps_errors",
    "driver_context",
    "memory_engine",
    "progress_lines",
    "spec_config",
    "unique_name",
    "unreachable_context",
    "with_hash",
)

try:
    import pytest  # noqa: F401  (the contract kit and its fixtures are pytest's)
except ModuleNotFoundError as missing:
    if missing.name != "pytest":
        raise
    _HAS_PYTEST = False
else:
    _HAS_PYTEST = True
    from .contract import (
        STACK_PREFIX,
        ContractHarness,
        NetworkDriverContract,
        assert_maps_errors,
        spec_config,
        with_hash,
    )
    from .fixtures import (
        ProgressLines,
        driver_context,
        memory_engine,
        progress_lines,
        unique_name,
        unreachable_context,
    )
    from .registry_contract import RegistryDriverContract
    from .runtime_contract import RuntimeDriverContract
    from .storage_contract import StorageDriverContract

__all__ = [
    "MemoryEngine",
    "MemoryNetworkDriver",
    "MemoryRegistryDriver",
    "MemoryRuntimeDriver",
    "MemoryStorageDriver",
    "installed_driver",
    "load_desired",
    "make_reconciler",
    *(_PYTEST_NAMES if _HAS_PYTEST else ()),
]


def __getattr__(name: str):
    """Without pytest, the contract kit's names say what to install instead of being missing."""
    if name in _PYTEST_NAMES:
        raise ImportError(f"reconciler.testing.{name} is part of the pytest contract kit, and pytest is not "
                          "installed: pip install 'reconciler[testing]'", name=name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def installed_driver(kind: Kind, name: str, context: DriverContext) -> ObjectDriver:
    """The ``kind`` driver ``name`` made for ``context`` as a run makes it: from the installed plugins.

    The plugins are those a run loads (entry points, ``RECONCILER_PLUGINS``),
    each registering through its hook; for a driver whose factory wraps
    another plugin's driver found by name (``registry.lookup``).
    """
    from ..plugins import load_driver_registry, make_plugin_manager

    return load_driver_registry(make_plugin_manager()).factory(kind, name)(context)
