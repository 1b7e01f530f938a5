"""Load stack files into plain data, remembering where every value came from.

Specs come from repositories that the operator does not fully control, so the
YAML is treated as hostile input: a safe loader only, a size limit before
reading, an event pass that bounds nesting and aliases before anything is
composed (libyaml's composer recurses in C and crashes on deep nesting), and a
node budget while aliases and merge keys are expanded. We walk the composed
node tree ourselves, rather than letting PyYAML construct objects, so that each
value keeps its file:line:col for error messages.

Scalars resolve as in YAML 1.2 (the core schema): only ``true``/``false`` are
booleans and there are no base-60 numbers, so ``restart: no`` is the string
"no" and ``- 22:22`` is a string, as in compose.
"""
from __future__ import annotations

import math
import os
import re
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml import events
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import Problem, SpecError
from .interpolate import InterpolationError, interpolate, parse_env_file
from .validate import format_path

__all__ = ["Mark", "RawStack", "load_stack"]

MAX_FILE_BYTES = 1024 * 1024
MAX_ALIASES = 100
MAX_NODES = 100_000
# Real specs nest about six levels; the bound keeps recursion far from Python's limit.
MAX_DEPTH = 100
SECTIONS = ("images", "networks", "volumes", "containers")

_T = "tag:yaml.org,2002:"
_INT, _FLOAT, _BOOL, _NULL = (_T + n for n in ("int", "float", "bool", "null"))
_MAP, _SEQ, _MERGE = _T + "map", _T + "seq", _T + "merge"
# Timestamps and the '=' value key stay text: nothing in a spec wants a datetime.
_TEXT_TAGS = {_T + "str", _T + "timestamp", _T + "value"}
_KEY_TAGS = _TEXT_TAGS | {_INT, _FLOAT, _BOOL}


@dataclass(frozen=True)
class Mark:
    """A position in a spec file; ``line`` and ``col`` are 1-based."""

    file: str
    line: int
    col: int


@dataclass
class RawStack:
    """Merged plain data of all spec files, with the position of every value."""

    data: dict
    marks: dict[tuple, Mark]
    files: tuple[Path, ...]

    def mark(self, path: Sequence) -> Mark | None:
        """Position of the value at ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        for end in range(len(path), -1, -1):
            found = self.marks.get(path[:end])
            if found is not None:
                return found
        return None

    def origin(self, path: Sequence) -> Path:
        """The file the value at ``path`` came from (the first file if unknown)."""
        found = self.mark(path)
        if found is not None:
            return Path(found.file)
        return self.files[0] if self.files else Path("<spec>")


def _core_schema_resolvers() -> dict:
    """PyYAML's implicit resolvers with YAML 1.1 bools and numbers replaced by YAML 1.2's."""
    replaced = {_BOOL, _INT, _FLOAT, _T + "timestamp"}
    table: dict[str, list] = {}
    for first, entries in yaml.resolver.Resolver.yaml_implicit_resolvers.items():
        kept = [entry for entry in entries if entry[0] not in replaced]
        if kept:
            table[first] = kept
    core = [
        (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        (_INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
        (_FLOAT, r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                 r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+0123456789."),
    ]
    for tag, pattern, firsts in core:
        for first in firsts:
            table.setdefault(first, []).insert(0, (tag, re.compile(pattern)))
    # int must be tried before float: the float pattern also matches "42".
    for first in "-+0123456789":
        table[first].sort(key=lambda entry: entry[0] != _INT)
    return table


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The fastest safe loader available, resolving scalars as YAML 1.2."""

    yaml_implicit_resolvers = _core_schema_resolvers()


@dataclass(frozen=True)
class _Fragment:
    """One file's data and marks, before the files are merged."""

    file: Path
    data: Any
    marks: dict[tuple, Mark]


class _Refused(Exception):
    """The file is unsafe or unusable as a whole; carries where and why."""

    def __init__(self, message: str, line: int = 0, col: int = 0) -> None:
        super().__init__(message)
        self.line = line
        self.col = col


