"""Drivers: the only way the core reaches a backend.

Two rooms behind it: ``contract`` (what a plugin author implements and
receives: the four role classes, ``DriverContext``, ``Check``, the helpers
``owned_plus_wanted`` and ``stream_opened``) and ``registry`` (how the core
registers, looks up and makes drivers). The core imports from here
(``from reconciler.drivers import RuntimeDriver``); plugins import the same
names from the SDK, ``reconciler.sdk``.
"""
from __future__ import annotations

from .contract import (
    Check,
    DriverContext,
    Factory,
    NetworkDriver,
    ObjectDriver,
    RegistryDriver,
    RuntimeDriver,
    StorageDriver,
    owned_plus_wanted,
    stream_opened,
)
from .registry import DriverRegistry, Drivers, PluginDrivers

__all__ = [
    "Check",
    "DriverContext",
    "DriverRegistry",
    "Drivers",
    "Factory",
    "NetworkDriver",
    "ObjectDriver",
    "PluginDrivers",
    "RegistryDriver",
    "RuntimeDriver",
    "StorageDriver",
    "owned_plus_wanted",
    "stream_opened",
]
