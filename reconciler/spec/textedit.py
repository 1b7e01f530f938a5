"""Change one value's text in a YAML file and leave every other character as it was.

Why text and not trees: image automation commits a new tag back to the
user's repository, and a person reviews that commit. Loading the YAML and
dumping it again would drop comments, reorder keys, requote strings and
reindent blocks, so the diff would be noise around one real change
(DESIGN.md: "Write-back edits text, not trees"). Instead the scalar that the
loader located at file:line:col is found again in the text, checked to be
the value expected and written literally, and only its characters are
replaced, in the style it was written in. Everything outside its span stays:
CRLF line ends, a byte order mark, tabs, trailing spaces, comments on the
same line, a missing final newline.

A value that is not written literally is refused (``EditRefused``): a
``${TAG}`` (the variable is what to change), a double-quoted scalar with
escapes, a block scalar, a plain scalar folded over several lines, an
alias, an anchored or tagged value. The result is read back twice before it
is returned: by PyYAML's events (the scalar at the same place holds the new
value, in the same style) and by the project's own reader (a plain value
still reads as that string, so ``1.10`` or ``true`` get quoted).

Pure: text in, text out. The events of the loader's own parser locate the
scalar: their marks carry its line and column as the loader recorded them,
and its character offsets in the text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml import events

from ..errors import Problem, SpecError

__all__ = ["EditRefused", "replace_value"]

#: ``$`` followed by a name or a brace: interpolation, as ``reconciler.spec.interpolate`` reads it.
_VARIABLE = re.compile(r"\$(\{|[A-Za-z_])")
#: Characters a one-line quoted scalar cannot hold as they are.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029\ufeff]")
_MISSING = object()
#: The loader's own parser (libyaml where PyYAML has it), so that what the loader reads, this reads alike (tabs
#: between tokens, for one, which PyYAML's Python parser refuses).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class EditRefused(SpecError):
    """The value at a file:line:col cannot be edited as text; the message names the place and why.

    ``reason`` is the why alone. A value that is not the ``old`` expected means the file moved on since its
    positions were read: read it again and compute the edit anew.
    """

    def __init__(self, filename: str, line: int, col: int, reason: str) -> None:
        super().__init__(Problem(reason, file=filename, line=line, col=col))
        self.filename, self.line, self.col, self.reason = filename, line, col, reason


@dataclass(frozen=True)
class _Found:
    """The event that starts at the place asked, its path in the document, and whether it is a mapping key."""

    event: events.Event
    path: tuple | None
    is_key: bool


def replace_value(text: str, line: int, col: int, old: str, new: str, *, filename: str = "<spec>") -> str:
    """``text`` with the scalar that starts at ``line``:``col`` (1-based, the loader's marks; for a quoted
    scalar, its opening quote or the first character after it, as ``ImageSpec.ref_at``) changed from ``old``
    to ``new`` in the same style; every character outside the scalar's span is kept.

    Plain stays plain unless ``new`` would not read back as the same string (then it is single-quoted);
    single- and double-quoted values keep their quotes. ``old == new`` returns ``text`` unchanged. Raises
    ``EditRefused`` when no scalar starts there, when it does not hold ``old`` (the file changed: read it
    again), or when its text is not literally its value (interpolation, escapes, block or multi-line scalars,
    aliases, anchors, tags).
    """
    def refuse(reason: str) -> EditRefused:
        return EditRefused(filename, line, col, reason)

    found = _find(text, line, col, refuse)
    event = found.event
    # libyaml counts a byte order mark in no index; PyYAML's Python parser does.
    shift = 1 if text.startswith("\ufeff") and _LOADER is not yaml.SafeLoader else 0
    start, end = event.start_mark.index + shift, event.end_mark.index + shift
    _check_literal(found, text[start:end], refuse)
    if event.value != old:
        raise refuse(f"holds {event.value!r}, not {old!r}: the file changed since it was read; read it again")
    if old == new:
        return text
    if _UNPRINTABLE.search(new):
        raise refuse(f"{new!r} cannot be written on one line as a YAML string")
    styles = [None, "'"] if _style(event) is None else [_style(event)]
    for style in styles:
        edited = text[:start] + _spelled(new, style) + text[end:]
        if _reads_back(edited, line, col, new, style, found.path, filename):
            return edited
    raise refuse(f"{new!r} does not read back as the same string when written here")


def _find(text: str, line: int, col: int, refuse) -> _Found:
    """The event starting at ``line``:``col``, with its path (keys and indices; None under a complex key)."""
    frames: list[list[Any]] = []  # [kind, position]: for a mapping, position is the key seen (or _MISSING)
    collection: _Found | None = None  # a block collection starts where its first key or item does
    try:
        stream = list(yaml.parse(text, Loader=_LOADER))  # the whole file parses, or nothing is edited
    except yaml.YAMLError as exc:
        raise refuse(f"is in a file that is not valid YAML ({str(exc).splitlines()[0]})") from None
    for event in stream:
        is_node = isinstance(event, (events.ScalarEvent, events.AliasEvent, events.CollectionStartEvent))
        if not is_node:
            if isinstance(event, events.CollectionEndEvent):
                frames.pop()
                _advance(frames, None)
            continue
        is_key = bool(frames) and frames[-1][0] == "map" and frames[-1][1] is _MISSING
        at = (event.start_mark.line + 1, event.start_mark.column + 1)
        if at == (line, col) or (at == (line, col - 1) and _quoted(event)):
            here = _Found(event, _path(frames, is_key), is_key)
            if not isinstance(event, events.CollectionStartEvent):
                return here
            collection = collection or here
        elif collection is not None:
            return collection
        if isinstance(event, events.CollectionStartEvent):
            frames.append(["map", _MISSING] if isinstance(event, events.MappingStartEvent) else ["seq", 0])
        else:
            _advance(frames, event.value if isinstance(event, events.ScalarEvent) else None)
    if collection is not None:
        return collection
    raise refuse("no value starts here")


def _quoted(event: events.Event) -> bool:
    """A quoted scalar whose mark is its opening quote: its text starts one column later (``ImageSpec.ref_at``
    points there), and that place names it too."""
    return (isinstance(event, events.ScalarEvent) and _style(event) in ("'", '"')
            and event.anchor is None and event.tag is None)


def _advance(frames: list[list[Any]], key: Any) -> None:
    """A node ended inside the innermost collection: move to its next key, value or item."""
    if not frames:
        return
    frame = frames[-1]
    if frame[0] == "seq":
        frame[1] += 1
    elif frame[1] is _MISSING:
        frame[1] = key if isinstance(key, str) else None  # None: a key the path cannot name
    else:
        frame[1] = _MISSING


def _path(frames: list[list[Any]], is_key: bool) -> tuple | None:
    """Where the node about to start is, as the loader's paths name it; None when a step is a complex key."""
    steps = [frame[1] for frame in frames]
    if is_key or any(step is None for step in steps):
        return None
    return tuple(steps)


