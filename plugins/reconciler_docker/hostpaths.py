"""Host directories for ``hostdir`` volumes: options, the paths refused, markers, making and removing.

No Docker here: ``reconcile validate`` checks a hostdir volume's options with
``option_problems`` without importing the engine's client.

What keeps a ``hostdir`` volume from deleting data it does not own:

- **system paths are refused** at validate: ``/``, the top-level directories
  of a standard Debian install (``/etc``, ``/usr``, ``/var``, ``/home``, ...),
  their standard children (``/usr/lib``, ``/var/log``, any ``/etc/*``, any
  ``/home/*``), ``/proc`` and ``/sys`` entirely, and the engine's own data.
  When ``RECONCILER_HOSTDIR_ROOTS`` is set (``/srv:/data``), any path outside
  those roots is refused too. The real path (symlinks resolved) is checked
  as well as the path written.
- **a marker** (``.reconciler-hostdir``, JSON naming the stack, the volume
  and the random id the core gave the volume, also in its
  ``io.reconciler.volume-id`` label) is written into each directory the
  driver creates. A directory is removed only when its marker names the
  volume being deleted: an engine label can be copied, a file inside a
  directory someone else made cannot be put there through the engine.
- **an existing directory** is used only when it carries this volume's marker,
  or when the volume says ``adopt: "true"``: then it is used as it is, gets no
  marker, and is never removed.
"""
from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
from dataclasses import dataclass
from typing import Iterable, Mapping

from reconciler.sdk import PermanentError, inside, write_private

__all__ = [
    "MARKER",
    "ROOTS_ENV",
    "HostDirOptions",
    "check_directory",
    "option_problems",
    "parse_mode",
    "parse_options",
    "parse_owner",
    "path_problems",
    "prepare_directory",
    "read_marker",
    "remove_directory",
]

OPTIONS = ("path", "owner", "mode", "adopt")
DEFAULT_MODE = 0o755
MARKER = ".reconciler-hostdir"
ROOTS_ENV = "RECONCILER_HOSTDIR_ROOTS"
_MODE = re.compile(r"^[0-7]{3,4}$")
_MAX_ID = 2**32 - 2  # (uid_t)-1 means "unchanged" to chown
_MAX_MARKER = 4096
_BOOLEANS = {"true": True, "false": False}

# A standard Debian install: the top-level directories, and the standard children of /usr and /var.
_TOP = ("bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "lost+found", "media", "mnt",
        "opt", "proc", "root", "run", "sbin", "srv", "sys", "tmp", "usr", "var")
_CHILDREN = {
    "/usr": ("bin", "games", "include", "lib", "lib32", "lib64", "libexec", "libx32", "local", "sbin", "share", "src"),
    "/var": ("backups", "cache", "lib", "local", "lock", "log", "mail", "opt", "run", "spool", "tmp"),
}
# Every child of these is a system path (config, boot files, device nodes, a user's home).
_ANY_CHILD = ("/etc", "/boot", "/dev", "/home")
# Nothing under these is ever a directory to keep data in.
_WHOLE_TREE = ("/proc", "/sys")
_ENGINE_DATA = ("/var/lib/docker", "/var/lib/containerd")
SYSTEM_PATHS = frozenset({"/", *(f"/{name}" for name in _TOP),
                          *(f"{parent}/{child}" for parent, children in _CHILDREN.items() for child in children),
                          *_ENGINE_DATA})


@dataclass(frozen=True)
class HostDirOptions:
    """Parsed options: an absolute path, numeric owner (-1: leave unchanged), mode bits, and adoption."""

    path: str
    uid: int = -1
    gid: int = -1
    mode: int = DEFAULT_MODE
    #: Use a directory that exists as it is: no marker, never removed.
    adopt: bool = False


def option_problems(options: Iterable[tuple[str, str]] | Mapping[str, str]) -> list[str]:
    """Everything wrong with a ``hostdir`` volume's options, as messages (empty: all fine)."""
    return _parse(options)[1]


