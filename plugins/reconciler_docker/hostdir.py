"""The ``hostdir`` storage driver: a host directory, made with an owner and mode, used as a volume.

Why not a bind mount? A bind mount needs the directory to exist with the
right owner before the container starts, and every container must repeat the
host path. A ``hostdir`` volume makes the directory itself (parents too), sets
its owner and mode, and then registers an engine volume of the ``local``
driver bound to it (``type=none, o=bind, device=PATH``), so containers mount
it by name like any other volume::

    volumes:
      data:
        driver: hostdir
        options: {path: /srv/app/data, owner: "1000:1000", mode: "0750"}

Lifetime: the core deletes a volume only under ``--prune-volumes`` (or
``--recreate-volumes`` when its options changed), never implicitly. When it
does, ``delete`` removes the engine volume *and the directory with its data*.
``destroy`` without ``--prune-volumes`` keeps both.

The directory is made by the process running the reconciler, so that process
must run on the engine's host (or share its filesystem).
"""
from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
from dataclasses import dataclass
from typing import Iterable, Mapping

import docker.errors

from reconciler.errors import PermanentError
from reconciler.labels import DRIVER, STACK
from reconciler.model import LiveObject, VolumeSpec

from .engine import engine_errors
from .volumes import DockerVolumeDriver

__all__ = [
    "NAME",
    "HostDirDriver",
    "HostDirOptions",
    "engine_options",
    "option_problems",
    "parse_mode",
    "parse_options",
    "parse_owner",
    "prepare_directory",
    "remove_directory",
]

NAME = "hostdir"
OPTIONS = ("path", "owner", "mode")
DEFAULT_MODE = 0o755
_MODE = re.compile(r"^[0-7]{3,4}$")
_MAX_ID = 2**32 - 2  # (uid_t)-1 means "unchanged" to chown


@dataclass(frozen=True)
class HostDirOptions:
    """Parsed options: an absolute path, numeric owner (-1: leave unchanged) and mode bits."""

    path: str
    uid: int = -1
    gid: int = -1
    mode: int = DEFAULT_MODE


def option_problems(options: Iterable[tuple[str, str]] | Mapping[str, str]) -> list[str]:
    """Everything wrong with a ``hostdir`` volume's options, as messages (empty: all fine)."""
    return _parse(options)[1]


def parse_options(options: Iterable[tuple[str, str]] | Mapping[str, str]) -> HostDirOptions:
    """Validate and parse ``path``, ``owner`` and ``mode``; ``PermanentError`` names every problem.

    ``owner`` is ``USER[:GROUP]``, each a number or a name looked up on this
    host; ``mode`` is three or four octal digits (``"0750"``, ``"2775"``).
    """
    parsed, problems = _parse(options)
    if problems:
        raise PermanentError("hostdir options: " + "; ".join(problems))
    return parsed


def _parse(options: Iterable[tuple[str, str]] | Mapping[str, str]) -> tuple[HostDirOptions, list[str]]:
    values = dict(options.items() if isinstance(options, Mapping) else options)
    problems = [f"unknown option {key!r} (hostdir takes {', '.join(OPTIONS)})"
                for key in sorted(values) if key not in OPTIONS]
    path = values.get("path", "")
    problems += _path_problems(path)
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
    return HostDirOptions(path=_normalize(path) if path else "", uid=uid, gid=gid, mode=mode), problems


def _normalize(path: str) -> str:
    """``//srv/./data/`` → ``/srv/data`` (``os.path.normpath`` keeps a leading ``//``)."""
    return "/" + "/".join(part for part in path.split("/") if part not in ("", "."))


def _path_problems(path: str) -> list[str]:
    if not path:
        return ["option 'path' is required: the host directory to create, such as /srv/app/data"]
    if not os.path.isabs(path):
        return [f"path {path!r} must be absolute"]
    if ".." in path.split("/"):
        return [f"path {path!r} must not contain '..'"]
    if _normalize(path) == "/":
        return ["path must not be '/': deleting the volume deletes its directory"]
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


def engine_options(path: str) -> dict[str, str]:
    """The ``local`` driver options that bind an engine volume to ``path``."""
    return {"type": "none", "o": "bind", "device": path}


def prepare_directory(options: HostDirOptions) -> None:
    """Make the directory (and parents), then set its owner and mode; safe to repeat."""
    path = options.path
    try:
        os.makedirs(path, exist_ok=True)
        if options.uid != -1 or options.gid != -1:
            os.chown(path, options.uid, options.gid)
        os.chmod(path, options.mode)
    except FileExistsError:
        raise PermanentError(f"hostdir {path} exists and is not a directory") from None
    except OSError as exc:
        raise PermanentError(f"hostdir {path}: {exc.strerror or exc}") from exc


def remove_directory(path: str) -> None:
    """Remove the directory and its contents; a symlink is unlinked, not followed; gone is fine."""
    if _normalize(path) == "/":  # parse_options refuses it; a hand-made volume might not
        raise PermanentError("hostdir refuses to remove '/'")
    try:
        if os.path.islink(path):
            os.unlink(path)
        else:
            shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise PermanentError(f"the volume is removed but its directory {path} is not: {exc.strerror or exc}") from exc


class HostDirDriver(DockerVolumeDriver):
    """Engine volumes bound to host directories that this driver creates, owns and removes."""

    claims = frozenset({NAME})

    def validate(self, spec: VolumeSpec) -> list[str]:
        """Problems with ``spec``'s options, for a caller that checks before any change."""
        return option_problems(spec.options)

    def observe(self, stack: str, wanted: Mapping[str, str]) -> list[LiveObject]:
        """Like the ``local`` driver, for volumes labelled ``hostdir``.

        A volume whose directory has gone from the host is left out, so the
        plan creates it again: ``create`` remakes the directory, and the
        engine answers the volume creation with the existing volume.
        """
        found = super().observe(stack, wanted)
        return [live for live in found if not (live.owned and live.name in wanted and not self._present(live))]

    @staticmethod
    def _present(live: LiveObject) -> bool:
        return os.path.isdir(str(live.details.get("path", "")))

    @staticmethod
    def _details(vol: dict) -> dict:
        return {"path": (vol.get("Options") or {}).get("device", "")}

    def create(self, spec: VolumeSpec, labels: Mapping[str, str]) -> None:
        """Make the directory with its owner and mode, then the engine volume bound to it."""
        options = parse_options(spec.options)
        prepare_directory(options)
        with engine_errors(f"create volume {spec.name}"):
            self.api.create_volume(spec.name, driver="local", driver_opts=engine_options(options.path),
                                   labels=dict(labels))

    def delete(self, live: LiveObject) -> None:
        """Remove the engine volume, then its directory and data (only under ``--prune-volumes``)."""
        with engine_errors(f"remove volume {live.name}"):
            try:
                volume = self.api.inspect_volume(live.name)
                self.api.remove_volume(live.name)
            except docker.errors.NotFound:
                return
        path = self._directory(volume)
        if path:
            remove_directory(path)

    def _directory(self, volume: dict) -> str | None:
        """The bound directory, only for a volume this driver made for this stack."""
        labels = volume.get("Labels") or {}
        options = volume.get("Options") or {}
        if labels.get(DRIVER) != NAME or labels.get(STACK) != self.context.stack:
            return None  # e.g. a local volume being replaced by a hostdir one: no directory of ours
        if options.get("o") != "bind" or not os.path.isabs(options.get("device", "")):
            return None
        return options["device"]
