"""The daemon's configuration file: read safely, checked against its schema, located errors.

The same YAML reader and the same schema explanations as stack specs, so a
mistake in ``daemon.yaml`` is reported at its file, line and field too.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import SpecError
from ..spec.locations import problem_at
from ..spec.validate import schema_findings
from ..spec.yamlsafe import compose_file

__all__ = ["DaemonConfig", "GitSource", "Source", "default_state_dir", "load_config"]

SCHEMA_FILE = "daemon.schema.json"
MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class GitSource:
    """A git repository the daemon fetches with the git CLI."""

    url: str
    ref: str = "main"
    interval: float = 60.0
    token_file: str | None = None  # absolute
    token_env: str | None = None
    ssh_key: str | None = None  # absolute


@dataclass(frozen=True)
class Source:
    """Where some stacks come from: a git repository or a local directory; each path is one stack."""

    name: str
    git: GitSource | None = None
    dir: str | None = None  # absolute
    paths: tuple[str, ...] = (".",)
    allow_empty: bool = False
    prune_volumes: bool = False
    allow_outside_paths: bool = False


@dataclass(frozen=True)
class DaemonConfig:
    sources: tuple[Source, ...]
    state_dir: str
    engine: str | None = None
    resync: float = 60.0
    log_format: str = "text"
    file: str = ""


def default_state_dir() -> str:
    """The reconciler's state directory (``reconciler.state.default_state_dir``): checkouts live beside its record."""
    from ..state import default_state_dir as state_dir

    return str(state_dir())


def load_config(path: str | Path) -> DaemonConfig:
    """Read and check ``path``; raise ``SpecError`` naming every problem at its file:line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the daemon configuration: {exc.strerror or exc}") from exc
    if len(raw) > MAX_BYTES:
        raise SpecError(f"{path}: {len(raw)} bytes is more than a configuration may hold (1 MiB)")
    document = compose_file(raw.decode("utf-8", errors="replace"), str(path))
    data = document.data if document.data is not None else {}
    problems = list(document.problems)
    for where, message in schema_findings(data, SCHEMA_FILE):
        problems.append(problem_at(_mark(document.marks, where), where, message))
    names = [s.get("name") for s in data.get("sources") or [] if isinstance(s, dict)]
    for index, name in enumerate(names):
        if name is not None and names.index(name) != index:
            where = ("sources", index, "name")
            problems.append(problem_at(_mark(document.marks, where), where, f"source {name!r} is defined twice"))
    if problems:
        raise SpecError(problems)
    return _build(data, path.resolve())


def _mark(marks: dict, path: tuple):
    for end in range(len(path), -1, -1):
        if path[:end] in marks:
            return marks[path[:end]]
    return None


def _build(data: dict, file: Path) -> DaemonConfig:
    base = file.parent

    def absolute(value: str | None) -> str | None:
        return str((base / Path(value).expanduser()).resolve()) if value else None

    sources = []
    for entry in data["sources"]:
        git = entry.get("git")
        sources.append(Source(
            name=entry["name"],
            git=GitSource(url=git["url"], ref=git.get("ref", "main"), interval=float(git.get("interval", 60)),
                          token_file=absolute(git.get("token_file")), token_env=git.get("token_env"),
                          ssh_key=absolute(git.get("ssh_key"))) if git else None,
            dir=absolute(entry.get("dir")),
            paths=tuple(entry.get("paths") or (".",)),
            allow_empty=bool(entry.get("allow_empty", False)),
            prune_volumes=bool(entry.get("prune_volumes", False)),
            allow_outside_paths=bool(entry.get("allow_outside_paths", False)),
        ))
    return DaemonConfig(
        sources=tuple(sources),
        state_dir=absolute(data.get("state_dir")) or default_state_dir(),
        engine=data.get("engine"),
        resync=float(data.get("resync", 60)),
        log_format=data.get("log_format", "text"),
        file=str(file),
    )
