"""Load stack files into plain data, remembering where every value came from.

A stack is one or more spec files, named directly or as directories of
``*.yaml``/``*.yml`` files. This module finds those files, refuses any over the
size limit before reading it, interpolates ``${VAR}`` from the environment
over the ``.env`` beside each file, and merges the files' sections into one
``RawStack``, reporting every problem (a name defined twice, stack names that
disagree) at once.

The YAML itself is hostile input and is parsed only by ``reconciler.spec.yamlsafe``;
``Mark`` lives there and is re-exported here for the modules that use it.
"""
from __future__ import annotations

import logging
import os
from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Problem, SpecError
from ..model import Kind
from .interpolate import InterpolationError, interpolate, parse_env_file
from .locations import Mark, nearest_mark, problem_at
from .specfiles import directory_files
from .yamlsafe import compose_file

__all__ = ["Mark", "RawStack", "load_stack"]

MAX_FILE_BYTES = 1024 * 1024
_log = logging.getLogger(__name__)
#: The top-level keys whose entries several files may each add to (a name defined twice is an error).
SECTIONS = (*(kind.section for kind in Kind), "configs", "secrets", "targets")


@dataclass
class RawStack:
    """Merged plain data of all spec files, with the position of every value."""

    data: dict
    marks: dict[tuple, Mark]
    files: tuple[Path, ...]
    #: The process environment the files were read with (``load_stack``'s ``environ``).
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: Per spec file directory: ``environ`` over the ``.env`` there (what interpolation saw).
    variables_by_dir: dict[Path, Mapping[str, str]] = field(default_factory=dict, repr=False)

    def variables(self, path: Sequence) -> Mapping[str, str]:
        """The variables the file holding ``path`` was interpolated with: the environment over its ``.env``."""
        return self.variables_by_dir.get(self.origin(path).parent, self.environ)

    def mark(self, path: Sequence) -> Mark | None:
        """Position of the value at ``path``, or of its nearest ancestor that has one."""
        return nearest_mark(self.marks, path)

    def origin(self, path: Sequence) -> Path:
        """The file the value at ``path`` came from (the first file if unknown)."""
        found = self.mark(path)
        if found is not None:
            return Path(found.file)
        return self.files[0] if self.files else Path("<spec>")


@dataclass(frozen=True)
class _Fragment:
    """One file's data and marks, before the files are merged."""

    file: Path
    data: Any
    marks: dict[tuple, Mark]


def load_stack(paths: Sequence[str | Path], *, environ: Mapping[str, str] | None = None) -> RawStack:
    """Load, interpolate and merge the spec files named by ``paths``.

    Each path is a file or a directory (its ``*.yaml``/``*.yml`` files, sorted
    by name). ``environ`` defaults to ``os.environ`` and wins over a ``.env``
    file beside each spec file. Raises SpecError listing every problem found.
    """
    environ = os.environ if environ is None else environ
    problems: list[Problem] = []
    files = _expand_paths(paths, problems)
    env_by_dir: dict[Path, Mapping[str, str]] = {}
    documents = []
    for file in files:
        env = _env_for(file.parent, environ, env_by_dir, problems)
        loaded = _load_file(file, env, problems)
        if loaded is not None:
            documents.append(loaded)
    data, marks = _merge(documents, problems)
    if problems:
        raise SpecError(problems)
    return RawStack(data=data, marks=marks, files=tuple(files), environ=environ, variables_by_dir=env_by_dir)


def _expand_paths(paths: Sequence[str | Path], problems: list[Problem]) -> list[Path]:
    if not paths:
        problems.append(Problem("no spec files given"))
    files: list[Path] = []
    seen: set[Path] = set()
    for given in map(Path, paths):
        if given.is_dir():
            found = directory_files(given)
            if not found:
                problems.append(Problem("directory contains no *.yaml or *.yml files", file=str(given)))
        elif given.is_file():
            found = [given]
        else:
            problems.append(Problem("no such file or directory", file=str(given)))
            found = []
        for file in found:
            # The same file named twice (or via its directory) is one file, not a conflict.
            if file.resolve() not in seen:
                seen.add(file.resolve())
                files.append(file)
    return files


def _env_for(
    directory: Path, environ: Mapping[str, str], cache: dict, problems: list[Problem]
) -> Mapping[str, str]:
    """Variables seen by spec files in ``directory``: ``environ`` over the ``.env`` there."""
    if directory not in cache:
        dotenv: dict[str, str] = {}
        if (directory / ".env").is_file():
            try:
                dotenv = parse_env_file(directory / ".env")
            except InterpolationError as exc:
                problems.append(Problem(exc.reason, file=exc.file, line=exc.line, col=1 if exc.line else 0))
        cache[directory] = ChainMap(environ, dotenv)  # type: ignore[arg-type]
    return cache[directory]


