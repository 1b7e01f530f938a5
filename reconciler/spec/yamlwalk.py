"""PyYAML's side of ``yamlsafe``: one file's text to plain data and the position of every value.

Only ``yamlsafe`` calls it, and only when its cache does not already hold the
file's text, so a command reading specs it has read before never imports
PyYAML. See ``yamlsafe`` for what is refused and why.
"""
from __future__ import annotations

import math
import re
from typing import Any

import yaml
from yaml import events
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..errors import Problem, SpecError
from .locations import KEY, Mark, problem_at

__all__ = ["MAX_ALIASES", "MAX_DEPTH", "MAX_NODES", "compose_plain"]

MAX_ALIASES = 100
MAX_NODES = 100_000
# Real specs nest about six levels; the bound keeps recursion far from Python's limit.
MAX_DEPTH = 100

_T = "tag:yaml.org,2002:"
_INT, _FLOAT, _BOOL, _NULL = (_T + n for n in ("int", "float", "bool", "null"))
_MAP, _SEQ, _MERGE = _T + "map", _T + "seq", _T + "merge"
# Timestamps and the '=' value key stay text: nothing in a spec wants a datetime.
_TEXT_TAGS = {_T + "str", _T + "timestamp", _T + "value"}
_KEY_TAGS = _TEXT_TAGS | {_INT, _FLOAT, _BOOL}


def compose_plain(text: str, filename: str, *, merge_tags: bool = False
                  ) -> tuple[Any, dict[tuple, Mark], dict[tuple, str], list[Problem]]:
    """(data, marks, merge tags, problems) of the single YAML document in ``text``, strings as written.

    ``merge_tags`` accepts Compose's two tags, ``!reset`` and ``!override``,
    on a mapping's value or a list's item (anywhere else, and without it, a tag
    is refused like any other): a ``!reset`` value is left out of the data, an
    ``!override`` value is read as if untagged, and the path of each is
    returned with ``"reset"`` or ``"override"`` for the Compose merge to apply.
    Raises SpecError, listing the reason and any problems found before it,
    when the file is unusable as a whole: invalid YAML, more than one
    document, or over the nesting, alias or node limits.
    """
    walker = _Walker(filename, merge_tags)
    try:
        _check_events(text)
        node = _compose(text)
        data = walker.value(node, (), 0) if node is not None else None
    except _Refused as exc:
        refusal = Problem(str(exc), file=filename, line=exc.line, col=exc.col)
        raise SpecError([refusal, *walker.problems]) from exc
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_syntax_problem(filename, exc, text), *walker.problems]) from exc
    except yaml.YAMLError as exc:  # e.g. a control character: no line to point at
        raise SpecError([Problem(f"invalid YAML: {exc}", file=filename), *walker.problems]) from exc
    return data, walker.marks, walker.tags, walker.problems


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


class _Resolver(yaml.resolver.Resolver):
    """The implicit type of a scalar as ``_Loader`` resolves it: for a value whose tag was ``!override``."""

    yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers


_RESOLVER = _Resolver()


class _Refused(Exception):
    """The file is unsafe or unusable as a whole; carries where and why."""

    def __init__(self, message: str, line: int = 0, col: int = 0) -> None:
        super().__init__(message)
        self.line = line
        self.col = col


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
    except yaml.MarkedYAMLError as exc:
        # libyaml (PyYAML >= 6.0.4) has a nesting limit of its own, met while it
        # reads ahead, before the events that would cross ours arrive.
        if "nesting depth" not in str(exc.problem or ""):
            raise
        raise _at(exc, f"nesting is deeper than {MAX_DEPTH} levels") from exc
    finally:
        loader.dispose()


def _at(item: Any, message: str) -> _Refused:
    mark = getattr(item, "start_mark", None) or item.problem_mark
    return _Refused(message, mark.line + 1, mark.column + 1)


