"""Turn the text of one YAML file into plain data, treating the text as hostile.

Specs come from repositories that the operator does not fully control, so this
module is the only place that parses YAML and it trusts nothing: a safe loader
only, an event pass that bounds nesting, aliases and documents before anything
is composed (libyaml's composer recurses in C and crashes on deep nesting), and
a node budget while aliases and merge keys are expanded. We walk the composed
node tree ourselves, rather than letting PyYAML construct objects, so that each
value keeps its file:line:col for error messages and no tag can build anything
but strings, numbers, booleans, null, mappings and lists.

Scalars resolve as in YAML 1.2 (the core schema): only ``true``/``false`` are
booleans and there are no base-60 numbers, so ``restart: no`` is the string
"no" and ``- 22:22`` is a string, as in compose.

Reading files, ``.env`` files and merging several files are the loader's job
(:mod:`reconciler.spec.loader`); this module sees one file's text at a time.

A loop re-reads the same files pass after pass, so the plain data and marks
of a file's text are remembered (``remember=True``: specs, never files that
may hold credentials) in the cache folder beside the schema verdicts, as the
text was written: variables are substituted afterwards, on every read, so no
value from the environment is ever written there, and a text that mentions
secrets at all (it may hold one literally) is not remembered. A command
reading a file it has read before does not import PyYAML at all (``yamlwalk``
does the parsing).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache as _once
from pathlib import Path
from typing import Any

from .. import cache
from ..errors import Problem
from .locations import KEY, Mark, problem_at

__all__ = ["Document", "Mark", "compose_file"]

#: Bumped whenever what ``yamlwalk`` makes of a text changes: remembered documents then miss.
_FORMAT = "yaml-2"


@dataclass(frozen=True)
class Document:
    """One file's plain data, the position of every value, and the problems found in it.

    ``data`` is None for an empty document, and ``marks`` is then empty. The
    problems are local (a bad tag, a duplicate key): the rest of the data is
    still usable, so they are reported alongside it rather than raised.
    ``tags`` (Compose files only, see ``compose_file``) maps the path of each
    ``!reset`` or ``!override`` value to ``"reset"`` or ``"override"``.
    """

    data: Any
    marks: dict[tuple, Mark]
    problems: tuple[Problem, ...]
    tags: dict[tuple, str] = field(default_factory=dict)


def compose_file(text: str, filename: str, *, on_string: Callable[[str, tuple], str] | None = None,
                 remember: bool = False, merge_tags: bool = False) -> Document:
    """Plain data of the single YAML document in ``text``, with marks naming ``filename``.

    ``on_string(value, path)`` is applied to every string value (not to keys); a ValueError
    it raises becomes a problem at that value. Raises SpecError, listing the
    reason and any problems found before it, when the file is unusable as a
    whole: invalid YAML, more than one document, or over the nesting, alias or
    node limits. ``remember``: keep the parsed text in the cache (a file
    without problems, whose text does not mention secrets) and look for it
    there first. ``merge_tags``: accept Compose's ``!reset`` and ``!override``
    (a Compose file's, never a stack spec's), reported in ``Document.tags``.
    """
    # A text that mentions secrets may hold one literally: it is never copied into the cache.
    remember = remember and "secret" not in text.lower()
    flavour = "compose" if merge_tags else "plain"
    key = cache.content_key(_FORMAT, _parser_stamp(), flavour, filename, text) if remember else None
    found = _recalled(key, filename) if key else None
    if found is not None:
        data, marks, tags = found
        problems: list[Problem] = []
    else:
        from .yamlwalk import compose_plain

        data, marks, tags, problems = compose_plain(text, filename, merge_tags=merge_tags)
        if key and not problems:
            _remember(key, data, marks, tags)
    if on_string is not None:
        data = _strings(data, (), marks, on_string, problems)
    return Document(data, marks, tuple(problems), tags)


@_once
def _parser_stamp() -> str:
    """Changes whenever ``yamlwalk`` does (an upgrade, an edit), so what an older one made is not reused."""
    try:
        info = os.stat(Path(__file__).with_name("yamlwalk.py"))
        return f"{info.st_size}:{info.st_mtime_ns}"
    except OSError:  # installed without sources: only _FORMAT tells versions apart
        return ""


def _strings(value: Any, path: tuple, marks: dict[tuple, Mark], on_string: Callable[[str, tuple], str],
             problems: list[Problem]) -> Any:
    """``value`` with ``on_string`` applied to every string in it (keys excepted)."""
    if isinstance(value, str):
        try:
            return on_string(value, path)
        except ValueError as exc:  # whatever on_string refuses is a problem at that value
            problems.append(problem_at(marks.get(path), path, str(exc)))
            return value
    if isinstance(value, dict):
        return {key: _strings(item, (*path, key), marks, on_string, problems) for key, item in value.items()}
    if isinstance(value, list):
        return [_strings(item, (*path, index), marks, on_string, problems) for index, item in enumerate(value)]
    return value


def _remember(key: str, data: Any, marks: dict[tuple, Mark], tags: dict[tuple, str]) -> None:
    # A path holds keys (strings), indices (integers) and KEY, written as null.
    rows = [[[None if step is KEY else step for step in path], mark.line, mark.col] for path, mark in marks.items()]
    tagged = [[list(path), tag] for path, tag in tags.items()]
    cache.write_entry("yaml", key, json.dumps({"data": data, "marks": rows, "tags": tagged}).encode())


def _recalled(key: str, filename: str) -> tuple[Any, dict[tuple, Mark], dict[tuple, str]] | None:
    raw = cache.read_entry("yaml", key)
    if raw is None:
        return None
    try:
        stored = json.loads(raw)
        marks = {tuple(KEY if step is None else step for step in path): Mark(filename, line, col)
                 for path, line, col in stored["marks"]}
        return stored["data"], marks, {tuple(path): tag for path, tag in stored["tags"]}
    except (ValueError, TypeError, KeyError):
        return None  # damaged: parse the text again (and write it anew)
