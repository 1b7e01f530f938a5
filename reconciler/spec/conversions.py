"""The small conversions every part of building a ``DesiredState`` shares.

The stack builder (``desired``), the container builder (``containerspecs``) and the
Compose-spelled container fields (``containerfields``) all turn YAML scalars into the
strings the engine gets, maps into the sorted pairs a hash covers, names into names the
engine can take, and paths into paths relative to the spec file that wrote them. Each
of those is one rule, so it is written once, here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..names import engine_name_problem
from .loader import RawStack

__all__ = ["FieldError", "engine_name", "pairs", "scalar", "spec_path"]


class FieldError(ValueError):
    """A value that makes no sense in one ``field`` of the entry being built: located at that field's line."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def scalar(value: Any) -> str:
    """A YAML scalar as the engine gets it: None as empty, booleans as ``true``/``false``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def pairs(mapping: dict | None) -> tuple[tuple[str, str], ...]:
    """A map (options, labels) as sorted ``(key, scalar)`` pairs: rewriting it in another order changes nothing."""
    return tuple(sorted((str(k), scalar(v)) for k, v in (mapping or {}).items()))


def engine_name(what: str, name: str, *, field: str = "") -> str:
    """``name``, or a ValueError (located by the builder) when the engine could not take it.

    ``field``: the field of the entry the user wrote the name in (``name``), when it is not derived from keys.
    """
    problem = engine_name_problem(what, name, given=bool(field))
    if problem:
        raise FieldError(field, problem) if field else ValueError(problem)
    return name


def spec_path(raw: RawStack, path: Sequence, value: str) -> Path:
    """``value`` (a path at ``path`` in the spec) resolved against the directory of the file that wrote it."""
    base = raw.origin(path).parent
    return (base / Path(value).expanduser()).resolve()
