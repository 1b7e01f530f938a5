"""A Compose model from its files: each file read, its ``include`` imported, its ``extends`` resolved, then merged.

The order is compose-go's, file by file: read and interpolate the file;
load each project it includes (on its own: its own project directory,
against which its relative paths are rewritten, and its own ``.env`` or
``env_file`` under the including project's variables), and add their
services, networks, volumes, configs and secrets to the file; clear what
the file's ``!reset``/``!override`` values replace in the files before it;
resolve its services' ``extends``; merge it over the files before it.

A name that an included project and the including file (or two included
projects) both define is an error naming both places, as the Compose
specification says (an included project's resources are not merged), unless
the two definitions are the same. Includes nest; a cycle is an error.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..locations import KEY, Mark, format_path, problem_at
from .extends import resolve_extends
from .files import Loaded, Reading
from .merge import Marks, clear_tagged, merge_into, normalize_service
from .rebase import rebase_project

__all__ = ["SECTIONS", "assemble"]

#: The top-level sections an included project brings into the including one.
SECTIONS = ("services", "networks", "volumes", "configs", "secrets")
_INCLUDE_KEYS = ("path", "project_directory", "env_file")


def assemble(files: Sequence[Path], directory: Path, variables: Mapping[str, str], reading: Reading,
             *, chain: tuple[Path, ...] = ()) -> tuple[dict, Marks]:
    """The merged Compose data of ``files`` (a project whose relative paths are relative to ``directory``).

    ``chain``: the files whose ``include`` led here (a cycle is an error).
    Problems go to ``reading``; what could not be read is left out.
    """
    data: dict = {}
    marks: Marks = {}
    for file in files:
        loaded = reading.read(file, variables)
        if loaded is None:
            continue
        services = loaded.data.get("services")
        for name, service in (services.items() if isinstance(services, dict) else ()):
            if isinstance(service, dict):
                normalize_service(service, loaded.marks, ("services", name))
        if "include" in loaded.data:
            _Includer(reading, directory, variables, (*chain, file.resolve())).run(loaded)
        clear_tagged(data, marks, loaded.tags)
        resolve_extends(loaded, directory, variables, reading)
        merge_into(data, marks, loaded.data, loaded.marks)
    return data, marks


class _Includer:
    """The ``include`` of one file: each entry loaded as a project, its resources added to the file."""

    def __init__(self, reading: Reading, directory: Path, variables: Mapping[str, str], chain: tuple[Path, ...]):
        self.reading = reading
        self.directory = directory
        self.variables = variables
        self.chain = chain

    def run(self, loaded: Loaded) -> None:
        entries = loaded.data.pop("include")
        if entries is None:
            return
        if not isinstance(entries, list):
            self._problem(loaded, ("include",), "include must be a list of files or of mappings with path")
            return
        for index, entry in enumerate(entries):
            parsed = self._entry(loaded, entry, ("include", index))
            if parsed is not None:
                self._include(loaded, ("include", index), *parsed)

    def _entry(self, loaded: Loaded, entry: Any, at: tuple) -> tuple[list, tuple | None, list | None] | None:
        """(paths, project_directory, env files) of one entry, each as (text, path in the file), or None."""
        if isinstance(entry, str):
            return [(entry, at)], None, None
        if not isinstance(entry, dict):
            self._problem(loaded, at, "an include entry is a file or a mapping with path")
            return None
        for key in [k for k in entry if k not in _INCLUDE_KEYS]:
            self._problem(loaded, (*at, key), f"unknown include key {key!r} (expected {', '.join(_INCLUDE_KEYS)})")
            return None
        paths = self._texts(entry.get("path"), (*at, "path"))
        if not paths:
            self._problem(loaded, at, "include needs path: a file, or a list of files merged in order")
            return None
        project_directory = entry.get("project_directory")
        directory = (str(project_directory), (*at, "project_directory")) if project_directory is not None else None
        env_files = self._texts(entry["env_file"], (*at, "env_file")) if "env_file" in entry else None
        return paths, directory, env_files

    @staticmethod
    def _texts(value: Any, at: tuple) -> list[tuple[str, tuple]]:
        if isinstance(value, str):
            return [(value, at)]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [(v, (*at, i)) for i, v in enumerate(value)]
        return []

    def _include(self, loaded: Loaded, at: tuple, paths: list, project_directory: tuple | None,
                 env_files: list | None) -> None:
        files = [self.reading.link(given, self.directory, self._mark(loaded, where), where, what="include")
                 for given, where in paths]
        if any(f is None for f in files):
            return
        first = files[0].resolve()
        if first in self.chain:
            top = self.chain[0].parent
            steps = " -> ".join(os.path.relpath(p, top) for p in (*self.chain[self.chain.index(first):], first))
            self._problem(loaded, paths[0][1], f"include cycle: {steps}")
            return
        if project_directory is not None:
            directory = (self.directory / Path(project_directory[0]).expanduser()).resolve()
        else:
            directory = first.parent
        variables = self.reading.variables({**self._env(loaded, directory, env_files), **self.variables})
        data, marks = assemble(files, directory, variables, self.reading, chain=self.chain)
        if directory != self.directory.resolve():
            rebase_project(data, directory)
        self._import(loaded, data, marks, at)

    def _env(self, loaded: Loaded, directory: Path, env_files: list | None) -> dict[str, str]:
        """The included project's own variables: its ``env_file`` files, else the ``.env`` in its directory."""
        if env_files is None:
            dotenv = directory / ".env"
            self.reading.linked.append(dotenv)  # watched even before it exists
            return self.reading.env_files([dotenv] if dotenv.is_file() else [])
        files = [self.reading.link(given, self.directory, self._mark(loaded, where), where, what="include env_file")
                 for given, where in env_files if given != "/dev/null"]
        return self.reading.env_files(f for f in files if f is not None)

    def _import(self, loaded: Loaded, data: dict, marks: Marks, at: tuple) -> None:
        """Add the included ``data``'s resources to ``loaded``; a name defined twice differently is an error."""
        for section in SECTIONS:
            entries = data.get(section)
            target = loaded.data.setdefault(section, {}) if isinstance(entries, dict) else None
            if not isinstance(entries, dict) or not isinstance(target, dict):
                continue
            for key, value in entries.items():
                path = (section, key)
                if key not in target:
                    target[key] = value
                    loaded.marks.update({p: m for p, m in marks.items() if p[:2] == path})
                elif target[key] != value:
                    here = loaded.marks.get((*path, KEY)) or self._mark(loaded, path)
                    there = marks.get((*path, KEY)) or marks.get(path)
                    self.reading.problems.append(problem_at(here, path, (
                        f"{format_path(path)} is defined both here and at {_where(there)} (included by "
                        f"{format_path(at)} at {_where(self._mark(loaded, at))}): rename one of them")))

    def _problem(self, loaded: Loaded, path: tuple, message: str) -> None:
        self.reading.problems.append(problem_at(self._mark(loaded, path), path, message))

    @staticmethod
    def _mark(loaded: Loaded, path: tuple) -> Mark | None:
        for end in range(len(path), -1, -1):
            found = loaded.marks.get(path[:end])
            if found is not None:
                return found
        return None


def _where(mark: Mark | None) -> str:
    return f"{mark.file}:{mark.line}:{mark.col}" if mark else "an included file"