def _compose(text: str) -> Node | None:
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _syntax_problem(file: str, exc: yaml.MarkedYAMLError, text: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    message = f"invalid YAML: {exc.problem or exc.context}"
    if _char_at(exc.problem_mark, text) == "\t":  # PyYAML only says "found character that cannot start any token"
        message = "invalid YAML: a tab character: YAML indents with spaces, never tabs"
    elif exc.context and exc.problem:
        where = f" at line {exc.context_mark.line + 1}" if exc.context_mark else ""
        message += f" ({exc.context}{where})"
    line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    return Problem(message, file=file, line=line, col=col)


def _char_at(mark, text: str) -> str:
    """The character of ``text`` a PyYAML mark points at ("" for none: libyaml's marks hold no buffer)."""
    if mark is None:
        return ""
    lines = text.splitlines()
    line = lines[mark.line] if 0 <= mark.line < len(lines) else ""
    return line[mark.column] if 0 <= mark.column < len(line) else ""


class _Walker:
    """Builds plain data from a node tree, recording marks and expanding aliases under a budget."""

    def __init__(self, file: str, merge_tags: bool = False) -> None:
        self.file = file
        self.merge_tags = merge_tags
        self.marks: dict[tuple, Mark] = {}
        self.tags: dict[tuple, str] = {}  # path -> "reset" / "override", with merge_tags
        self.problems: list[Problem] = []
        self.nodes = 0
        self.active: set[int] = set()  # collections being built: meeting one again is a loop

    def value(self, node: Node, path: tuple, depth: int) -> Any:
        """Plain value of ``node`` at ``path``; raises _Refused for unsafe documents."""
        self._count(node, depth)
        self.marks[path] = self._mark(node)
        tag = node.tag
        if path and self.merge_tags and tag == "!override":
            self.tags[path] = "override"
            tag = _untagged(node)
        if isinstance(node, ScalarNode):
            return self._scalar(node, tag, path)
        if id(node) in self.active:
            raise _at(node, "recursive alias: a value contains itself")
        expected = _MAP if isinstance(node, MappingNode) else _SEQ
        if tag != expected:
            return self._bad_tag(node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path, depth)
            return self._sequence(node, path, depth)
        finally:
            self.active.discard(id(node))

    def _reset(self, node: Node, path: tuple) -> bool:
        """Whether ``node`` is a ``!reset`` value (then left out, its path noted for the merge)."""
        if self.merge_tags and node.tag == "!reset":
            self.tags[path] = "reset"
            return True
        return False

    def _sequence(self, node: SequenceNode, path: tuple, depth: int) -> list:
        items: list[Any] = []
        for item in node.value:
            if not self._reset(item, (*path, len(items))):
                items.append(self.value(item, (*path, len(items)), depth + 1))
        return items

    def _count(self, node: Node, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _at(node, f"document expands to more than {MAX_NODES} nodes (alias bomb?)")
        if depth > MAX_DEPTH:
            raise _at(node, f"nesting is deeper than {MAX_DEPTH} levels once aliases are expanded")

    def _mark(self, node: Node) -> Mark:
        return Mark(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def _problem(self, node: Node, path: tuple, message: str) -> None:
        self.problems.append(problem_at(self._mark(node), path, message))

    def _bad_tag(self, node: Node, path: tuple) -> None:
        tag = node.tag.replace(_T, "!!", 1)
        self._problem(node, path, f"tag '{tag}' is not allowed: only standard YAML types "
                                  "(strings, numbers, booleans, null, mappings, lists)")

    def _scalar(self, node: ScalarNode, tag: str, path: tuple) -> Any:
        text = node.value
        try:
            if tag in _TEXT_TAGS:
                return text
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
        except ValueError as exc:  # bad numbers and booleans
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
            if self._reset(value_node, (*path, key)):
                continue
            self.marks[(*path, key, KEY)] = self._mark(key_node)
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


def _untagged(node: Node) -> str:
    """The tag ``node`` would have had written without one (``!override 80`` is the number 80)."""
    if isinstance(node, ScalarNode):
        plain = node.style in (None, "")  # libyaml writes a plain style as ""
        return _RESOLVER.resolve(ScalarNode, node.value, (plain, not plain))
    return _MAP if isinstance(node, MappingNode) else _SEQ


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