def load_stack(paths: Sequence[str | Path], *, environ: Mapping[str, str] | None = None) -> RawStack:
    """Load, interpolate and merge the spec files named by ``paths``.

    Each path is a file or a directory (its ``*.yaml``/``*.yml`` files, sorted
    by name). ``environ`` defaults to ``os.environ`` and wins over a ``.env``
    file beside each spec file. Raises SpecError listing every problem found.
    """
    environ = os.environ if environ is None else environ
    problems: list[Problem] = []
    files = _expand_paths(paths, problems)
    env_by_dir: dict[Path, Mapping[str, str]] = {}
    documents = []
    for file in files:
        env = _env_for(file.parent, environ, env_by_dir, problems)
        loaded = _load_file(file, env, problems)
        if loaded is not None:
            documents.append(loaded)
    data, marks = _merge(documents, problems)
    if problems:
        raise SpecError(problems)
    return RawStack(data=data, marks=marks, files=tuple(files))


def _expand_paths(paths: Sequence[str | Path], problems: list[Problem]) -> list[Path]:
    if not paths:
        problems.append(Problem("no spec files given"))
    files: list[Path] = []
    seen: set[Path] = set()
    for given in map(Path, paths):
        if given.is_dir():
            found = sorted(
                (p for p in given.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()
                 and not p.name.startswith(".")),  # editors leave hidden backups
                key=lambda p: p.name,
            )
            if not found:
                problems.append(Problem("directory contains no *.yaml or *.yml files", file=str(given)))
        elif given.is_file():
            found = [given]
        else:
            problems.append(Problem("no such file or directory", file=str(given)))
            found = []
        for file in found:
            # The same file named twice (or via its directory) is one file, not a conflict.
            if file.resolve() not in seen:
                seen.add(file.resolve())
                files.append(file)
    return files


def _env_for(
    directory: Path, environ: Mapping[str, str], cache: dict, problems: list[Problem]
) -> Mapping[str, str]:
    """Variables seen by spec files in ``directory``: ``environ`` over the ``.env`` there."""
    if directory not in cache:
        dotenv: dict[str, str] = {}
        if (directory / ".env").is_file():
            try:
                dotenv = parse_env_file(directory / ".env")
            except InterpolationError as exc:
                problems.append(Problem(exc.reason, file=exc.file, line=exc.line, col=1 if exc.line else 0))
        cache[directory] = ChainMap(environ, dotenv)  # type: ignore[arg-type]
    return cache[directory]


def _load_file(file: Path, env: Mapping[str, str], problems: list[Problem]) -> _Fragment | None:
    """The file's data, or None after recording why the file is unusable."""
    walker = _Walker(str(file), lambda text: interpolate(text, env))
    try:
        text = _read_text(file)
        _check_events(text)
        node = _compose(text)
        data = walker.value(node, (), 0) if node is not None else None
        data = {} if data is None else data  # an empty file (or a bare '---') adds nothing
    except _Refused as exc:
        problems.append(Problem(str(exc), file=str(file), line=exc.line, col=exc.col))
        return None
    except yaml.MarkedYAMLError as exc:
        problems.append(_syntax_problem(str(file), exc))
        return None
    except yaml.YAMLError as exc:  # e.g. a control character: no line to point at
        problems.append(Problem(f"invalid YAML: {exc}", file=str(file)))
        return None
    finally:
        problems.extend(walker.problems)
    return _Fragment(file, data, walker.marks or {(): Mark(str(file), 1, 1)})


