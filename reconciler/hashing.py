"""Config hashes: how "changed" is decided without ever storing the config itself.

An object's labels carry one hash of its whole normalized config and a small map
of per-field hashes, so a plan can say *which* fields changed while the labels
never reveal a value (a config may hold secrets).
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

__all__ = ["canonical_json", "config_hash", "field_hashes", "short_hash"]

HASH_LEN = 16


# One encoder for every call: json.dumps with options builds a new one each time (a few hashes per container).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal data gives equal text."""
    return _CANONICAL.encode(value)


def short_hash(value: Any, *, length: int = HASH_LEN) -> str:
    """A hex sha256 prefix of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


def _significant(value: Any) -> bool:
    # Unset and default-empty fields are left out, so a release that adds a
    # field with a default does not change every hash (and replace every container).
    return not (value is None or value is False or (isinstance(value, (str, tuple, list, dict)) and not value))


def config_hash(config: Mapping[str, Any]) -> str:
    """The hash that decides whether a live object still matches its desired config."""
    kept = {name: value for name, value in config.items() if _significant(value)}
    return hashlib.sha256(canonical_json(kept).encode()).hexdigest()


def field_hashes(config: Mapping[str, Any], *, expand: frozenset[str] = frozenset()) -> dict[str, str]:
    """Short per-field hashes; fields named in ``expand`` (maps) get one entry per key.

    ``{"env": {"A": "1"}}`` with ``expand={"env"}`` gives ``{"env.A": <hash>}``.
    Eight hex digits are enough to tell "changed" apart, and short enough
    to keep the label small.
    """
    out: dict[str, str] = {}
    for name, value in config.items():
        if name in expand and isinstance(value, Mapping):
            for sub, subvalue in value.items():
                out[f"{name}.{sub}"] = short_hash([name, sub, subvalue], length=8)
        elif _significant(value):
            out[name] = short_hash([name, value], length=8)
    return out
