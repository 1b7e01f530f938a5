"""Configs and secrets: where their bytes come from, and how a container lists them.

One home for the rules both the semantic checks and the desired model apply,
so a spec that validates is read the same way when it is modelled:

- a top-level entry takes its content from exactly one of ``file`` (relative
  to the spec file), ``content`` (inline) or, for secrets, ``environment`` (a
  variable, from the environment over the ``.env`` beside the spec);
  ``encrypted: age`` decrypts a ``file`` (see ``agecrypt``);
- a container lists a name, or ``{source, target, uid, gid, mode}``; the
  target defaults to ``/<name>`` for configs and ``/run/secrets/<name>`` for
  secrets (a relative target is taken inside that directory), the mode to
  0444 and 0400.

Errors are ``SourceError``s naming the field they are about; their messages
never quote content.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .agecrypt import AgeError, decrypt

__all__ = ["DEFAULT_MODES", "KINDS", "MAX_BYTES", "FileRef", "SourceError", "file_ref", "parse_id", "parse_mode",
           "read_content", "source_fields"]

MAX_BYTES = 1024 * 1024  # like a spec file: a config or secret is small, and is held in memory
KINDS = {"configs": "config", "secrets": "secret"}
DEFAULT_MODES = {"config": 0o444, "secret": 0o400}
_DEFAULT_DIRS = {"config": "/", "secret": "/run/secrets"}
_SOURCES = ("file", "content", "environment")
_MAX_ID = 2**32 - 2


class SourceError(ValueError):
    """A config or secret whose content cannot be had; ``field`` is the entry's field at fault ("" for the entry)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class FileRef:
    """One entry of a container's ``configs`` or ``secrets`` list, defaults filled."""

    source: str
    target: str
    uid: int | None
    gid: int | None
    mode: int


def source_fields(entry: Mapping[str, Any]) -> list[str]:
    """The content fields an entry sets (``file``, ``content``, ``environment``); exactly one is valid."""
    return [name for name in _SOURCES if name in entry]


def read_content(kind: str, entry: Mapping[str, Any], *, file: Path | None,
                 variables: Mapping[str, str], environ: Mapping[str, str]) -> bytes:
    """The bytes of one config or secret entry (``kind``: ``config`` or ``secret``).

    ``file`` is the entry's ``file`` resolved against its spec file;
    ``variables`` what ``environment`` reads, ``environ`` where an age
    identity comes from. Raises ``SourceError``.
    """
    fields = source_fields(entry)
    if len(fields) != 1:
        raise SourceError("", f"a {kind} takes its content from exactly one of file, content"
                              f"{' or environment' if kind == 'secret' else ''}; this one sets {', '.join(fields)}")
    if entry.get("encrypted") and fields != ["file"]:
        raise SourceError("encrypted", "encrypted applies to a file: put the ciphertext in a file and name it in file")
    if fields == ["content"]:
        data = str(entry["content"]).encode()
    elif fields == ["environment"]:
        name = str(entry["environment"])
        if name not in variables:
            raise SourceError("environment", f"environment variable {name} is not set")
        data = variables[name].encode()
    else:
        data = _read_file(entry["file"], file)
        if entry.get("encrypted") == "age":
            try:
                data = decrypt(data, environ)
            except AgeError as exc:
                raise SourceError("file", f"cannot decrypt {entry['file']!r}: {exc}") from None
    if len(data) > MAX_BYTES:
        raise SourceError(fields[0], f"the content is {len(data)} bytes, over the limit of {MAX_BYTES} (1 MiB)")
    return data


def _read_file(given: str, path: Path | None) -> bytes:
    if path is None or not path.is_file():
        raise SourceError("file", f"file {given!r} does not exist" + (f" ({path})" if path else ""))
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SourceError("file", f"cannot read {given!r}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise SourceError("file", f"file {given!r} is over the limit of {MAX_BYTES} bytes (1 MiB)")
    return data


def file_ref(kind: str, item: str | Mapping[str, Any]) -> FileRef:
    """A container's list entry with its defaults; raises ``SourceError`` naming the field at fault."""
    if isinstance(item, str):
        item = {"source": item}
    source = str(item["source"])
    target = _target(kind, source, item.get("target"))
    uid = parse_id(item["uid"], "uid") if item.get("uid") is not None else None
    gid = parse_id(item["gid"], "gid") if item.get("gid") is not None else None
    mode = parse_mode(item["mode"]) if item.get("mode") is not None else DEFAULT_MODES[kind]
    return FileRef(source, target, uid, gid, mode)


def _target(kind: str, source: str, given: Any) -> str:
    text = str(given) if given is not None else source
    target = posixpath.join(_DEFAULT_DIRS[kind], text)  # an absolute target replaces the directory
    if ".." in target.split("/"):
        raise SourceError("target", f"target {text!r} must not contain '..'")
    target = posixpath.normpath(target)
    if target == "/" or text.endswith("/"):
        raise SourceError("target", f"target {text!r} must name a file, not a directory")
    return target


def parse_mode(value: Any) -> int:
    """A file mode as chmod reads it: octal digits, ``"0440"``, ``0440`` or ``440``.

    YAML 1.2 (what specs are read as) reads an unquoted ``0440`` as the
    decimal number 440, so integers are read digit by digit, as octal: the
    number Compose users write means what they meant.
    """
    text = str(value)
    if isinstance(value, bool) or not _digits(text) or any(c in "89" for c in text) or len(text) > 4:
        raise SourceError("mode", f"mode {text} is not a file mode: write octal digits such as \"0440\"")
    mode = int(text, 8)
    if mode > 0o777:
        raise SourceError("mode", f"mode {text} is above 0777 (setuid, setgid and sticky bits mean nothing "
                                  "for a mounted file)")
    return mode


def parse_id(value: Any, what: str) -> int:
    """A numeric uid or gid (an integer or a string of digits)."""
    text = str(value)
    if isinstance(value, bool) or not _digits(text) or int(text) > _MAX_ID:
        raise SourceError(what, f"{what} {text!r} must be a numeric id, such as 1000")
    return int(text)


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()
