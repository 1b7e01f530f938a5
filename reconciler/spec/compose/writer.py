"""What every part of the translation shares: the output, and how a written value keeps its origin.

Every value the translator writes remembers the Compose path it came from:
its position goes into the stack's marks (so validation reports the Compose
file's line) and ``paths`` maps the written field back to the Compose key (so
the message names that key). A key that cannot be expressed is an error at
its line, or with ``ignore_unsupported`` a warning, never dropped silently.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import Problem
from ..locations import Mark, format_path, problem_at
from . import keys
from .project import ComposeProject

__all__ = ["Translation", "Writer", "as_number", "as_text", "cast", "labels_map", "nearest_mark"]


@dataclass
class Translation:
    """A stack spec's data made from a Compose project, and how it maps back."""

    data: dict
    #: Stack path -> position in the Compose files.
    marks: dict[tuple, Mark]
    #: Formatted stack path -> formatted Compose path, for every field written.
    paths: dict[str, str]
    problems: list[Problem]
    #: Problems that ``ignore_unsupported`` turned into warnings.
    warnings: list[Problem]
    #: (stack path, what the conversion changed), for comments in ``reconcile convert``.
    notes: list[tuple[tuple, str]] = field(default_factory=list)



class Writer:
    """Writes stack spec data from a Compose project, keeping every value's origin."""

    def __init__(self, project: ComposeProject, ignore_unsupported: bool) -> None:
        self.project = project
        self.ignore = ignore_unsupported
        self.out = Translation({}, {}, {}, [], [])

    def _mark(self, ours: tuple, theirs: tuple, *, subtree: bool = False) -> None:
        marks = self.project.marks
        mark = nearest_mark(marks, theirs)
        if mark is not None:
            self.out.marks[ours] = mark
        self.out.paths[format_path(ours)] = format_path(theirs)
        if subtree:
            size = len(theirs)
            for path, found in marks.items():
                if len(path) > size and path[:size] == theirs:
                    self.out.marks[(*ours, *path[size:])] = found

    def _put(self, target: dict, ours: tuple, value: Any, theirs: tuple) -> None:
        """Write ``value`` at ``ours`` (its last key in ``target``), taken as it is from ``theirs``."""
        target[ours[-1]] = cast(theirs[-1], copy.deepcopy(value))
        self._mark(ours, theirs, subtree=True)

    def _error(self, theirs: tuple, message: str) -> None:
        self.out.problems.append(problem_at(nearest_mark(self.project.marks, theirs), theirs, message))

    def _unsupported(self, theirs: tuple, reason: str) -> None:
        if self.ignore:
            self.out.warnings.append(problem_at(nearest_mark(self.project.marks, theirs), theirs,
                                                f"{theirs[-1]!r} is not supported ({reason}): dropped"))
            return
        self._error(theirs, f"Compose key {theirs[-1]!r} is not supported ({reason}); remove it, or pass "
                            "--ignore-unsupported to drop it with a warning")

    def _path(self, value: str, theirs: tuple) -> str:
        """A relative path, relative to the project directory as Compose reads it (not to an override file's)."""
        mark = nearest_mark(self.project.marks, theirs)
        if (mark is None or value.startswith(("/", "~")) or "://" in value
                or Path(mark.file).resolve().parent == self.project.directory):
            return value
        self.out.notes.append(((), f"{format_path(theirs)}: made absolute (relative to the project directory)"))
        return str(self.project.directory / value)

    # -- top level ------------------------------------------------------------------


def nearest_mark(marks: dict[tuple, Mark], path: tuple) -> Mark | None:
    for end in range(len(path), -1, -1):
        found = marks.get(path[:end])
        if found is not None:
            return found
    return None


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def labels_map(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return dict((str(item).partition("=")[0], str(item).partition("=")[2]) for item in value)
    return value


def cast(key: Any, value: Any) -> Any:
    """``value`` as the type Compose gives ``key`` when interpolation left it text (``"true"``, ``"3"``)."""
    kind = keys.CAST.get(key) if isinstance(value, str) else None
    if kind is bool and value in ("true", "false", "True", "False"):
        return value.lower() == "true"
    if kind in (int, float) and re.fullmatch(r"\d+" if kind is int else r"\d+(\.\d+)?", value):
        return kind(value)
    return value


def as_number(value: Any) -> Any:
    """Compose casts interpolated text to numbers where its schema wants one (``replicas: ${N}``)."""
    if isinstance(value, str):
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
    return value
