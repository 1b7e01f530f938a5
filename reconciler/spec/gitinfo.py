"""Which git commit a spec came from, read from the repository's files (no git process).

Reports and notifications carry it, so "which revision is running" has an answer.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["spec_revision"]


def _git_dir(start: Path) -> Path | None:
    for folder in [start, *start.parents]:
        candidate = folder / ".git"
        if candidate.is_dir():
            return candidate
        if candidate.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = candidate.read_text().strip()
            if text.startswith("gitdir:"):
                return (folder / text.split(":", 1)[1].strip()).resolve()
    return None


def _resolve_ref(git_dir: Path, ref: str) -> str:
    for base in (git_dir, _common_dir(git_dir)):
        loose = base / ref
        if loose.is_file():
            return loose.read_text().strip()
        packed = base / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split(" ", 1)[0]
    return ""


def _common_dir(git_dir: Path) -> Path:
    common = git_dir / "commondir"
    return (git_dir / common.read_text().strip()).resolve() if common.is_file() else git_dir


def spec_revision(spec_file: str | Path) -> str:
    """The commit id checked out in the repository holding ``spec_file``, or "" outside git."""
    try:
        path = Path(spec_file).resolve()
        git_dir = _git_dir(path if path.is_dir() else path.parent)
        if git_dir is None:
            return ""
        head = (git_dir / "HEAD").read_text().strip()
        return _resolve_ref(git_dir, head[5:].strip()) if head.startswith("ref:") else head
    except OSError:
        return ""
