"""Whether spec paths name a Compose project, judged cheaply from the files' text.

Kept apart from ``reconciler.spec.compose`` so that loading a stack spec (the
common case, a no-op apply included) never imports the Compose reader.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DEFAULT_FILES", "OVERRIDE_FILES", "find_files"]

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE_FILES = ("compose.override.yaml", "compose.override.yml",
                  "docker-compose.override.yaml", "docker-compose.override.yml")
MAX_FILE_BYTES = 1024 * 1024


def find_files(paths: Sequence[str | Path]) -> list[Path] | None:
    """The Compose files ``paths`` name, or None when they are not a Compose project.

    A file is Compose when its top level has ``services:`` and no
    ``containers:``. A directory is a Compose project when it holds one of
    ``DEFAULT_FILES`` (the first found, then its override file) and no stack file.
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


def _directory_files(directory: Path) -> list[Path] | None:
    main = next((directory / n for n in DEFAULT_FILES if (directory / n).is_file()), None)
    if main is None or not _looks_like_compose(main):
        return None
    others = [p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()
              and p.name not in DEFAULT_FILES + OVERRIDE_FILES and not p.name.startswith(".")]
    if any(not _looks_like_compose(p) for p in others):
        return None  # a stack directory that happens to hold a compose file too: the stack loader's
    override = next((directory / n for n in OVERRIDE_FILES if (directory / n).is_file()), None)
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
