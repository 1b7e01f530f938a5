"""Specs that already passed the JSON Schema, remembered in the cache folder.

Importing and running jsonschema costs more than a whole converged reconcile
pass, yet a GitOps loop re-validates the same spec over and over. So a
successful schema check is remembered under a hash of the schema text and the
spec's (interpolated) data: the same content skips straight to the semantic
checks, which always run (they look at the file system). Only successes are
remembered; any change to the spec or the schema misses the cache. Where the
cache lives, and when it is off or not believed: ``reconciler.cache``.
"""
from __future__ import annotations

import hashlib
from typing import Any

from ..cache import cache_root, write_entry
from ..hashing import canonical_json

__all__ = ["known_valid", "remember_valid", "schema_verdict_key"]

_SCHEMA_OK = "schema-ok"  # one empty file per verdict


def schema_verdict_key(schema_text: str, data: Any) -> str:
    """The content address of "this data against this schema"."""
    digest = hashlib.sha256(schema_text.encode())
    digest.update(b"\0" + canonical_json(data).encode())
    return digest.hexdigest()


def known_valid(key: str) -> bool:
    """Whether the data behind ``key`` passed the schema before."""
    root = cache_root()
    return root is not None and (root / _SCHEMA_OK / key).is_file()


def remember_valid(key: str) -> None:
    """Remember that the data behind ``key`` passed the schema."""
    write_entry(_SCHEMA_OK, key, b"")
