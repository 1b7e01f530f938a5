"""Content hash of a build's inputs, so an image is rebuilt only when they changed.

The hash covers every file the engine would receive (the context minus what
``.dockerignore`` excludes: names, modes and contents), the Dockerfile, the
build args and the target. It is stored as a label on the built image.
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
from pathlib import Path
from typing import Iterator, Sequence

__all__ = ["build_hash", "context_files", "file_digest", "read_dockerignore"]


def read_dockerignore(context: Path) -> list[str]:
    """The patterns of ``context/.dockerignore`` (comments and blanks dropped)."""
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    patterns = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append(os.path.normpath(line.lstrip("/")) if not line.startswith("!") else line)
    return patterns


def _ignored(rel: str, patterns: Sequence[str]) -> bool:
    # Docker semantics: the last matching pattern wins; "!" re-includes.
    # A pattern matching a directory excludes everything below it.
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = os.path.normpath(pattern[1:].lstrip("/")) if negate else pattern
        if _matches(rel, pat):
            ignored = not negate
    return ignored


def _matches(rel: str, pattern: str) -> bool:
    if pattern.startswith("**/"):
        return any(_matches("/".join(rel.split("/")[i:]), pattern[3:]) for i in range(rel.count("/") + 1))
    parts = rel.split("/")
    return any(fnmatch.fnmatchcase("/".join(parts[: i + 1]), pattern) for i in range(len(parts)))


def context_files(context: Path) -> Iterator[Path]:
    """Files of the build context that the engine would receive, in a stable order."""
    patterns = read_dockerignore(context)
    for root, dirs, files in os.walk(context):
        dirs.sort()
        rel_root = Path(root).relative_to(context).as_posix()
        for name in sorted(files):
            rel = name if rel_root == "." else f"{rel_root}/{name}"
            if rel in (".dockerignore",) or not _ignored(rel, patterns):
                yield Path(root) / name


def build_hash(context: Path, dockerfile: str, args: Sequence[tuple[str, str]], target: str | None) -> str:
    """The sha256 of everything that determines the build's result."""
    digest = hashlib.sha256()
    digest.update(f"dockerfile={dockerfile}\0target={target or ''}\0".encode())
    for key, value in sorted(args):
        digest.update(f"arg:{key}={value}\0".encode())
    # The engine always receives the Dockerfile, even when .dockerignore names it.
    dockerfile_path = context / dockerfile
    if dockerfile_path.is_file():
        digest.update(dockerfile_path.read_bytes() + b"\0")
    for path in context_files(context):
        rel = path.relative_to(context).as_posix()
        digest.update(f"file:{rel}\0".encode())
        _update(digest, path)
    return digest.hexdigest()


def file_digest(path: Path) -> bytes:
    """The sha256 of one context file as the build hash reads it: its mode and content (a link: its target)."""
    digest = hashlib.sha256()
    _update(digest, path)
    return digest.digest()


def _update(digest, path: Path) -> None:
    digest.update(f"{path.lstat().st_mode:o}\0".encode())
    if path.is_symlink():
        digest.update(os.readlink(path).encode())
    else:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 16), b""):
                digest.update(chunk)
    digest.update(b"\0")
