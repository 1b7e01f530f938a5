"""Where a path is: inside a root or not, and which repository holds a file.

Several safety rules ask "is this path inside that folder?": a spec may read
and mount only what its repository holds, a git source's path may not leave
its checkout, a policy allows bind mounts below some roots, a hostdir volume
stays below the host's allowed roots, a watched build context covers the
files below it. Spelled each time (``commonpath``, ``startswith(root + "/")``,
``root in path.parents``), the rule differed in its corners (a trailing
slash, ``/`` as the root, a relative path); here it is written once.

``inside`` judges names as given: it neither resolves links nor touches the
disk. Where links matter, each caller resolves first (its own rule: both
sides, or only the path), so that a security check says in one place what it
trusts.
"""
from __future__ import annotations

import os
from pathlib import Path, PurePath

__all__ = ["inside", "repo_root"]


def inside(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """True when ``path`` is ``root`` or below it, comparing their names component by component.

    ``/srv/data`` is inside ``/srv`` and ``/``, not inside ``/sr``; a relative
    path is never inside an absolute root (nor the reverse). Empty and ``.``
    components and a trailing slash do not count; ``..`` is not resolved.
    """
    return PurePath(path).is_relative_to(PurePath(root))


def repo_root(path: Path) -> Path:
    """The repository holding the file ``path``: the nearest folder at or above the file's own that holds
    ``.git`` (a git work tree), else the file's folder. ``path`` is taken as given: resolve it first where
    links matter."""
    folder = Path(path).parent
    return next((d for d in (folder, *folder.parents) if (d / ".git").exists()), folder)
