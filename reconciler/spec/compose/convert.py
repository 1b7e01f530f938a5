"""``reconcile convert``: the stack spec equivalent to a Compose project, as YAML text to keep.

The text holds the translated data exactly (applying it creates the same
containers, with the same config hashes, as applying the Compose files), with
comments: the Compose comments written just above a service, volume, network,
config or secret are carried above the entry it became, and each entry says
what the conversion changed (a value taken from the environment, a bare image
name, the default network written out). Comments inside an entry are not
carried (plain PyYAML has no comment model; ruamel is not a dependency).

Interpolation has already happened: every ``$`` in the output is written
``$$`` so the stack loader reads back the same text.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ...model import Kind
from ..locations import format_path
from . import ComposeStack

__all__ = ["render_stack"]

# The order a converted file lists its sections in: the containers last, after all they use.
_SECTIONS = (Kind.IMAGE.section, Kind.VOLUME.section, Kind.NETWORK.section, "configs", "secrets",
             Kind.CONTAINER.section)
_SOURCE = {Kind.CONTAINER.section: "services"}  # our section → the Compose file's, where they differ
# Plain scalars a YAML 1.2 (core schema) reader would not read back as text: quote them.
_NOT_TEXT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)"
                       r"(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|true|True|TRUE|false|False"
                       r"|FALSE|null|Null|NULL|~|)$")


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key, text that stays text."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    style = "'" if _NOT_TEXT.match(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def render_stack(stack: ComposeStack) -> str:
    """The translated spec as commented YAML text."""
    data = _escaped(stack.translation.data)
    notes = _notes_by_entry(stack)
    files = ", ".join(p.name for p in stack.project.files)
    lines = [f"# Converted by 'reconcile convert' from {files} (Compose project {stack.project.name!r}).",
             "# Values are interpolated: variables were read from the environment and .env when converted."]
    lines += [f"# {note}" for note in notes.get((), [])]
    lines.append(_dump({"name": data["name"]}).rstrip())
    comments = _SourceComments(stack)
    for section in _SECTIONS:
        entries = data.get(section)
        if not entries:
            continue
        lines += ["", f"{section}:"]
        for key, value in entries.items():
            for comment in comments.above((_SOURCE.get(section, section), key)):
                lines.append("  " + comment)
            for note in notes.get((section, key), []):
                lines.append(f"  # converted: {note}")
            lines += ["  " + line for line in _dump({key: value}).rstrip().splitlines()]
    return "\n".join(lines) + "\n"


def _dump(value: Any) -> str:
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     width=1000)


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


def _notes_by_entry(stack: ComposeStack) -> dict[tuple, list[str]]:
    """The conversion's notes grouped by the entry (section, key) they are about; () for the whole file."""
    grouped: dict[tuple, list[str]] = {}
    for path, note in stack.translation.notes:
        entry = tuple(path[:2])
        detail = format_path(path[2:])
        grouped.setdefault(entry, []).append(f"{detail}: {note}" if detail else note)
    return grouped


class _SourceComments:
    """Comment lines written just above an entry's key in the Compose files."""

    def __init__(self, stack: ComposeStack) -> None:
        self.marks = stack.project.marks
        self.lines: dict[str, list[str]] = {}

    def above(self, path: tuple) -> list[str]:
        mark = self.marks.get(path)
        if mark is None:
            return []
        lines = self._lines(mark.file)
        key = re.compile(rf"^\s*['\"]?{re.escape(str(path[-1]))}['\"]?\s*:")
        at = next((i for i in range(min(mark.line, len(lines)) - 1, max(mark.line - 3, -1), -1)
                   if key.match(lines[i])), None)
        if at is None:
            return []
        found = []
        for line in reversed(lines[:at]):
            if not line.strip().startswith("#"):
                break
            found.append(line.strip())
        return found[::-1]

    def _lines(self, file: str) -> list[str]:
        if file not in self.lines:
            try:
                self.lines[file] = Path(file).read_text(encoding="utf-8-sig").splitlines()
            except (OSError, UnicodeDecodeError):
                self.lines[file] = []
        return self.lines[file]
