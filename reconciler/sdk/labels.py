"""The labels the core puts on every object, by name, and the ownership test: the SDK's face of ``reconciler.labels``.

Why a submodule of its own: label names are many and read together
(``from reconciler.sdk.labels import STACK, CONFIG_HASH, is_owned``), and a
driver never spells ``"io.reconciler.*"`` itself. The core keeps them in
``reconciler.labels``, their one home; this module re-exports that module's
public face, name for name.
"""
from __future__ import annotations

from ..labels import (
    BUILD_HASH,
    CONFIG_HASH,
    DRIVER,
    FIELDS,
    KIND,
    NAME,
    PREFIX,
    REPLICA,
    SECRET_ENV,
    STACK,
    VOLUME_ID,
    is_owned,
    object_labels,
    owner_selector,
    read_field_hashes,
    read_secret_env,
    spec_field_hashes,
)

__all__ = [
    "BUILD_HASH",
    "CONFIG_HASH",
    "DRIVER",
    "FIELDS",
    "KIND",
    "NAME",
    "PREFIX",
    "REPLICA",
    "SECRET_ENV",
    "STACK",
    "VOLUME_ID",
    "is_owned",
    "object_labels",
    "owner_selector",
    "read_field_hashes",
    "read_secret_env",
    "spec_field_hashes",
]