def _read_text(file: Path) -> str:
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _Refused(f"file is {size} bytes, over the limit of {MAX_FILE_BYTES} bytes (1 MiB)")
        with file.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)  # the file may have grown since stat
    except OSError as exc:
        raise _Refused(f"cannot read file: {exc.strerror or exc}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise _Refused(f"file is over the limit of {MAX_FILE_BYTES} bytes (1 MiB)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Refused(f"file is not valid UTF-8 (byte {exc.start})") from exc


def _check_events(text: str) -> None:
    """Refuse deep nesting, too many aliases and extra documents before composing."""
    loader = _Loader(text)
    depth = aliases = documents = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, events.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _at(event, f"nesting is deeper than {MAX_DEPTH} levels")
            elif isinstance(event, events.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, events.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise _at(event, f"more than {MAX_ALIASES} aliases in one file")
            elif isinstance(event, events.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _at(event, "a file may hold only one YAML document (found a second '---')")
    finally:
        loader.dispose()


def _at(item: Any, message: str) -> _Refused:
    mark = item.start_mark
    return _Refused(message, mark.line + 1, mark.column + 1)


def _compose(text: str) -> Node | None:
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _syntax_problem(file: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    message = f"invalid YAML: {exc.problem or exc.context}"
    if exc.context and exc.problem:
        where = f" at line {exc.context_mark.line + 1}" if exc.context_mark else ""
        message += f" ({exc.context}{where})"
    line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    return Problem(message, file=file, line=line, col=col)


def _merge(fragments: list[_Fragment], problems: list[Problem]) -> tuple[dict, dict[tuple, Mark]]:
    """Merge the files' top levels; each path keeps the marks of the file its value came from."""
    data: dict[str, Any] = {}
    owners: dict[tuple, int] = {}  # (key,) or (section, key) -> index of the fragment that gave it
    for index, fragment in enumerate(fragments):
        if not isinstance(fragment.data, dict):
            problems.append(_problem_at(fragment.marks.get(()), (), "the top level must be a mapping "
                                        "(keys: name, images, networks, volumes, containers)"))
            continue
        owners.setdefault((), index)
        for key, value in fragment.data.items():
            _merge_key(data, owners, fragments, index, key, value, problems)
    marks: dict[tuple, Mark] = {}
    for index, fragment in enumerate(fragments):
        for path, mark in fragment.marks.items():
            owner = owners.get(path[:2]) if len(path) >= 2 and path[:2] in owners else owners.get(path[:1])
            if owner == index:
                marks[path] = mark
    return data, marks


def _merge_key(data: dict, owners: dict[tuple, int], fragments: list[_Fragment], index: int,
               key: str, value: Any, problems: list[Problem]) -> None:
    here = fragments[index]
    old = data.get(key)
    if key not in data:
        data[key] = dict(value) if key in SECTIONS and isinstance(value, dict) else value
        owners[(key,)] = index
        if key in SECTIONS and isinstance(value, dict):
            owners.update({(key, name): index for name in value})
    elif key in SECTIONS and isinstance(old, dict) and isinstance(value, dict):
        for name, item in value.items():
            path = (key, name)
            if name in old:
                first = _where(fragments[owners[path]], path)
                message = f"'{name}' is already defined in {first}"
                problems.append(_problem_at(here.marks.get(path), path, message))
            else:
                old[name] = item
                owners[path] = index
    elif key in SECTIONS and isinstance(old, dict):
        # Keep the malformed value, not the good one, so the schema reports it.
        data[key] = value
        owners[(key,)] = index
    elif key == "name" and old != value:
        first = _where(fragments[owners[(key,)]], (key,))
        message = f"stack name {value!r} differs from {old!r} in {first}"
        problems.append(_problem_at(here.marks.get((key,)), (key,), message))


def _where(fragment: _Fragment, path: tuple) -> str:
    mark = fragment.marks.get(path)
    return f"{fragment.file}:{mark.line}" if mark else str(fragment.file)


def _problem_at(mark: Mark | None, path: tuple, message: str) -> Problem:
    if mark is None:
        return Problem(message, path=format_path(path))
    return Problem(message, file=mark.file, line=mark.line, col=mark.col, path=format_path(path))


class _Walker:
    """Builds plain data from a node tree, recording marks and expanding aliases under a budget."""

    def __init__(self, file: str, on_string: Callable[[str], str]) -> None:
        self.file = file
        self.on_string = on_string
        self.marks: dict[tuple, Mark] = {}
        self.problems: list[Problem] = []
        self.nodes = 0
        self.active: set[int] = set()  # collections being built: meeting one again is a loop

    def value(self, node: Node, path: tuple, depth: int) -> Any:
        """Plain value of ``node`` at ``path``; raises _Refused for unsafe documents."""
        self._count(node, depth)
        self.marks[path] = self._mark(node)
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if id(node) in self.active:
            raise _at(node, "recursive alias: a value contains itself")
        expected = _MAP if isinstance(node, MappingNode) else _SEQ
        if node.tag != expected:
            return self._bad_tag(node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path, depth)
            return [self.value(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        finally:
            self.active.discard(id(node))

    def _count(self, node: Node, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _at(node, f"document expands to more than {MAX_NODES} nodes (alias bomb?)")
        if depth > MAX_DEPTH:
            raise _at(node, f"nesting is deeper than {MAX_DEPTH} levels once aliases are expanded")

    def _mark(self, node: Node) -> Mark:
        return Mark(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def _problem(self, node: Node, path: tuple, message: str) -> None:
        self.problems.append(_problem_at(self._mark(node), path, message))

    def _bad_tag(self, node: Node, path: tuple) -> None:
        tag = node.tag.replace(_T, "!!", 1)
        self._problem(node, path, f"tag '{tag}' is not allowed: only standard YAML types "
                                  "(strings, numbers, booleans, null, mappings, lists)")

    def _scalar(self, node: ScalarNode, path: tuple) -> Any:
        tag, text = node.tag, node.value
        try:
            if tag in _TEXT_TAGS:
                return self.on_string(text)
            if tag == _NULL:
                return None
            if tag == _BOOL:
                return _to_bool(text)
            if tag == _INT:
                return _to_int(text)
            if tag == _FLOAT:
                return _to_float(text)
            if tag == _MERGE:  # '<<' written as a value is just text
                return text
        except (ValueError, InterpolationError) as exc:
            self._problem(node, path, str(exc))
            return text
        return self._bad_tag(node, path)

    def _mapping(self, node: MappingNode, path: tuple, depth: int) -> dict:
        merged = self._merge_sources(node, path, depth)
        result: dict[str, Any] = {}
        key_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            self._count(key_node, depth + 1)
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in key_lines:
                message = f"duplicate key '{key}' (first defined at line {key_lines[key]})"
                self._problem(key_node, (*path, key), message)
                continue
            key_lines[key] = key_node.start_mark.line + 1
            result[key] = self.value(value_node, (*path, key), depth + 1)
        self.marks[path] = self._mark(node)  # merge sources were walked at this path too
        merged.update(result)
        return merged

    def _key(self, node: Node, path: tuple) -> str | None:
        if isinstance(node, ScalarNode) and node.tag in _KEY_TAGS:
            return node.value  # source text, so `80: x` is the key "80"
        if isinstance(node, ScalarNode) and node.tag not in (_NULL, _MERGE):
            self._bad_tag(node, path)
        else:
            self._problem(node, path, "mapping keys must be strings")
        return None

    def _merge_sources(self, node: MappingNode, path: tuple, depth: int) -> dict:
        """Values brought in by ``<<`` keys; earlier sources win, as YAML specifies."""
        sources: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                continue
            items = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for item in items:
                if isinstance(item, MappingNode):
                    sources.append(item)
                else:
                    self._problem(item, path, "'<<' merges a mapping or a list of mappings")
        merged: dict[str, Any] = {}
        # Walk the last source first so the winning source's marks are written last.
        for source in reversed(sources):
            value = self.value(source, path, depth)
            if isinstance(value, dict):
                merged.update(value)
        return merged


def _to_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"invalid boolean {text!r}: expected true or false")
    return lowered == "true"


def _to_int(text: str) -> int:
    sign, digits = (-1, text[1:]) if text.startswith("-") else (1, text.lstrip("+"))
    base = {"0x": 16, "0o": 8, "0b": 2}.get(digits[:2].lower(), 10)
    return sign * int(digits if base == 10 else digits[2:], base)


def _to_float(text: str) -> float:
    special = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}
    return special[text.lower()] if text.lower() in special else float(text)
