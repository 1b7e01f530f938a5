"""The daemon's configuration file: read safely, checked against its schema, located errors.

The same YAML reader and the same schema explanations as stack specs, so a
mistake in ``daemon.yaml`` is reported at its file, line and field too.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

from ..addresses import AddressPool, PoolError, pool_from_mapping
from ..errors import SpecError
from ..model import PreviewRules, Target
from .previewconfig import preview_problems, preview_rules
from ..report import ApplyOptions
from ..spec.fleet import make_target, tls_findings
from ..spec.locations import nearest_mark, problem_at
from ..spec.validate import schema_findings
from ..spec.yamlsafe import compose_file
from ..state import HistoryLimits

__all__ = ["PUBLIC_URL_ENV", "ApiConfig", "CommitStatus", "DaemonConfig", "GitSource", "GitWrite", "Source",
           "Webhook", "default_state_dir", "load_config"]

SCHEMA_FILE = "daemon.schema.json"
#: Where the daemon tells plugins its ``api.public_url`` (the notify plugin links its messages to the status page).
PUBLIC_URL_ENV = "RECONCILER_PUBLIC_URL"
MAX_BYTES = 1024 * 1024
#: The placeholders a ``write.branch`` may hold.
BRANCH_FIELDS = frozenset({"stack", "image", "version"})
#: Each forge's REST API, where a source's ``status:`` does not name one (Gitea's has no public default).
STATUS_APIS = {"github": "https://api.github.com", "gitlab": "https://gitlab.com/api/v4"}


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
class GitWrite:
    """How the daemon commits to a git source (``write:``): image updates written back (``daemon.writeback``)."""

    #: Author and committer of each commit, ``name <email>``.
    author: str = "reconciler <reconciler@localhost>"
    #: An ssh private key (absolute) that signs each commit (git's ssh signing); None: unsigned.
    signing_key: str | None = None
    #: A branch per update (placeholders ``{stack}`` ``{image}`` ``{version}``) instead of the tracked ref.
    branch: str | None = None


@dataclass(frozen=True)
class CommitStatus:
    """Where a git source's passes are told as commit statuses (``status:``), on a forge (``daemon.feedback``)."""

    provider: str  # github, gitlab or gitea
    api_url: str  # without a trailing '/'
    repository: str  # owner/name, or GitLab's project path or id
    token_file: str | None = None  # absolute
    token_env: str | None = None
    #: The status's name on the commit; ``{stack}`` is the stack's name.
    context: str = "reconciler/{stack}"
    #: Where the status links to (the status page); ``{stack}`` is the stack's name; None: no link.
    target_url: str | None = None


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
    #: The roots an absolute or ``~`` bind source outside the checkout may be inside (``allow_host_paths``
    #: as a list; ``false``: none); None (``true``, the default) allows any host path, as the CLI does.
    allow_host_paths: tuple[str, ...] | None = None
    #: Take over a running Compose project of each stack's name (as ``reconcile adopt``) on every pass.
    adopt_compose: bool = False
    #: How image updates are committed to this (git) source; None: as ``GitWrite``'s defaults.
    write: GitWrite | None = None
    #: Each pass that applies a commit appends its result to the commit's git note (``refs/notes/reconciler``).
    notes: bool = False
    #: Each pass that applies a commit sets a commit status on the forge; None: none.
    status: CommitStatus | None = None
    #: A preview of each stack for every branch that matches (``previews:``, ``daemon.previews``); None: none.
    previews: PreviewRules | None = None


@dataclass(frozen=True)
class ApiConfig:
    """Where the HTTP API listens and who may use it (paths absolute)."""

    tokens_file: str
    host: str = "127.0.0.1"
    port: int = 8470
    tls_cert: str | None = None
    tls_key: str | None = None
    max_body: int = 1024 * 1024
    session_hours: float = 12.0
    #: The address people reach the status page at (behind a proxy), for links in notifications; None: unknown.
    public_url: str | None = None


