"""Where a value is in the spec: positions, field paths, and a problem at a position.

The lowest module of the spec package: the YAML reader records positions, the
loader and the validators report problems at them, and all of them render a
field's path the same way. Living below all three is what keeps the package
free of import circles.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import Problem

__all__ = ["KEY", "Mark", "format_path", "nearest_mark", "problem_at"]

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


class _Key:
    """The type of ``KEY``: a path step no YAML key can equal."""

    def __repr__(self) -> str:
        return "KEY"


#: Appended to a path, the position of the mapping *key* that holds the value
#: (``marks[(*path, KEY)]``), where an error about the key itself points: an
#: unknown field is reported at its name, not at the value under it. Looking it
#: up through ``RawStack.mark`` falls back to the value's own position.
KEY = _Key()


@dataclass(frozen=True)
class Mark:
    """A position in a spec file; ``line`` and ``col`` are 1-based."""

    file: str
    line: int
    col: int


def format_path(path: tuple | list) -> str:
    """Render a path of keys and indices as ``containers.web.ports[0]``.

    Keys that would be ambiguous after a dot are quoted: ``options["com.docker.x"]``.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f"[{json.dumps(str(part))}]"
    return out


def problem_at(mark: Mark | None, path: tuple | list, message: str) -> Problem:
    """A problem at ``mark`` (when the value's position is known) about the field at ``path``."""
    if mark is None:
        return Problem(message, path=format_path(path))
    return Problem(message, file=mark.file, line=mark.line, col=mark.col, path=format_path(path))


def nearest_mark(marks: Mapping[tuple, Mark], path: Sequence) -> Mark | None:
    """The position of the value at ``path`` in ``marks``, or of its nearest ancestor that has one."""
    path = tuple(path)
    for end in range(len(path), -1, -1):
        found = marks.get(path[:end])
        if found is not None:
            return found
    return None
