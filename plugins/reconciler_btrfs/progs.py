"""The one runner of btrfs-progs: every ``btrfs`` command the driver runs goes through ``run``.

Why one place: the driver changes a host's filesystem, so each call must be
an argument list (never a shell: volume names and paths are data, not
syntax), bounded in time, and fail as the project's errors do, with btrfs's
own message: ``TemporaryError`` for what may pass (a busy subvolume, a
timeout), ``PermanentError`` for the rest (no such path, not a btrfs, no
btrfs-progs). The parsers of its answers are pure functions beside it, so
they are unit-tested on captured output.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import Sequence

from reconciler.sdk import PermanentError, TemporaryError

__all__ = [
    "Extent",
    "create_subvolume",
    "delete_subvolume",
    "find_new",
    "is_subvolume",
    "parse_find_new",
    "parse_show",
    "run",
    "show_subvolume",
    "snapshot_subvolume",
    "sync",
]

BTRFS = "btrfs"  # btrfs-progs, found on PATH
TIMEOUT = 120.0  # seconds: snapshot, delete and find-new take milliseconds; a hung device must not hang a pass
# Errors that another try may not meet: the subvolume is in use, the kernel is busy, a signal cut it short.
_TEMPORARY = ("resource busy", "temporarily unavailable", "interrupted system call", "try again")


def run(args: Sequence[str], *, action: str) -> str:
    """Run ``btrfs ARGS...`` and return its standard output; ``action`` says what for, in errors."""
    argv = [BTRFS, *args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise PermanentError(f"{action}: the btrfs command is missing (install Debian's btrfs-progs)") from None
    except subprocess.TimeoutExpired:
        raise TemporaryError(f"{action}: btrfs {args[0]} {args[1]} took more than {TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        message = " ".join((done.stderr or done.stdout).split()) or f"exit status {done.returncode}"
        error = TemporaryError if any(word in message.lower() for word in _TEMPORARY) else PermanentError
        raise error(f"{action}: {message}")
    return done.stdout


def create_subvolume(path: str) -> None:
    """``btrfs subvolume create PATH`` (its parent must exist)."""
    run(["subvolume", "create", path], action=f"create subvolume {path}")


def delete_subvolume(path: str) -> None:
    """``btrfs subvolume delete PATH``, read-only or not; one already gone is fine."""
    if not os.path.lexists(path):
        return
    run(["subvolume", "delete", path], action=f"delete subvolume {path}")


def snapshot_subvolume(source: str, dest: str, *, readonly: bool) -> None:
    """``btrfs subvolume snapshot [-r] SOURCE DEST``: copy-on-write, instant whatever the size."""
    run(["subvolume", "snapshot", *(["-r"] if readonly else []), source, dest],
        action=f"snapshot {source} to {dest}")


def show_subvolume(path: str) -> dict[str, str]:
    """``btrfs subvolume show PATH`` as a dict (``UUID``, ``Parent UUID``, ``Gen at creation``, ``Flags``...)."""
    return parse_show(run(["subvolume", "show", path], action=f"read subvolume {path}"))


def is_subvolume(path: str) -> bool:
    """Whether ``path`` is the root of a btrfs subvolume (inode 256 on btrfs; a cheap stat, no btrfs call)."""
    try:
        return os.lstat(path).st_ino == 256 and os.path.isdir(path)
    except OSError:
        return False


def sync(path: str) -> None:
    """``btrfs filesystem sync PATH``: commit what was written, so ``find_new`` sees it."""
    run(["filesystem", "sync", path], action=f"sync the btrfs of {path}")


def find_new(path: str, generation: int) -> list[Extent]:
    """The file extents of the subvolume ``path`` written in transaction ``generation`` or later."""
    return parse_find_new(run(["subvolume", "find-new", path, str(generation)],
                              action=f"list what changed in {path}"))


@dataclass(frozen=True)
class Extent:
    """One line of ``find-new``: ``length`` bytes of the file ``path`` (relative to the subvolume)."""

    path: str
    length: int
    generation: int


def parse_show(text: str) -> dict[str, str]:
    """``subvolume show``'s ``Key: value`` lines as a dict (its first line, the path, and the lists are skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        key, sep, value = line.strip().partition(":")
        if sep and key and key not in out:
            out[key.strip()] = value.strip()
    return out


def parse_find_new(text: str) -> list[Extent]:
    """``subvolume find-new``'s extent lines (the closing ``transid marker`` line is not one).

    Each reads ``inode I file offset O len L disk start D offset F gen G flags FLAGS PATH``;
    the path is the rest of the line, spaces and all.
    """
    out = []
    for line in text.splitlines():
        parts = line.split(" ", 16)
        if len(parts) == 17 and parts[0] == "inode" and parts[5] == "len" and parts[12] == "gen":
            out.append(Extent(path=parts[16], length=int(parts[6]), generation=int(parts[13])))
    return out