@dataclass(frozen=True)
class Webhook:
    """``POST /hooks/NAME``: a signed delivery makes the daemon fetch ``sources`` (a registry's: look at images)."""

    name: str
    provider: str  # github, gitea, gitlab, generic, or registry (its pushes name images, not git sources)
    sources: tuple[str, ...]  # () for a registry
    secret_file: str | None = None  # absolute
    secret_env: str | None = None


@dataclass(frozen=True)
class DaemonConfig:
    sources: tuple[Source, ...]
    state_dir: str
    engine: str | None = None  # several (the managers of one swarm): comma-separated
    #: The fleet every stack without targets of its own runs on (``targets:``).
    targets: tuple[Target, ...] = ()
    resync: float = 60.0
    log_format: str = "text"
    file: str = ""
    api: ApiConfig | None = None
    webhooks: tuple[Webhook, ...] = ()
    #: Seconds a container's writable-layer changes are reused (``filesystem:`` report/recreate); None: the
    #: runtime's default (``RECONCILER_FILESYSTEM_INTERVAL``, else 60).
    filesystem_interval: float | None = None
    #: How much sync history each stack keeps (``history:``).
    history: HistoryLimits = HistoryLimits()
    #: Where bridge networks without a subnet get theirs (``default_address_pools``; () when the file says ``[]``:
    #: the engine's pools); None, not in the file: ``RECONCILER_DEFAULT_ADDRESS_POOLS``, else the defaults.
    default_address_pools: tuple[AddressPool, ...] | None = None
    #: Passes run at once (the pool's workers); None: sized to the machine (``scheduler.default_workers``).
    workers: int | None = None
    #: A failed release restores the volumes it snapshotted (``update.snapshot``); ``reconcile daemon --no-restore``
    #: turns it off for every stack (the data stays as the new container left it).
    restore: bool = True

    @property
    def apply_options(self) -> ApplyOptions:
        """How every stack's passes apply (``restore``)."""
        return ApplyOptions(restore=self.restore)


def default_state_dir() -> str:
    """The reconciler's state directory (``reconciler.state.default_state_dir``): checkouts live beside its record."""
    from ..state import default_state_dir as state_dir

    return str(state_dir())


def _engine(value: str | list[str] | None) -> str | None:
    """The engine URL, or a list of managers as the comma-separated URL the connection takes."""
    return ",".join(value) if isinstance(value, list) else value


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
        problems.append(problem_at(nearest_mark(document.marks, where), where, message))
    problems += _twice(data, "sources", "source", document.marks)
    problems += _twice(data, "webhooks", "webhook", document.marks)
    if not problems:
        problems += _hook_sources(data, document.marks)
        problems += _write_problems(data, document.marks)
        problems += _feedback_problems(data, document.marks)
        problems += preview_problems(data, document.marks)
        problems += _target_problems(data, document.marks, path.resolve().parent)
        problems += _pool_problems(data, document.marks)
    if problems:
        raise SpecError(problems)
    return _build(data, path.resolve())


def _twice(data: dict, key: str, what: str, marks: dict) -> list:
    """A problem for each entry of ``data[key]`` whose name an earlier entry already has."""
    names = [entry.get("name") for entry in data.get(key) or [] if isinstance(entry, dict)]
    return [problem_at(nearest_mark(marks, (key, index, "name")), (key, index, "name"), f"{what} {name!r} is defined twice")
            for index, name in enumerate(names) if name is not None and names.index(name) != index]


