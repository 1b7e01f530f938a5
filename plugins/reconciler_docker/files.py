"""Configs and secrets as files on the engine's host, bind-mounted read-only into containers.

The engine has no config or secret object outside Swarm, so the runtime
driver writes each one as a file before it creates a container that mounts
it, and removes the files no container of the stack mounts any more.

Where: ``<root>/<stack>/configs/`` and ``<root>/<stack>/secrets/`` (``<stack>@<hash
of the engine URL>`` for an engine other than the default socket, so two
local engines running one stack name never prune each other's files), the root
being ``RECONCILER_FILES_DIR``, else ``/run/reconciler`` (a tmpfs on Debian,
so a secret never reaches a disk) when it can be made there, else
``$XDG_RUNTIME_DIR/reconciler``, else ``<tmp>/reconciler-<uid>``. Every
directory is 0700 and must belong to the user running the reconciler: the
container needs none of them (the engine mounts the file itself).

A file's name carries what makes it distinct, ``<name>-<sha256[:16]>-<uid>-<gid>-<mode>``,
so two containers wanting the same config with different owners never share a
file, a container being replaced keeps its old file until it is gone, and the
plan can name the content a running container sees. Files are written to a
temporary name and renamed into place, owner and mode set before the rename.

A bind mount names a path on the *engine's* host: this works only when the
engine runs on this machine (``unix://``); a remote engine is refused.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from reconciler.sdk import FileMount, NotPrivate, PermanentError, open_private_dir, write_private

__all__ = ["FILES_DIR_ENV", "FileStore", "files_root", "is_local_engine", "parse_file_name"]

FILES_DIR_ENV = "RECONCILER_FILES_DIR"
_SYSTEM_ROOT = Path("/run/reconciler")
_KIND_DIRS = {"config": "configs", "secret": "secrets"}
_LOCAL_SCHEMES = ("unix", "npipe")
_DEFAULT_ENGINE = "unix:///var/run/docker.sock"


def is_local_engine(url: str | None) -> bool:
    """Whether the engine at ``url`` (None: ``DOCKER_HOST``, else the local socket) shares this host's files."""
    url = _engine(url)
    scheme = url.partition("://")[0] if "://" in url else "unix"
    return scheme in _LOCAL_SCHEMES


def _engine(url: str | None) -> str:
    return url or os.environ.get("DOCKER_HOST") or _DEFAULT_ENGINE


def files_root() -> Path:
    """The directory under which every stack's files live (see the module docstring)."""
    configured = os.environ.get(FILES_DIR_ENV)
    if configured:
        return Path(configured).expanduser().absolute()
    if _SYSTEM_ROOT.is_dir() and _SYSTEM_ROOT.stat().st_uid == os.geteuid():
        return _SYSTEM_ROOT
    if not _SYSTEM_ROOT.exists() and os.access(_SYSTEM_ROOT.parent, os.W_OK):
        return _SYSTEM_ROOT
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "reconciler"
    return Path(tempfile.gettempdir()) / f"reconciler-{os.geteuid()}"


def parse_file_name(name: str) -> tuple[str, str] | None:
    """``(config or secret name, short content hash)`` from a file name this module made, else None."""
    parts = name.rsplit("-", 4)
    if len(parts) != 5 or len(parts[1]) != 16:
        return None
    return parts[0], parts[1]