def parse_options(options: Iterable[tuple[str, str]] | Mapping[str, str]) -> HostDirOptions:
    """Validate and parse ``path``, ``owner``, ``mode`` and ``adopt``; ``PermanentError`` names every problem.

    ``owner`` is ``USER[:GROUP]``, each a number or a name looked up on this
    host; ``mode`` is three or four octal digits (``"0750"``, ``"2775"``);
    ``adopt`` is ``true`` or ``false``.
    """
    parsed, problems = _parse(options)
    if problems:
        raise PermanentError("hostdir options: " + "; ".join(problems))
    return parsed


def _parse(options: Iterable[tuple[str, str]] | Mapping[str, str]) -> tuple[HostDirOptions, list[str]]:
    values = dict(options.items() if isinstance(options, Mapping) else options)
    # The hint names the options that shape the directory; ``adopt`` is documented with them.
    problems = [f"unknown option {key!r} (hostdir takes {', '.join(OPTIONS[:3])})"
                for key in sorted(values) if key not in OPTIONS]
    path = values.get("path", "")
    problems += path_problems(path)
    uid = gid = -1
    mode = DEFAULT_MODE
    try:
        if "owner" in values:
            uid, gid = parse_owner(values["owner"])
    except ValueError as exc:
        problems.append(str(exc))
    try:
        if "mode" in values:
            mode = parse_mode(values["mode"])
    except ValueError as exc:
        problems.append(str(exc))
    adopt = _BOOLEANS.get(str(values.get("adopt", "false")).lower())
    if adopt is None:
        problems.append(f"adopt {values['adopt']!r} must be true or false")
    return HostDirOptions(path=_normalize(path) if path else "", uid=uid, gid=gid, mode=mode,
                          adopt=bool(adopt)), problems


def _normalize(path: str) -> str:
    """``//srv/./data/`` → ``/srv/data`` (``os.path.normpath`` keeps a leading ``//``)."""
    return "/" + "/".join(part for part in path.split("/") if part not in ("", "."))


def path_problems(path: str, *, roots: str | None = None) -> list[str]:
    """Why ``path`` may not be a hostdir (empty: it may); ``roots`` defaults to ``$RECONCILER_HOSTDIR_ROOTS``."""
    if not path:
        return ["option 'path' is required: the host directory to create, such as /srv/app/data"]
    if not os.path.isabs(path):
        return [f"path {path!r} must be absolute"]
    if ".." in path.split("/"):
        return [f"path {path!r} must not contain '..'"]
    normal = _normalize(path)
    if normal == "/":
        return ["path must not be '/': deleting the volume deletes its directory"]
    real = os.path.realpath(normal)
    problems = [f"path {path!r} is {why}" for why in _refusals(normal)]
    if not problems and real != normal:
        problems = [f"path {path!r} resolves to {real}, which is {why}" for why in _refusals(real)]
    roots = os.environ.get(ROOTS_ENV, "") if roots is None else roots
    allowed = [_normalize(root) for root in roots.split(":") if root.strip()]
    if allowed and not any(inside(normal, root) and inside(os.path.realpath(normal), root) for root in allowed):
        problems.append(f"path {path!r} is outside the hostdir roots this host allows "
                        f"({ROOTS_ENV}={':'.join(allowed)})")
    return problems


def _refusals(path: str) -> list[str]:
    """What makes a normalized ``path`` a system path, as "is …" clauses (none: it is not one)."""
    parent = os.path.dirname(path)
    if path in SYSTEM_PATHS:
        return ["a system directory (deleting the volume would delete it)"]
    if parent in _ANY_CHILD:
        return [f"directly inside {parent}, where every directory belongs to the system or a user"]
    for tree in _WHOLE_TREE:
        if inside(path, tree):
            return [f"inside {tree}, which holds no data"]
    return []


def parse_owner(text: str) -> tuple[int, int]:
    """``"1000:1000"``, ``"app:app"``, ``"app"`` → (uid, gid); -1 for a part not given."""
    user, sep, group = text.partition(":")
    if not user and not group:
        raise ValueError(f"owner {text!r} must be USER[:GROUP], names or numbers, such as \"1000:1000\"")
    uid = _resolve(user, "user", lambda name: pwd.getpwnam(name).pw_uid) if user else -1
    gid = _resolve(group, "group", lambda name: grp.getgrnam(name).gr_gid) if sep and group else -1
    return uid, gid


