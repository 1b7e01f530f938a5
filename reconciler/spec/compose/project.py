"""Read a Compose project the way ``docker compose`` does, before any translation.

The files are found (``compose.yaml``, ``docker-compose.yml``, … and the
override file beside them), read with our safe YAML reader (positions kept),
interpolated with the project's variables (the process environment over the
project directory's ``.env``, or over ``--env-file`` files), merged in
override order (``merge``), reduced to the services of the active profiles,
and named. The result is still Compose data: ``translate`` turns it into a
stack spec.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import Problem, SpecError
from ..interpolate import InterpolationError, interpolate, parse_env_file
from ..locations import Mark, problem_at
from ..specfiles import MAX_FILE_BYTES
from ..yamlsafe import compose_file
from .merge import Marks, merge_into, normalize_service

__all__ = ["ComposeOptions", "ComposeProject", "read_project"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ComposeOptions:
    """What ``docker compose`` takes on its command line besides the files."""

    #: ``--env-file``: replaces the project directory's ``.env`` (later files win).
    env_files: tuple[str, ...] = ()
    #: ``--profile``: services with ``profiles:`` run only when one of theirs is named (``*``: all).
    profiles: tuple[str, ...] = ()
    #: ``-p/--project-name``: over ``COMPOSE_PROJECT_NAME``, over ``name:``, over the directory.
    project_name: str | None = None
    #: Report Compose keys we cannot honour as warnings and drop them, rather than refusing the project.
    ignore_unsupported: bool = False


@dataclass
class ComposeProject:
    """The merged, interpolated Compose data of a project, with the position of every value."""

    data: dict
    marks: Marks
    files: tuple[Path, ...]
    directory: Path
    #: The variables interpolation saw: the environment over ``.env`` (or the ``--env-file`` files).
    variables: Mapping[str, str]
    name: str
    #: Variables used without a value and without a default (Compose warns about each).
    unset: tuple[str, ...] = ()
    env_files: tuple[Path, ...] = field(default_factory=tuple)


def read_project(files: Sequence[Path], environ: Mapping[str, str], options: ComposeOptions) -> ComposeProject:
    """Read, interpolate and merge ``files`` (already found) into one project; raise SpecError on problems."""
    problems: list[Problem] = []
    directory = files[0].resolve().parent
    variables, env_files = _variables(directory, environ, options, problems)
    recorder = _Recorder(variables)
    data: dict = {}
    marks: Marks = {}
    for file in files:
        loaded = _read_file(file, recorder, problems)
        if loaded is None:
            continue
        part, part_marks = loaded
        for name, service in (part.get("services") or {}).items():
            if isinstance(service, dict):
                normalize_service(service, part_marks, ("services", name))
        merge_into(data, marks, part, part_marks)
    if problems:
        raise SpecError(problems)
    name = _project_name(data, marks, directory, variables, options)
    _select_profiles(data, marks, _active_profiles(options, variables), problems)
    if problems:
        raise SpecError(problems)
    unset = tuple(sorted(recorder.unset))
    for variable in unset:
        log.warning("the %s variable is not set: defaulting to a blank string", variable)
    return ComposeProject(data, marks, tuple(files), directory, variables, name, unset, env_files)


def _variables(directory: Path, environ: Mapping[str, str], options: ComposeOptions,
               problems: list[Problem]) -> tuple[dict[str, str], tuple[Path, ...]]:
    """The environment over ``.env`` in the project directory, or over the ``--env-file`` files."""
    named = [Path(f) for f in options.env_files]
    files = named or ([directory / ".env"] if (directory / ".env").is_file() else [])
    dotenv: dict[str, str] = {}
    for file in files:
        try:
            dotenv.update(parse_env_file(file))
        except InterpolationError as exc:
            problems.append(Problem(exc.reason, file=exc.file, line=exc.line, col=1 if exc.line else 0))
    return {**dotenv, **environ}, tuple(files)


class _Recorder(Mapping[str, str]):
    """The variables, remembering the names used without a value and without a default."""

    # ``$$`` first so an escaped dollar is skipped; a braced name with an operator has a default or a message.
    _PLAIN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")

    def __init__(self, variables: Mapping[str, str]) -> None:
        self.variables = variables
        self.unset: set[str] = set()

    def note(self, text: str) -> None:
        for match in self._PLAIN.finditer(text):
            name = match.group(1) or match.group(2)
            if name and name not in self.variables:
                self.unset.add(name)

    def __getitem__(self, name: str) -> str:
        return self.variables[name]

    def __iter__(self):
        return iter(self.variables)

    def __len__(self) -> int:
        return len(self.variables)


def _read_file(file: Path, variables: Mapping[str, str], problems: list[Problem]) -> tuple[dict, Marks] | None:
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError(Problem(f"file is {size} bytes, over the limit of {MAX_FILE_BYTES} bytes (1 MiB)",
                                    file=str(file)))
        text = file.read_bytes().decode("utf-8-sig")
        document = compose_file(text, str(file), remember=True)
    except OSError as exc:
        problems.append(Problem(f"cannot read file: {exc.strerror or exc}", file=str(file)))
        return None
    except UnicodeDecodeError as exc:
        problems.append(Problem(f"file is not valid UTF-8 (byte {exc.start})", file=str(file)))
        return None
    except SpecError as exc:
        problems.extend(exc.problems)
        return None
    problems.extend(document.problems)
    data = document.data if document.data is not None else {}
    if not isinstance(data, dict):
        problems.append(problem_at(document.marks.get(()), (), "a Compose file's top level must be a mapping"))
        return None
    marks = dict(document.marks) or {(): Mark(str(file), 1, 1)}
    return _interpolated(data, marks, (), variables, problems), marks


def _interpolated(value: Any, marks: Marks, path: tuple, variables: Mapping[str, str],
                  problems: list[Problem]) -> Any:
    """Compose interpolates every value, never a key; ``x-`` extensions included."""
    if isinstance(value, str):
        if "$" in value and isinstance(variables, _Recorder):
            variables.note(value)
        try:
            return interpolate(value, variables)
        except InterpolationError as exc:
            problems.append(problem_at(marks.get(path), path, str(exc)))
            return value
    if isinstance(value, dict):
        return {k: _interpolated(v, marks, (*path, k), variables, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolated(v, marks, (*path, i), variables, problems) for i, v in enumerate(value)]
    return value


def normalize_project_name(text: str) -> str:
    """Compose's rule: lowercase, only ``a-z0-9_-``, starting with a letter or digit."""
    return re.sub(r"[^a-z0-9_-]", "", text.lower()).lstrip("_-")