def _hook_sources(data: dict, marks: dict) -> list:
    """A webhook names git sources of this file (a directory source is watched, there is nothing to fetch);
    a registry's names none: its pushes are about images."""
    kinds = {s["name"]: "git" if "git" in s else "dir" for s in data["sources"]}
    problems = []
    for index, hook in enumerate(data.get("webhooks") or []):
        registry, where = hook["provider"] == "registry", ("webhooks", index)
        if registry and "sources" in hook:
            problems.append(problem_at(nearest_mark(marks, where + ("sources",)), where + ("sources",),
                                       "a registry webhook names no sources: its pushes name the images to look "
                                       "at, not git sources to fetch"))
        elif not registry and "sources" not in hook:
            problems.append(problem_at(nearest_mark(marks, where), where,
                                       f"a {hook['provider']} webhook needs sources: the git sources a delivery "
                                       "makes the daemon fetch"))
        for at, name in enumerate(() if registry else hook.get("sources") or ()):
            where = ("webhooks", index, "sources", at)
            if name not in kinds:
                problems.append(problem_at(nearest_mark(marks, where), where, f"no source is named {name!r}"))
            elif kinds[name] != "git":
                problems.append(problem_at(nearest_mark(marks, where), where,
                                           f"source {name!r} is a directory, watched already: a webhook only "
                                           "makes sense for a git source"))
    return problems


def _write_problems(data: dict, marks: dict) -> list:
    """``write:`` is for git sources only, and its ``branch`` names only the placeholders it is given."""
    problems = []
    for index, entry in enumerate(data["sources"]):
        write = entry.get("write")
        if write is None:
            continue
        if "git" not in entry:
            where = ("sources", index, "write")
            problems.append(problem_at(nearest_mark(marks, where), where, "a directory source is not committed to: "
                                                                   "write: is for git sources only"))
        unknown = _branch_fields(write.get("branch") or "") - BRANCH_FIELDS
        if unknown:
            where = ("sources", index, "write", "branch")
            problems.append(problem_at(nearest_mark(marks, where), where,
                                       f"unknown placeholder {{{sorted(unknown)[0]}}}: use {{stack}}, {{image}} "
                                       "or {version}"))
    return problems


def _feedback_problems(data: dict, marks: dict) -> list:
    """``notes:`` and ``status:`` are for git sources; a Gitea status names its ``api_url`` (there is no public
    default); a ``context`` or ``target_url`` holds no placeholder but ``{stack}``."""
    problems = []
    for index, entry in enumerate(data["sources"]):
        status = entry.get("status")
        for key in ("notes", "status"):
            if "git" not in entry and entry.get(key):
                where = ("sources", index, key)
                problems.append(problem_at(nearest_mark(marks, where), where, f"a directory source has no commits: {key}: "
                                                                       "is for git sources only"))
        if status is None:
            continue
        if status["provider"] not in STATUS_APIS and "api_url" not in status:
            where = ("sources", index, "status")
            problems.append(problem_at(nearest_mark(marks, where), where,
                                       f"a {status['provider']} status needs api_url: the forge's API, "
                                       "e.g. https://gitea.example.com/api/v1"))
        for key in ("context", "target_url"):
            unknown = _branch_fields(status.get(key) or "") - {"stack"}
            if unknown:
                where = ("sources", index, "status", key)
                problems.append(problem_at(nearest_mark(marks, where), where,
                                           f"unknown placeholder {{{sorted(unknown)[0]}}}: use {{stack}}"))
    return problems


def _branch_fields(template: str) -> set[str]:
    """The placeholders ``template`` holds ({name}); a stray brace counts as an unknown one."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError:
        return {"a lone brace"}


def _target_problems(data: dict, marks: dict, base: Path) -> list:
    """``targets:`` and ``engine:`` exclude each other; client certificate files must exist."""
    targets = data.get("targets") or {}
    problems = []
    if targets and data.get("engine"):
        problems.append(problem_at(nearest_mark(marks, ("engine",)), ("engine",),
                                   "name either engine: (one engine, or a swarm's managers) or targets: (a fleet)"))
    for name, target in targets.items():
        problems += [problem_at(nearest_mark(marks, at), at, message)
                     for at, message in tls_findings(("targets", name, "tls"), target, base)]
    return problems


def _pool_problems(data: dict, marks: dict) -> list:
    """Each ``default_address_pools`` entry is an IPv4 network whose block size fits it (``addresses.AddressPool``)."""
    problems = []
    for index, entry in enumerate(data.get("default_address_pools") or []):
        try:
            pool_from_mapping(entry)
        except PoolError as exc:
            at = ("default_address_pools", index, exc.field)
            problems.append(problem_at(nearest_mark(marks, at), at, str(exc)))
    return problems


def _pools(entries: list | None) -> tuple[AddressPool, ...] | None:
    """``default_address_pools`` as ``Reconciler``'s ``address_pools``: None when the file does not say."""
    return None if entries is None else tuple(pool_from_mapping(entry) for entry in entries)