class FileStore:
    """One stack's materialized configs and secrets."""

    def __init__(self, stack: str, *, engine: str | None = None, root: Path | None = None) -> None:
        if not stack or "/" in stack or stack in (".", ".."):
            raise PermanentError(f"stack name {stack!r} cannot name a directory for its configs and secrets")
        self.root = root or files_root()
        url = _engine(engine)
        name = stack if url == _DEFAULT_ENGINE else f"{stack}@{hashlib.sha256(url.encode()).hexdigest()[:8]}"
        self.dir = self.root / name

    def path_of(self, mount: FileMount) -> str:
        """Where ``mount``'s file is (or will be) on this host."""
        uid, gid = _owner(mount)
        name = f"{mount.name}-{mount.content_hash[:16]}-{uid}-{gid}-{mount.mode:04o}"
        return str(self.dir / _KIND_DIRS[mount.kind] / name)

    def write(self, mount: FileMount) -> str:
        """Write ``mount``'s file (atomically, with its owner and mode); return its path."""
        path = self.path_of(mount)
        uid, gid = _owner(mount)
        with _private_dir(self.root, self.dir.name, _KIND_DIRS[mount.kind]) as fd:
            _write_file(fd, os.path.basename(path), mount.content.reveal(), uid, gid, mount.mode, what=path)
        return path

    def exists(self) -> bool:
        return self.dir.is_dir()

    def prune(self, keep: Iterable[str]) -> list[str]:
        """Remove every file of the stack whose path is not in ``keep``; return what was removed.

        Directories left empty go too. Only regular files are removed (a symlink
        is unlinked, never followed), and only inside directories that pass the
        same ownership checks as when writing.
        """
        keep = set(keep)
        removed = []
        if not self.exists():
            return removed
        for kind_dir in _KIND_DIRS.values():
            if not (self.dir / kind_dir).is_dir():
                continue
            with _private_dir(self.root, self.dir.name, kind_dir) as fd:
                for entry in os.listdir(fd):
                    path = str(self.dir / kind_dir / entry)
                    if path not in keep and _unlink(fd, entry, path):
                        removed.append(path)
                empty = not os.listdir(fd)
            if empty:
                _rmdir(self.dir / kind_dir)
        if self.dir.is_dir() and not any(self.dir.iterdir()):
            _rmdir(self.dir)
        return removed


def _owner(mount: FileMount) -> tuple[int, int]:
    """The file's uid and gid: as asked, else root when running as root, else this process's own."""
    root = os.geteuid() == 0
    uid = mount.uid if mount.uid is not None else (0 if root else os.geteuid())
    gid = mount.gid if mount.gid is not None else (0 if root else os.getegid())
    return uid, gid


@contextmanager
def _private_dir(root: Path, *names: str) -> Iterator[int]:
    """Open ``root/name/…`` (made as needed), checking each level; yield the last one's fd.

    Each level is opened relative to its parent without following a symlink,
    must be a directory owned by this user, and is made private (0700).
    """
    fds: list[int] = []
    try:
        try:
            root.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PermanentError(f"cannot make {root.parent} for configs and secrets: {exc.strerror or exc}") from None
        fds.append(_open_private(None, str(root)))
        for name in names:
            fds.append(_open_private(fds[-1], name))
        yield fds[-1]
    finally:
        for fd in reversed(fds):
            os.close(fd)


def _open_private(parent: int | None, name: str) -> int:
    where = name if parent is None else f"{name} (in the reconciler's files directory)"
    try:
        return open_private_dir(name, dir_fd=parent)
    except NotPrivate as exc:
        if exc.owner is not None:
            raise PermanentError(f"{where} belongs to uid {exc.owner}, not to the reconciler's user "
                                 f"({os.geteuid()}): refusing to keep configs and secrets there") from None
        raise PermanentError(f"{where} is not a directory the reconciler can use for configs and secrets "
                             f"(a symlink, or a file?): {exc}") from None
    except OSError as exc:
        raise PermanentError(f"cannot make the directory {where} for configs and secrets: "
                             f"{exc.strerror or exc}") from None


def _write_file(dir_fd: int, name: str, data: bytes, uid: int, gid: int, mode: int, *, what: str) -> None:
    try:
        write_private(name, data, dir_fd=dir_fd, mode=mode, owner=(uid, gid), sync=True)
    except OSError as exc:
        hint = " (only root can give a file to another user)" if exc.errno == 1 else ""
        raise PermanentError(f"cannot write {what} (owner {uid}:{gid}, mode {mode:04o}): "
                             f"{exc.strerror or exc}{hint}") from None


def _unlink(dir_fd: int, name: str, what: str) -> bool:
    try:
        os.unlink(name, dir_fd=dir_fd)
        return True
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        return False  # not one of ours: this module makes no directories there
    except OSError as exc:
        raise PermanentError(f"cannot remove {what}: {exc.strerror or exc}") from None


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass  # something appeared in it meanwhile, or it went already: either way, leave it