def _project_name(data: dict, marks: Marks, directory: Path, variables: Mapping[str, str],
                  options: ComposeOptions) -> str:
    """``-p``, else ``COMPOSE_PROJECT_NAME``, else ``name:``, else the project directory's name."""
    for given in (options.project_name, variables.get("COMPOSE_PROJECT_NAME")):
        if given:
            return given  # checked, as given, by the stack name rule
    if data.get("name"):
        return str(data["name"])
    return normalize_project_name(directory.name) or "default"


def _active_profiles(options: ComposeOptions, variables: Mapping[str, str]) -> set[str]:
    if options.profiles:
        return set(options.profiles)
    return {p.strip() for p in variables.get("COMPOSE_PROFILES", "").split(",") if p.strip()}


def _select_profiles(data: dict, marks: Marks, active: set[str], problems: list[Problem]) -> None:
    """Drop the services of inactive profiles, and dependencies on them that are not required."""
    services = data.get("services")
    if not isinstance(services, dict):
        return
    dropped = {name: list(map(str, service["profiles"])) for name, service in services.items()
               if isinstance(service, dict) and isinstance(service.get("profiles"), list) and service["profiles"]
               and "*" not in active and not active.intersection(map(str, service["profiles"]))}
    for name in dropped:
        del services[name]
    for name, service in services.items():
        depends = service.get("depends_on") if isinstance(service, dict) else None
        if not isinstance(depends, dict):
            continue
        for other in [o for o in depends if o in dropped]:
            entry = depends[other] if isinstance(depends[other], dict) else {}
            path = ("services", name, "depends_on", other)
            if entry.get("required") is False:
                del depends[other]
            else:
                problems.append(problem_at(marks.get(path), path, f"depends on service {other!r}, whose "
                                           f"profiles ({', '.join(dropped[other])}) are not active: activate "
                                           "one with --profile, or set required: false"))