def _host_paths(setting: bool | list[str]) -> tuple[str, ...] | None:
    """A source's ``allow_host_paths`` as ``load_desired``'s ``host_paths``: None (any), () (none) or roots."""
    if setting is True:
        return None
    return tuple(str(Path(root).expanduser()) for root in setting or ())


def _history(data: dict) -> HistoryLimits:
    """``history:`` as the state store's limits, its defaults where a key is left out."""
    default = HistoryLimits()
    return HistoryLimits(keep=int(data.get("keep", default.keep)),
                         max_age=float(data.get("max_age", default.max_age)))


def _write(data: dict | None, absolute) -> GitWrite | None:
    """A source's ``write:`` block, its defaults where a key is left out; None without one."""
    if data is None:
        return None
    return GitWrite(author=data.get("author", GitWrite.author), signing_key=absolute(data.get("signing_key")),
                    branch=data.get("branch"))


def _status(data: dict | None, absolute) -> CommitStatus | None:
    """A source's ``status:`` block, its defaults where a key is left out; None without one."""
    if data is None:
        return None
    provider = data["provider"]
    return CommitStatus(provider=provider, api_url=(data.get("api_url") or STATUS_APIS[provider]).rstrip("/"),
                        repository=data["repository"], token_file=absolute(data.get("token_file")),
                        token_env=data.get("token_env"), context=data.get("context", CommitStatus.context),
                        target_url=data.get("target_url"))


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
            allow_host_paths=_host_paths(entry.get("allow_host_paths", True)),
            adopt_compose=bool(entry.get("adopt_compose", False)),
            write=_write(entry.get("write"), absolute),
            notes=bool(entry.get("notes", False)),
            status=_status(entry.get("status"), absolute),
            previews=preview_rules(entry.get("previews")),
        ))
    api = data.get("api")
    if api is not None:
        host, _, port = api.get("listen", "127.0.0.1:8470").rpartition(":")
        tls = api.get("tls") or {}
        api = ApiConfig(tokens_file=absolute(api["tokens_file"]), host=host.strip("[]"), port=int(port),
                        tls_cert=absolute(tls.get("cert")), tls_key=absolute(tls.get("key")),
                        max_body=int(api.get("max_body", 1024 * 1024)),
                        session_hours=float(api.get("session_hours", 12)), public_url=api.get("public_url"))
    webhooks = tuple(Webhook(name=h["name"], provider=h["provider"], sources=tuple(h.get("sources") or ()),
                             secret_file=absolute(h.get("secret_file")), secret_env=h.get("secret_env"))
                     for h in data.get("webhooks") or [])
    targets = tuple(make_target(name, target, base) for name, target in sorted((data.get("targets") or {}).items()))
    return DaemonConfig(
        api=api,
        targets=targets,
        webhooks=webhooks,
        sources=tuple(sources),
        state_dir=absolute(data.get("state_dir")) or default_state_dir(),
        engine=_engine(data.get("engine")),
        resync=float(data.get("resync", 60)),
        filesystem_interval=float(data["filesystem_interval"]) if "filesystem_interval" in data else None,
        log_format=data.get("log_format", "text"),
        history=_history(data.get("history") or {}),
        default_address_pools=_pools(data.get("default_address_pools")),
        workers=int(data["workers"]) if "workers" in data else None,
        file=str(file),
    )
