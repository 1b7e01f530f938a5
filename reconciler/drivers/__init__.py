"""Drivers: the only way the core reaches a backend.

Four rooms behind it: ``contract`` (what a plugin author implements and
receives: the network, storage and runtime roles, ``DriverContext``, ``Check``,
the helpers ``owned_plus_wanted`` and ``stream_opened``), ``images`` (the
registry role, ``RegistryDriver``, and its ``TagDetails``), ``registry`` (how the core
registers, looks up and makes drivers), and ``freshread`` (``fresh_read``: one
read of a backend shared by the passes of one moment). The core imports from here
(``from reconciler.drivers import RuntimeDriver``); plugins import the same
names from the SDK, ``reconciler.sdk``.
"""
from __future__ import annotations

from . import contract, freshread, images, registry
from .contract import *  # noqa: F403 (the names in contract.__all__)
from .images import *  # noqa: F403 (the names in images.__all__)
from .freshread import *  # noqa: F403 (the names in freshread.__all__)
from .registry import *  # noqa: F403 (the names in registry.__all__)

#: This package's face is its rooms' faces, each listed once, in its own room.
__all__ = [*contract.__all__, *images.__all__, *registry.__all__, *freshread.__all__]