def _resolve(part: str, what: str, lookup) -> int:
    if part.isascii() and part.isdigit():
        number = int(part)
        if number > _MAX_ID:
            raise ValueError(f"owner: {what} id {part} is out of range")
        return number
    try:
        return lookup(part)
    except KeyError:
        raise ValueError(f"owner: no {what} named {part!r} on this host") from None


def parse_mode(text: str) -> int:
    """``"0750"`` → 0o750; three or four octal digits (setuid/setgid/sticky allowed)."""
    if not _MODE.match(text):
        raise ValueError(f"mode {text!r} must be three or four octal digits in quotes, such as \"0750\"")
    return int(text, 8)


# -- markers ---------------------------------------------------------------------------------


def read_marker(path: str) -> dict | None:
    """The marker in directory ``path``, or None (absent, a symlink, unreadable, not ours)."""
    try:
        fd = os.open(os.path.join(path, MARKER), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(_MAX_MARKER + 1)
    try:
        marker = json.loads(data) if len(data) <= _MAX_MARKER else None
    except ValueError:
        return None
    return marker if isinstance(marker, dict) else None


def _write_marker(path: str, *, stack: str, volume: str, uid: str) -> None:
    """Write (or replace) the marker, never through a symlink: a link in its place is replaced, not followed."""
    write_private(os.path.join(path, MARKER), json.dumps({"stack": stack, "volume": volume, "uid": uid}).encode())


def _marks(marker: dict | None, *, stack: str, volume: str) -> bool:
    return marker is not None and marker.get("stack") == stack and marker.get("volume") == volume


# -- making and removing ------------------------------------------------------------------------


def check_directory(options: HostDirOptions, *, stack: str, volume: str) -> None:
    """Refuse, before anything is made, a path this volume may not use: ``PermanentError`` says why."""
    path = options.path
    problems = path_problems(path)
    if problems:
        raise PermanentError(f"hostdir {path}: " + "; ".join(problems))
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isdir(path):
        raise PermanentError(f"hostdir {path} exists and is not a directory (a symlink is refused)")
    if not options.adopt and not _marks(read_marker(path), stack=stack, volume=volume):
        raise PermanentError(
            f"hostdir {path} already exists and was not made for volume {volume} (it has no marker of it): "
            f"to use it as it is, set the option adopt: \"true\" (an adopted directory is never deleted); "
            f"or choose a path that does not exist")


def prepare_directory(options: HostDirOptions, *, stack: str = "", volume: str = "", uid: str = "") -> None:
    """Make the directory (and parents), mark it as made for ``volume``, set its owner and mode; safe to repeat.

    Call ``check_directory`` first: this trusts that an existing directory may be used.
    An adopted directory gets no marker, so nothing ever removes it.
    """
    path = options.path
    try:
        os.makedirs(path, exist_ok=True)
        if not options.adopt and volume:
            marker = read_marker(path)
            if not _marks(marker, stack=stack, volume=volume) or marker.get("uid") != uid:
                _write_marker(path, stack=stack, volume=volume, uid=uid)
        if options.uid != -1 or options.gid != -1:
            os.chown(path, options.uid, options.gid)
        os.chmod(path, options.mode)
    except FileExistsError:
        raise PermanentError(f"hostdir {path} exists and is not a directory") from None
    except OSError as exc:
        raise PermanentError(f"hostdir {path}: {exc.strerror or exc}") from exc


def remove_directory(path: str, *, stack: str = "", volume: str = "", uid: str = "") -> bool:
    """Remove the directory and its data, only if its marker names this stack, volume and id.

    Returns whether the directory is gone (a directory already gone is).
    A symlink, a directory without this volume's marker (made by someone else,
    adopted, or made before markers existed) or a system path is kept.
    """
    if not os.path.lexists(path):
        return True
    if _refusals(_normalize(path)) or os.path.islink(path) or not os.path.isdir(path):
        return False
    marker = read_marker(path)
    if not _marks(marker, stack=stack, volume=volume) or not uid or marker.get("uid") != uid:
        return False
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise PermanentError(f"the volume is removed but its directory {path} is not: {exc.strerror or exc}") from exc
    return True
