"""Files and folders only this user may touch: the rules every private store shares.

The state database, the lock files, the cache, the docker plugin's configs
and secrets and the hostdir markers live in places another user may reach
first (a shared temp or lock folder, a home someone else can write to). What
keeps a planted link or file from turning our writes against us, or our reads
into someone else's words, is written here once:

- a private folder is made 0700, is refused when it is a symbolic link, not a
  folder, or another user's, and an existing one is tightened to 0700
  (``private_dir``; ``open_private_dir`` walks a tree by descriptors). A
  folder others use too (a lock folder such as ``/run/lock``) may be root's,
  and writable by others with the sticky bit, and keeps its mode (``shared``);
- a new file is made 0600 under a temporary name and appears whole, by a link
  (``create_private``, which never opens an existing file) or a rename
  (``write_private``), never written through a symbolic link;
- a file read back decides something only when this user owns it and no one
  else may write it (``read_trusted``).
"""
from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

__all__ = ["NotPrivate", "create_private", "dir_problem", "open_private_dir", "private_dir", "read_trusted",
           "write_private"]


class NotPrivate(Exception):
    """A path that may not hold private files; the message is the reason, as a clause ("is a symbolic link").

    ``owner`` is the uid of another user who owns it, when that is the reason.
    """

    def __init__(self, reason: str, *, owner: int | None = None) -> None:
        super().__init__(reason)
        self.owner = owner


def dir_problem(info: os.stat_result, *, shared: bool = False) -> NotPrivate | None:
    """Why a folder with this ``lstat``/``fstat`` may not hold our private files, or None when it may.

    A private folder must be this user's. A ``shared`` one may also be root's,
    and writable by others only with the sticky bit, which keeps them from
    replacing our files in it.
    """
    if stat.S_ISLNK(info.st_mode):
        return NotPrivate("is a symbolic link")
    if not stat.S_ISDIR(info.st_mode):
        return NotPrivate("is not a directory")
    if info.st_uid not in ((os.geteuid(), 0) if shared else (os.geteuid(),)):
        return NotPrivate(f"is owned by another user (uid {info.st_uid})", owner=info.st_uid)
    if shared and info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
        return NotPrivate(f"is writable by others without the sticky bit (mode {stat.S_IMODE(info.st_mode):o})")
    return None


def private_dir(path: Path, *, shared: bool = False) -> None:
    """Make ``path`` and its parents (``path`` itself 0700), or check the folder there (see ``dir_problem``).

    An existing private folder that others may read is tightened to 0700; a
    ``shared`` one keeps its mode. Raises ``NotPrivate`` for a folder refused,
    ``OSError`` when it cannot be made or looked at.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(path)
    problem = dir_problem(info, shared=shared)
    if problem is not None:
        raise problem
    if not shared and info.st_mode & 0o077:
        os.chmod(path, 0o700)


def open_private_dir(name: str, *, dir_fd: int | None = None) -> int:
    """A descriptor of the private folder ``name`` (in ``dir_fd``), made 0700 if missing, tightened if not.

    Opened without following a symbolic link, so a tree walked level by level
    from descriptors never leaves it. Raises ``OSError`` when the folder cannot
    be made, ``NotPrivate`` when it cannot be opened as one (a link, a file: the
    reason is the system's) or belongs to another user. The caller closes it.
    """
    try:
        os.mkdir(name, 0o700, dir_fd=dir_fd)
    except FileExistsError:
        pass
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError as exc:
        raise NotPrivate(exc.strerror or str(exc)) from exc
    info = os.fstat(fd)
    problem = dir_problem(info)
    if problem is not None:
        os.close(fd)
        raise problem
    if info.st_mode & 0o077:
        os.fchmod(fd, 0o700)
    return fd


def create_private(path: Path) -> bool:
    """Make the empty file ``path`` with mode 0600 unless it exists; True when this call made it.

    No descriptor is ever opened on an existing file: closing one drops every
    POSIX lock this process holds on the file. For the state database that
    includes those of another thread's SQLite connection; another process
    closing its last connection would then take itself for the last user,
    checkpoint and delete the WAL while that connection still writes to it:
    its later commits would be lost, or the file reported malformed. So a new
    file is made under a temporary name, closed, then linked into place: no
    descriptor is open on it by the time anyone can see it. Raises
    ``NotPrivate`` when ``path`` is a symbolic link, ``OSError`` when the file
    cannot be made.
    """
    if os.path.islink(path):
        raise NotPrivate("is a symbolic link")
    if os.path.exists(path):
        return False
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    os.close(os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False  # another process or thread made it first
    finally:
        os.unlink(temporary)
    return True


def write_private(path: str | Path, data: bytes, *, dir_fd: int | None = None, mode: int = 0o600,
                  owner: tuple[int, int] | None = None, sync: bool = False) -> None:
    """Write ``data`` to ``path`` (in ``dir_fd``) whole or not at all, never through a symbolic link.

    The data goes to a new file (0600) under a temporary name, which gets
    ``owner`` (uid, gid) and ``mode`` (a config a container reads may be 0444)
    and, with ``sync``, reaches the disk, before it is renamed over ``path``.
    Raises ``OSError``; the temporary file is gone then.
    """
    folder, name = os.path.split(os.fspath(path))
    temporary = os.path.join(folder, f".{name}.{os.urandom(4).hex()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if owner is not None and owner != (os.geteuid(), os.getegid()):
                os.fchown(fd, *owner)
            os.fchmod(fd, mode)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError:
        try:
            os.unlink(temporary, dir_fd=dir_fd)
        except OSError:
            pass
        raise


def read_trusted(path: Path) -> bytes | None:
    """The file's bytes when this user owns it and no one else may write it; else (or unreadable) None.

    For data that decides what a run does (modules to import, a spec's data):
    a file another user could have written is never believed.
    """
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if info.st_uid != os.geteuid() or info.st_mode & 0o022:
                return None
            return handle.read()
    except OSError:
        return None
