"""Which files form a stack: the names looked for, a directory's spec files, and whether they are Compose.

One home for the rule, asked by every front end: ``reconcile`` given no
``-f`` reads ``default_files`` of the working directory; a directory given
with ``-f`` or named by a daemon's source is either a Compose project
(``find_files``: a ``compose.yaml`` or the like, its override file, and no
stack file) or a stack of all its ``*.yaml``/``*.yml`` files
(``directory_files``, which ``loader`` reads). Compose files are judged
cheaply from their text, so that loading a stack spec (the common case, a
no-op apply included) never imports the Compose reader.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

__all__ = ["COMPOSE_FILES", "DEFAULT_FILES", "OVERRIDE_FILES", "STACK_FILES", "default_files", "directory_files",
           "find_files"]

#: A stack spec's names, in order of preference.
STACK_FILES = ("stack.yaml", "stack.yml", "reconcile.yaml", "reconcile.yml")
#: The names ``docker compose`` looks for in a directory, in its order of preference.
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
#: The file ``docker compose`` reads over its default file, when there is one beside it.
OVERRIDE_FILES = ("compose.override.yaml", "compose.override.yml",
                  "docker-compose.override.yaml", "docker-compose.override.yml")
#: What a command given no spec reads, the first found: a stack spec before a Compose file.
DEFAULT_FILES = STACK_FILES + COMPOSE_FILES
MAX_FILE_BYTES = 1024 * 1024


def default_files(directory: Path) -> list[Path] | None:
    """The spec a command given none reads in ``directory``, or None when it holds none of ``DEFAULT_FILES``.

    The first of ``DEFAULT_FILES`` found; for a Compose file, with its override
    file, as ``docker compose`` without ``-f`` reads them.
    """
    found = _first(directory, DEFAULT_FILES, lambda p: p.exists())
    if found is None:
        return None
    override = _first(directory, OVERRIDE_FILES, lambda p: p.exists()) if found.name in COMPOSE_FILES else None
    return [found, override] if override else [found]


def directory_files(directory: Path) -> list[Path]:
    """A directory's spec files: its ``*.yaml``/``*.yml`` files, sorted by name, hidden ones left out
    (editors leave hidden backups)."""
    return sorted((p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()
                   and not p.name.startswith(".")), key=lambda p: p.name)


def find_files(paths: Sequence[str | Path]) -> list[Path] | None:
    """The Compose files ``paths`` name, or None when they are not a Compose project.

    A file is Compose when its top level has ``services:`` and no
    ``containers:``. A directory is a Compose project when it holds one of
    ``COMPOSE_FILES`` (the first found, then its override file) and no stack file.
    """
    found: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            files = _directory_files(given)
            if files is None:
                return None
            found += files
        elif given.is_file() and _looks_like_compose(given):
            found.append(given)
        else:
            return None
    return found or None


def _first(directory: Path, names: Sequence[str], present) -> Path | None:
    return next((directory / n for n in names if present(directory / n)), None)


def _directory_files(directory: Path) -> list[Path] | None:
    main = _first(directory, COMPOSE_FILES, Path.is_file)
    if main is None or not _looks_like_compose(main):
        return None
    others = [p for p in directory_files(directory) if p.name not in COMPOSE_FILES + OVERRIDE_FILES]
    if any(not _looks_like_compose(p) for p in others):
        return None  # a stack directory that happens to hold a compose file too: the stack loader's
    override = _first(directory, OVERRIDE_FILES, Path.is_file)
    return [main, override] if override else [main]


_TOP_KEY = re.compile(rb"^(services|containers)[ \t]*:", re.M)


def _looks_like_compose(file: Path) -> bool:
    """Top-level ``services:`` and no ``containers:``, judged from the text (a block key at column 0)."""
    try:
        with file.open("rb") as stream:
            head = stream.read(MAX_FILE_BYTES)
    except OSError:
        return False
    keys = {match.group(1) for match in _TOP_KEY.finditer(head)}
    return keys == {b"services"}