def _check_literal(found: _Found, source: str, refuse) -> None:
    """Refuse a node that is not a scalar whose text is exactly its value on one line."""
    event = found.event
    style = _style(event) if isinstance(event, events.ScalarEvent) else None
    if isinstance(event, events.AliasEvent):
        raise refuse(f"is an alias (*{event.anchor}) of a value written elsewhere: change that one")
    if isinstance(event, events.CollectionStartEvent):
        kind = "mapping" if isinstance(event, events.MappingStartEvent) else "list"
        raise refuse(f"a {kind} starts here, not a single value")
    if found.is_key:
        raise refuse("is a mapping key, not a value")
    if event.anchor is not None:
        raise refuse(f"is anchored (&{event.anchor}): its aliases would change too; edit it by hand")
    if event.tag is not None:
        tag = event.tag.replace("tag:yaml.org,2002:", "!!")
        raise refuse(f"is written with the tag {tag}: edit it by hand")
    if style in ("|", ">"):
        raise refuse(f"is a block scalar ({style}): edit it by hand")
    if event.start_mark.line != event.end_mark.line:
        raise refuse("is written over several lines: edit it by hand")
    if "$$" in event.value:
        raise refuse("holds an escaped '$$', which interpolation reads as '$': edit it by hand")
    if _VARIABLE.search(event.value):
        raise refuse("is written with ${…}: change the variable instead")
    if style == '"' and "\\" in source:
        raise refuse("is a double-quoted string with escapes: edit it by hand")
    inner = source if style is None else source[1:-1]
    if (inner.replace("''", "'") if style == "'" else inner) != event.value:
        raise refuse("is not written literally: edit it by hand")


def _style(event: events.ScalarEvent) -> str | None:
    """A scalar's style: None for plain (libyaml says '', PyYAML's Python parser None), or its quote or block."""
    return event.style or None


def _spelled(value: str, style: str | None) -> str:
    """``value`` as a one-line scalar's text in ``style`` (None: plain)."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"':
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def _reads_back(text: str, line: int, col: int, value: str, style: str | None, path: tuple | None,
                filename: str) -> bool:
    """Whether ``text`` holds ``value`` at ``line``:``col`` in ``style``, and the project's reader reads the
    string ``value`` at ``path`` (a plain value only: a quoted one is always a string)."""
    try:
        event = _find(text, line, col, lambda reason: ValueError(reason)).event
    except (ValueError, EditRefused):
        return False
    if not isinstance(event, events.ScalarEvent) or event.value != value or _style(event) != style:
        return False
    if style is not None:
        return True
    if path is None:
        return False  # cannot tell how the reader types it: quote it
    from .yamlwalk import compose_plain

    try:
        data = compose_plain(text, filename, merge_tags=True)[0]
    except SpecError:
        return False
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return False
    return data == value and isinstance(data, str)
