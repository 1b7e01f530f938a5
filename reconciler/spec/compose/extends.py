"""Compose's ``extends``: a service built on another one, from the same file or another, merged as Compose merges.

``extends: base`` takes the service ``base`` of the same file;
``extends: {service: base, file: common.yaml}`` takes it from another file
(relative to the project directory, or, in an extended file, to that file's
directory), read with the project's variables. The base is resolved first
(chains work; a cycle is an error naming the chain), its relative paths are
rewritten against its own file's directory, the extending file's
``!reset``/``!override`` values clear what they replace, and the extending
service is merged over it by the same rules as a later ``-f`` file (``merge``).
Every key is inherited, ``depends_on`` included, as modern Compose does.
Each value keeps its own file and line, so an error in an inherited value
points into the file it was written in.
"""
from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path

from ..locations import KEY, Mark, format_path, problem_at
from .files import Loaded, Reading
from .merge import Marks, clear_tagged, merge_into, normalize_service
from .rebase import rebase_service

__all__ = ["MAX_CHAIN", "resolve_extends"]

#: The longest chain of services extending one another.
MAX_CHAIN = 32


def resolve_extends(loaded: Loaded, directory: Path, variables: Mapping[str, str], reading: Reading) -> None:
    """Resolve the ``extends`` of every service of ``loaded``, in place; problems go to ``reading``.

    ``directory`` is what a relative ``extends.file`` in ``loaded`` is relative
    to: the project directory, as for every relative path in a project's files.
    """
    extender = _Extender(reading, variables)
    services = loaded.data.get("services")
    if isinstance(services, dict):
        for name in list(services):
            extender.service(loaded, directory, name, ())


class _Extender:
    def __init__(self, reading: Reading, variables: Mapping[str, str]) -> None:
        self.reading = reading
        self.variables = variables
        self.files: dict[Path, Loaded | None] = {}  # extended files, read once, by resolved path
        self.done: dict[tuple[Path, str], bool] = {}  # (file, service) -> resolved (False: failed, reported)

    def service(self, source: Loaded, directory: Path, name: str, chain: tuple) -> bool:
        """Resolve the service ``name`` of ``source``; False when it could not be (the problem is noted)."""
        services = source.data.get("services")
        service = services.get(name) if isinstance(services, dict) else None
        if not isinstance(service, dict) or "extends" not in service:
            return True
        key = (source.file.resolve(), name)
        if key in self.done:
            return self.done[key]
        here = ("services", name, "extends")
        if key in chain or len(chain) >= MAX_CHAIN:
            loop = [*chain[chain.index(key):], key] if key in chain else [*chain, key]
            top = loop[0][0].parent
            steps = " -> ".join(f"{os.path.relpath(file, top)}:{format_path(('services', n))}" for file, n in loop)
            why = "extends cycle" if key in chain else f"extends chain longer than {MAX_CHAIN}"
            self._problem(source, here, f"{why}: {steps}")
            return False
        target = self._target(source, directory, service["extends"], here)
        ok = target is not None and self.service(target[0], target[1], target[2], (*chain, key))
        if ok and target is not None:
            other, other_directory, ref = target
            self._merge(source, name, other, ref, None if other_directory == directory.resolve() else other_directory)
        self.done[key] = ok
        return ok

    def _target(self, source: Loaded, directory: Path, extends: object,
                here: tuple) -> tuple[Loaded, Path, str] | None:
        """(file, its directory, service name) that ``extends`` names, or None (a problem noted)."""
        given: object = None
        if isinstance(extends, str):
            ref: object = extends
        elif isinstance(extends, dict):
            ref, given = extends.get("service"), extends.get("file")
            for other in [k for k in extends if k not in ("service", "file")]:
                self._problem(source, (*here, other), f"unknown extends key {other!r} (expected service, file)")
                return None
        else:
            self._problem(source, here, "extends must be a service name or a mapping of service (and file)")
            return None
        if not isinstance(ref, str) or not ref:
            self._problem(source, here, "extends needs the name of a service (service: name)")
            return None
        other, other_directory = source, directory
        if given is not None:
            at = (*here, "file")
            link = self.reading.link(str(given), directory, self._mark(source, at), at, what="extends")
            found = self._read(link) if link is not None else None
            if link is None or found is None:
                return None
            other, other_directory = found, link.parent.resolve()
        services = other.data.get("services")
        where = "this file" if other is source else str(given)
        if not isinstance(services, dict) or ref not in services:
            at = (*here, "service") if isinstance(extends, dict) else here
            self._problem(source, at, f"extends: no service {ref!r} in {where}")
            return None
        if not isinstance(services[ref], (dict, type(None))):
            self._problem(source, here, f"extends: {ref!r} in {where} "
                                        "is not a service (a mapping)")
            return None
        return other, other_directory, ref

    def _read(self, file: Path) -> Loaded | None:
        resolved = file.resolve()
        if resolved not in self.files:
            self.files[resolved] = self.reading.read(file, self.variables)
        return self.files[resolved]

    def _merge(self, source: Loaded, name: str, other: Loaded, ref: str, rebase: Path | None) -> None:
        """The service ``name`` of ``source`` merged over a copy of the service ``ref`` of ``other``."""
        at = ("services", name)
        base = copy.deepcopy(other.data["services"][ref]) or {}
        base_marks = _rerooted(other.marks, ("services", ref), at)
        if rebase is not None:
            rebase_service(base, rebase)
        merged = {"services": {name: base}}
        clear_tagged(merged, base_marks, source.tags)
        normalize_service(base, base_marks, at)
        service = source.data["services"][name]
        del service["extends"]
        over_marks = {p: m for p, m in source.marks.items() if p[:2] == at and p[:3] != (*at, "extends")}
        normalize_service(service, over_marks, at)
        merge_into(merged, base_marks, {"services": {name: service}}, over_marks)
        source.data["services"][name] = merged["services"][name]
        # The service's own position (and its key's) stays the extending file's; what is under it is merged.
        inner = [p for p in source.marks if p[:2] == at and len(p) > 2 and p[2] is not KEY]
        for path in inner:
            del source.marks[path]
        source.marks.update({p: m for p, m in base_marks.items() if len(p) > 2 and p[2] is not KEY})

    def _problem(self, source: Loaded, path: tuple, message: str) -> None:
        self.reading.problems.append(problem_at(self._mark(source, path), path, message))

    @staticmethod
    def _mark(source: Loaded, path: tuple) -> Mark | None:
        """Where ``path`` is written; for the ``extends`` key itself, the line of ``extends:``."""
        if path[-1] == "extends":
            return source.marks.get((*path, KEY)) or source.marks.get(path)
        for end in range(len(path), -1, -1):
            found = source.marks.get(path[:end])
            if found is not None:
                return found
        return None


def _rerooted(marks: Marks, old: tuple, new: tuple) -> Marks:
    """The marks under ``old`` (itself included), as if the values were at ``new``."""
    size = len(old)
    return {(*new, *path[size:]): mark for path, mark in marks.items() if path[:size] == old}
