"""Relative paths of a service or project written out against the directory Compose reads them from.

In one project, relative paths are relative to the project directory. A
service taken by ``extends`` from a file elsewhere keeps the meaning it had
there, and an included project has its own project directory: Compose
rewrites their relative paths as absolute ones against that file's (or that
project's) directory before they join, and so do we. The keys are Compose's
own list (compose-go's ``paths.ResolveRelativePaths``): a build context,
env files, bind mount sources (short and long syntax), config and secret
files, and a local volume bound to a host directory.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["rebase_project", "rebase_service"]

#: Build contexts that are not directories: left as written.
_REMOTE = ("https://", "http://", "git://", "ssh://", "github.com/", "git@")


def rebase_project(data: dict, directory: Path) -> None:
    """Every relative path in the Compose ``data`` made absolute against ``directory``, in place."""
    for service in _entries(data, "services"):
        rebase_service(service, directory)
    for section in ("configs", "secrets"):
        for entry in _entries(data, section):
            if isinstance(entry.get("file"), str):
                entry["file"] = _absolute(entry["file"], directory)
    for volume in _entries(data, "volumes"):
        options = volume.get("driver_opts")
        if (volume.get("driver") in (None, "local") and isinstance(options, dict) and options.get("o") == "bind"
                and isinstance(options.get("device"), str)):
            options["device"] = _absolute(options["device"], directory)


def rebase_service(service: dict, directory: Path) -> None:
    """The relative paths of one Compose service made absolute against ``directory``, in place."""
    build = service.get("build")
    if isinstance(build, str):
        service["build"] = _context(build, directory)
    elif isinstance(build, dict) and isinstance(build.get("context", "."), str):
        build["context"] = _context(build.get("context", "."), directory)
    env_file = service.get("env_file")
    if isinstance(env_file, str):
        service["env_file"] = _absolute(env_file, directory)
    elif isinstance(env_file, list):
        for index, item in enumerate(env_file):
            if isinstance(item, str):
                env_file[index] = _absolute(item, directory)
            elif isinstance(item, dict) and isinstance(item.get("path"), str):
                item["path"] = _absolute(item["path"], directory)
    volumes = service.get("volumes")
    for index, mount in enumerate(volumes if isinstance(volumes, list) else []):
        if isinstance(mount, str):
            volumes[index] = _short_mount(mount, directory)
        elif isinstance(mount, dict) and mount.get("type") == "bind" and isinstance(mount.get("source"), str):
            mount["source"] = _absolute(mount["source"], directory)


def _entries(data: dict, section: str) -> list[dict]:
    entries = data.get(section)
    return [e for e in entries.values() if isinstance(e, dict)] if isinstance(entries, dict) else []


def _absolute(path: str, directory: Path) -> str:
    """``path`` as Compose resolves it: ``~`` expanded later (by whoever reads it), absolute kept, else joined.

    A ``..`` is kept as written (``/project/common/../../etc``): validation
    still sees a relative path that climbs, and confines it to the repository.
    """
    if not path or path.startswith(("/", "~")):
        return path
    return str(directory / path)


def _context(context: str, directory: Path) -> str:
    if "://" in context or context.startswith(_REMOTE):
        return context
    return _absolute(context, directory)


def _short_mount(mount: str, directory: Path) -> str:
    """``./data:/data:ro`` with its source made absolute; a named volume (no ``.``/``/`` start) is left alone."""
    source, separator, rest = mount.partition(":")
    if separator and source.startswith("."):  # Compose's rule: a source starting with . / ~ is a host path
        return f"{_absolute(source, directory)}:{rest}"
    return mount
