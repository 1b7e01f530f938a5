"""The labels the core puts on every object, by name, and the ownership test: the SDK's face of ``reconciler.labels``.

Why a submodule of its own: label names are many and read together
(``from reconciler.sdk.labels import STACK, CONFIG_HASH, is_owned``), and a
driver never spells ``"io.reconciler.*"`` itself. The core keeps them in
``reconciler.labels``, their one home; this module re-exports that module's
public face, name for name.
"""
from __future__ import annotations

from .. import labels as _labels
from ..labels import *  # noqa: F403 (the names in reconciler.labels.__all__)

#: Name for name the public face of ``reconciler.labels``, which lists it once.
__all__ = list(_labels.__all__)