def _load_file(file: Path, env: Mapping[str, str], problems: list[Problem]) -> _Fragment | None:
    """The file's data, or None after recording why the file is unusable.

    A variable used without a default and set nowhere becomes "" with a
    warning naming it, as Compose does (``${VAR:-}`` says "empty" on purpose).
    """
    unset_at: dict[tuple, set[str]] = {}

    def expand(value: str, path: tuple) -> str:
        unset: set[str] = set()
        expanded = interpolate(value, env, unset=unset)
        if unset:
            unset_at[path] = unset
        return expanded

    try:
        text = _read_text(file)
        document = compose_file(text, str(file), on_string=expand, remember=True)
    except SpecError as exc:
        problems.extend(exc.problems)
        return None
    unset: set[str] = set()
    for path, names in unset_at.items():
        if _is_secret_value(document.data, path):  # an empty secret is never what was meant: refuse it
            problems.append(problem_at(document.marks.get(path), path, _unset_secret(names)))
        else:
            unset |= names
    for name in sorted(unset):
        _log.warning("%s: variable %s is not set (environment or .env) and has no default: "
                     "it is an empty string (write ${%s:-} if that is meant)", file, name, name)
    problems.extend(document.problems)
    # An empty file (or a bare '---') adds nothing.
    data = {} if document.data is None else document.data
    return _Fragment(file, data, document.marks or {(): Mark(str(file), 1, 1)})


def _is_secret_value(data: object, path: tuple) -> bool:
    """Whether ``path`` is the ``value`` of an entry marked ``secret: true`` (a container's secret env value)."""
    if not path or path[-1] != "value":
        return False
    entry = data
    for step in path[:-1]:
        try:
            entry = entry[step]
        except (KeyError, IndexError, TypeError):
            return False
    return isinstance(entry, dict) and entry.get("secret") is True


def _unset_secret(names: set[str]) -> str:
    listed = ", ".join(sorted(names))
    return (f"a secret value made of {listed}, which {'is' if len(names) == 1 else 'are'} not set (environment "
            f"or .env) and {'has' if len(names) == 1 else 'have'} no default: it would be empty; set "
            f"{'it' if len(names) == 1 else 'them'}, or write ${{VAR:-}} where empty is meant")


def _read_text(file: Path) -> str:
    """The file's text; raises SpecError if it is too big, unreadable or not UTF-8."""
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _refused(file, f"file is {size} bytes, over the limit of {MAX_FILE_BYTES} bytes (1 MiB)")
        with file.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)  # the file may have grown since stat
    except OSError as exc:
        raise _refused(file, f"cannot read file: {exc.strerror or exc}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise _refused(file, f"file is over the limit of {MAX_FILE_BYTES} bytes (1 MiB)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _refused(file, f"file is not valid UTF-8 (byte {exc.start})") from exc


def _refused(file: Path, message: str) -> SpecError:
    return SpecError(Problem(message, file=str(file)))


def _merge(fragments: list[_Fragment], problems: list[Problem]) -> tuple[dict, dict[tuple, Mark]]:
    """Merge the files' top levels; each path keeps the marks of the file its value came from."""
    data: dict[str, Any] = {}
    owners: dict[tuple, int] = {}  # (key,) or (section, key) -> index of the fragment that gave it
    for index, fragment in enumerate(fragments):
        if not isinstance(fragment.data, dict):
            problems.append(problem_at(fragment.marks.get(()), (), "the top level must be a mapping "
                                        "(keys: name, runtime, targets, placement, images, networks, volumes, containers, configs, secrets)"))
            continue
        owners.setdefault((), index)
        for key, value in fragment.data.items():
            _merge_key(data, owners, fragments, index, key, value, problems)
    marks: dict[tuple, Mark] = {}
    for index, fragment in enumerate(fragments):
        for path, mark in fragment.marks.items():
            owner = owners.get(path[:2]) if len(path) >= 2 and path[:2] in owners else owners.get(path[:1])
            if owner == index:
                marks[path] = mark
    return data, marks


def _merge_key(data: dict, owners: dict[tuple, int], fragments: list[_Fragment], index: int,
               key: str, value: Any, problems: list[Problem]) -> None:
    here = fragments[index]
    old = data.get(key)
    if key not in data:
        data[key] = dict(value) if key in SECTIONS and isinstance(value, dict) else value
        owners[(key,)] = index
        if key in SECTIONS and isinstance(value, dict):
            owners.update({(key, name): index for name in value})
    elif key in SECTIONS and isinstance(old, dict) and isinstance(value, dict):
        for name, item in value.items():
            path = (key, name)
            if name in old:
                first = _where(fragments[owners[path]], path)
                message = f"'{name}' is already defined in {first}"
                problems.append(problem_at(here.marks.get(path), path, message))
            else:
                old[name] = item
                owners[path] = index
    elif key in SECTIONS and isinstance(old, dict):
        # Keep the malformed value, not the good one, so the schema reports it.
        data[key] = value
        owners[(key,)] = index
    elif key in ("name", "runtime", "placement") and old != value:
        first = _where(fragments[owners[(key,)]], (key,))
        what = {"name": "stack name"}.get(key, key)
        message = f"{what} {value!r} differs from {old!r} in {first}"
        problems.append(problem_at(here.marks.get((key,)), (key,), message))


def _where(fragment: _Fragment, path: tuple) -> str:
    mark = fragment.marks.get(path)
    return f"{fragment.file}:{mark.line}" if mark else str(fragment.file)
