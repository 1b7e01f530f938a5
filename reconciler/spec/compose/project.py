"""Read a Compose project the way ``docker compose`` does, before any translation.

The files are found (``compose.yaml``, ``docker-compose.yml``, … and the
override file beside them), read with our safe YAML reader (positions kept),
interpolated with the project's variables (the process environment over the
project directory's ``.env``, or over ``--env-file`` files), their
``include`` and ``extends`` followed and merged in override order
(``assemble``, ``merge``), reduced to the services of the active profiles,
and named. The result is still Compose data: ``translate`` turns it into a
stack spec.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import Problem, SpecError
from ..locations import problem_at
from .assemble import assemble
from .files import Reading
from .merge import Marks

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
    #: The files read through ``extends`` and ``include`` (and the included projects' ``.env``): watched too.
    linked: tuple[Path, ...] = field(default_factory=tuple)


def read_project(files: Sequence[Path], environ: Mapping[str, str], options: ComposeOptions, *,
                 allow_outside: bool = False) -> ComposeProject:
    """Read, interpolate and merge ``files`` (already found) into one project; raise SpecError on problems.

    Their ``extends`` and ``include`` are followed (``assemble``); the files
    these name must lie in the repository of the file naming them, unless
    ``allow_outside``.
    """
    problems: list[Problem] = []
    reading = Reading(problems, allow_outside=allow_outside)
    directory = files[0].resolve().parent
    named = [Path(f) for f in options.env_files]
    env_files = tuple(named or ([directory / ".env"] if (directory / ".env").is_file() else []))
    variables = {**reading.env_files(env_files), **environ}
    data, marks = assemble(files, directory, reading.variables(variables), reading)
    if problems:
        raise SpecError(problems)
    name = _project_name(data, marks, directory, variables, options)
    _select_profiles(data, marks, _active_profiles(options, variables), problems)
    if problems:
        raise SpecError(problems)
    unset = tuple(sorted(reading.unset))
    for variable in unset:
        log.warning("the %s variable is not set: defaulting to a blank string", variable)
    return ComposeProject(data, marks, tuple(files), directory, variables, name, unset, env_files,
                          tuple(dict.fromkeys(reading.linked)))


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
