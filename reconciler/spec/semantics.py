"""The checks a schema cannot express: references, cycles, paths, files, drivers, configs and secrets.

They run on the parts of a spec the JSON Schema accepted (``failed`` holds the
paths it refused), so one mistake is reported once, in the words that fit it.

Paths answer to two rules. What the reconciler itself reads (env files, build
contexts, config and secret files, image archives) stays inside the spec's
repository, and so does a relative bind source: a spec pulled from a repository
must not make the reconciler read, or a relative path reach, what lies beside
it. An absolute or ``~`` bind source is a host path as Compose means it: the
engine mounts it for whoever writes the spec, so refusing it protects nothing;
an operator narrows it with ``host_paths`` (a daemon source's
``allow_host_paths``) or the policy plugin. See docs/security.md.
"""
from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING, Collection, Mapping

from ..defaults import DEFAULT_DRIVERS, DEFAULT_NETWORK_KEY, driver_for
from ..model import Kind
from ..paths import inside, repo_root
from . import units
from .filesources import KINDS, SourceError, file_ref, read_content
from .addresses import ipam_findings
from .hostports import HostPorts
from .interpolate import InterpolationError, parse_env_file

if TYPE_CHECKING:
    from .loader import RawStack

__all__ = ["semantic_findings", "unknown_drivers"]

_Finding = tuple[tuple, str]  # (path, message)
ALLOW_OUTSIDE_FLAG = "--allow-outside-paths"  # what a user passes to allow_outside, named in the finding
HOST_PATHS_SETTING = "allow_host_paths"  # the daemon source setting host_paths comes from, named in the finding


def semantic_findings(raw: RawStack, failed: set[tuple], *, allow_outside: bool,
                      profiles: Collection[str] = (), host_paths: Collection[str] | None = None) -> list[_Finding]:
    """Every cross-reference, cycle, path and file problem in the parts the schema accepted.

    ``host_paths``: the roots a bind source outside the repository may be inside
    (None: any host path, as Compose; empty: none).
    """
    return _Semantics(raw, failed, allow_outside, profiles, host_paths).findings()


def unknown_drivers(data: dict, failed: set[tuple], drivers: Mapping[str, Collection[str]]) -> list[_Finding]:
    """Entries naming a driver no loaded plugin provides, or one that two plugins claim.

    ``drivers``: section → the names loaded plugins provide; a section given as a
    mapping of name → facts (see ``Reconciler.driver_catalog``) may say, under
    ``"conflict"``, why a name cannot be used. An entry without ``driver:`` is
    checked against its default (``reconciler.defaults``), and the containers
    against the stack's ``runtime:``.
    """
    out = []
    for kind in Kind:
        section = kind.section
        available = sorted(drivers.get(section, ()))
        if kind is Kind.CONTAINER:
            if ("runtime",) in failed or not data.get(section):
                continue
            name = data.get("runtime") or DEFAULT_DRIVERS[section]
            path = ("runtime",) if "runtime" in data else (section,)
            if name not in available:
                out.append((path, f"no plugin provides the runtime driver {name!r} "
                                  f"(available: {', '.join(available) or 'none'})"))
            elif _conflict(drivers, section, name):
                out.append((path, _conflict(drivers, section, name)))
            continue
        entries = data.get(section)
        for key, entry in (entries.items() if isinstance(entries, dict) else ()):
            if not isinstance(entry, dict) or any(p[:2] == (section, key) for p in failed):
                continue
            name = driver_for(section, entry)
            path = (section, key, "driver") if "driver" in entry else (section, key)
            if name not in available:
                out.append((path, f"no plugin provides the {kind.value} driver {name!r} "
                                  f"(available: {', '.join(available) or 'none'})"))
            elif _conflict(drivers, section, name):
                out.append((path, _conflict(drivers, section, name)))
    return out


def _conflict(drivers: Mapping[str, Collection[str]], section: str, name: str) -> str:
    names = drivers.get(section)
    facts = names.get(name) if isinstance(names, Mapping) else None
    return str(facts.get("conflict") or "") if isinstance(facts, Mapping) else ""


class _Semantics:
    """Cross-references, cycles and file-system checks over the parts the schema accepted."""

    def __init__(self, raw: RawStack, failed: set[tuple], allow_outside: bool, profiles: Collection[str] = (),
                 host_paths: Collection[str] | None = None) -> None:
        self.raw = raw
        self.host_paths = None if host_paths is None else tuple(host_paths)
        self.profiles = frozenset(profiles)
        self.names: dict[str, tuple] = {}  # container_name -> path of the first container that took it
        self.failed = failed
        self.allow_outside = allow_outside
        self.out: list[_Finding] = []
        sections = (*(kind.section for kind in Kind), *KINDS)
        self.defined = {name: set(self._section(name)) for name in sections}
        self._roots: dict[Path, Path] = {}
        self.host_ports = HostPorts()  # what the containers checked so far publish on the host

    def findings(self) -> list[_Finding]:
        """Run every check and return what they found."""
        for key, image in self._accepted("images"):
            self._build(key, image)
        for key, network in self._accepted("networks"):
            self.out += ipam_findings(("networks", key, "ipam"), network.get("ipam") or {})
        for section in KINDS:
            for key, entry in self._accepted(section):
                self._file_source(section, key, entry)
        graph: dict[str, list[tuple[str, tuple]]] = {}
        for key, container in self._accepted("containers"):
            base = ("containers", key)
            targets: list[tuple[str, tuple]] = []  # (target, path) of every file a container mounts
            checks = {
                "image": lambda: self._image_ref(base, container),
                "networks": lambda: self._networks(base, container.get("networks")),
                "volumes": lambda: [self._mount((*base, "volumes", i), m)
                                    for i, m in enumerate(container.get("volumes", []))],
                "env_file": lambda: self._env_files(base, container.get("env_file")),
                "depends_on": lambda: graph.__setitem__(key, self._depends_on(base, container.get("depends_on"))),
                "network_mode": lambda: self._network_mode(base, container),
                "container_name": lambda: self._container_name(base, container),
                "ports": lambda: self._ports(base, key, container["ports"]),
                "configs": lambda: targets.extend(self._file_refs(base, "configs", container["configs"])),
                "secrets": lambda: targets.extend(self._file_refs(base, "secrets", container["secrets"])),
            }
            # A schema error in one field must not hide reference errors in the others.
            for field, check in checks.items():
                if field in container and self._clean((*base, field)):
                    check()
            if targets:
                self._one_mount_per_target(base, container, targets)
        self._cycles(graph)
        return self.out

    def _enabled(self, key: str) -> bool:
        """Whether the container ``key`` is part of the state with the enabled profiles."""
        profiles = (self._section("containers").get(key) or {}).get("profiles")
        return not isinstance(profiles, list) or not profiles or bool(set(profiles) & self.profiles)

    def _section(self, name: str) -> dict:
        value = self.raw.data.get(name)
        return value if isinstance(value, dict) else {}

    def _clean(self, prefix: tuple) -> bool:
        """True when the schema raised nothing at, under or above ``prefix``."""
        return not any(p[: len(prefix)] == prefix or prefix[: len(p)] == p for p in self.failed)

    def _accepted(self, section: str) -> list[tuple[str, dict]]:
        """Entries of ``section`` the schema raised nothing about at or above them.

        Images must be clean throughout; containers are checked field by field.
        """
        def above(prefix: tuple) -> bool:
            return any(prefix[: len(p)] == p for p in self.failed)
        return [(key, value) for key, value in self._section(section).items()
                if isinstance(value, dict) and not above((section, key))
                and (section == "containers" or self._clean((section, key)))]

    def _image_ref(self, base: tuple, container: dict) -> None:
        image = container["image"]
        if not any(c in image for c in ":/@") and image not in self.defined["images"]:
            self.out.append(((*base, "image"), f"image {image!r} is not defined in images "
                                               f"(write '{image}:latest' for a registry reference)"))

    def _networks(self, base: tuple, networks: list | dict | None) -> None:
        if isinstance(networks, dict):
            self._addresses(base, networks)
        entries = _entries(networks)
        for where, name in entries:
            if name not in self.defined["networks"] and name != DEFAULT_NETWORK_KEY:
                self.out.append(((*base, "networks", where), f"network {name!r} is not defined in networks"))

    def _addresses(self, base: tuple, networks: dict) -> None:
        """A static address needs a network with a subnet the user configured (the engine refuses it otherwise);
        an external network's subnet is whoever made it's to know."""
        for name, options in networks.items():
            for family in ("ipv4_address", "ipv6_address"):
                if not (options or {}).get(family):
                    continue
                network = (self._section("networks").get(name) if name in self.defined["networks"] else {}) or {}
                if not network.get("external") and not (network.get("ipam") or {}).get("subnet"):
                    self.out.append(((*base, "networks", name, family),
                                     f"a static {family[:4]} address needs a network with an ipam subnet; "
                                     f"network {name!r} has none (set networks.{name}.ipam.subnet)"))

    def _container_name(self, base: tuple, container: dict) -> None:
        name = container["container_name"]
        if int(container.get("replicas", 1) if self._clean((*base, "replicas")) else 1) > 1:
            self.out.append(((*base, "container_name"), f"container_name {name!r} is one engine name: "
                                                         "it needs replicas: 1 (or leave container_name out)"))
        if name in self.names:
            self.out.append(((*base, "container_name"), f"container_name {name!r} is already taken by "
                                                         f"containers.{self.names[name][1]}"))
        self.names.setdefault(name, base)

    def _ports(self, base: tuple, key: str, ports: list) -> None:
        """A host port another container of the stack publishes already: found here, not at apply."""
        if not self._enabled(key) or not isinstance(ports, list):
            return
        for i, entry in enumerate(ports):
            try:
                parsed = units.parse_port(entry)
            except (ValueError, KeyError, TypeError):  # the container's build reports it at its line
                continue
            for clash in self.host_ports.claim(f"containers.{key}.ports[{i}]", parsed):
                self.out.append(((*base, "ports", i), clash))

    def _network_mode(self, base: tuple, container: dict) -> None:
        mode = container["network_mode"]
        if container.get("networks"):
            self.out.append(((*base, "network_mode"),
                             f"network_mode {mode} excludes networks: remove one of the two"))
        if mode == "host" and container.get("ports"):
            self.out.append(((*base, "ports"), "ports cannot be published with network_mode host "
                                               "(the container already uses the host's ports)"))

    def _mount(self, path: tuple, mount: str | dict) -> None:
        spec = units.parse_volume_string(mount) if isinstance(mount, str) else mount
        source, kind = spec.get("source", ""), spec["type"]
        if isinstance(mount, dict) and source:
            path = (*path, "source")
        if kind == "volume" and not source:
            return  # anonymous: the engine makes it (see docs/spec.md)
        if kind == "volume" and source not in self.defined["volumes"]:
            self.out.append((path, f"volume {source!r} is not defined in volumes "
                                   "(a bind mount's source starts with '.', '/' or '~')"))
        elif kind == "bind":
            resolved = self._bind_source(path, source)
            if resolved is not None and isinstance(mount, dict) and not mount.get("create_host_path") \
                    and not resolved.exists():
                # The short syntax makes a missing source a directory; the long one only when asked, as in Compose.
                self.out.append((path, f"bind source {source!r} does not exist ({resolved}): create it, add "
                                       f"create_host_path: true, or write the mount as \"{source}:{spec['target']}\" "
                                       "to have it created"))

    def _file_source(self, section: str, key: str, entry: dict) -> None:
        """Read a config or secret as the model will (decrypting it), to report what stops that."""
        base = (section, key)
        file = None
        if isinstance(entry.get("file"), str):
            file = self._resolve((*base, "file"), entry["file"], self._spec_dir((*base, "file")))
            if file is None:
                return  # it leaves the repository: said already
        try:
            read_content(KINDS[section], entry, file=file, variables=self.raw.variables(base),
                         environ=self.raw.environ)
        except SourceError as exc:
            self.out.append(((*base, exc.field) if exc.field else base, f"{KINDS[section]} {key!r}: {exc}"))

    def _file_refs(self, base: tuple, section: str, items: list) -> list[tuple[str, tuple]]:
        """Check a container's ``configs`` or ``secrets`` list; return (target, path) of each good entry."""
        kind, out = KINDS[section], []
        for i, item in enumerate(items):
            path = (*base, section, i)
            long_form = isinstance(item, dict)
            source = item["source"] if long_form else item
            if source not in self.defined[section]:
                where = (*path, "source") if long_form else path
                self.out.append((where, f"{kind} {source!r} is not defined in {section}"))
            try:
                out.append((file_ref(kind, item).target, path))
            except SourceError as exc:
                self.out.append(((*path, exc.field) if long_form else path, str(exc)))
        return out

    def _one_mount_per_target(self, base: tuple, container: dict, targets: list[tuple[str, tuple]]) -> None:
        """Two mounts at one path: the engine refuses the container; say so at validate."""
        seen: dict[str, str] = {}
        if self._clean((*base, "volumes")):
            for i, mount in enumerate(container.get("volumes") or []):
                spec = units.parse_volume_string(mount) if isinstance(mount, str) else mount
                seen.setdefault(posixpath.normpath(str(spec.get("target") or "/")), f"volumes[{i}]")
        for target, path in targets:
            where = f"{path[-2]}[{path[-1]}]"
            if target in seen:
                self.out.append((path, f"target {target} is already mounted by {seen[target]}"))
            else:
                seen[target] = where

    def _env_files(self, base: tuple, env_file: str | list | None) -> None:
        entries = [((*base, "env_file"), env_file)] if isinstance(env_file, str) else \
            [((*base, "env_file", i), name) for i, name in enumerate(env_file or [])]
        for path, name in entries:
            resolved = self._resolve(path, name, self._spec_dir(path))
            if resolved is None:
                continue
            if not resolved.is_file():
                self.out.append((path, f"env file {name!r} does not exist ({resolved})"))
                continue
            try:
                parse_env_file(resolved)
            except InterpolationError as exc:
                self.out.append((path, f"env file {name!r}: {exc}"))

    def _build(self, key: str, image: dict) -> None:
        if "archive" in image:
            path = ("images", key, "archive")
            self._resolve(path, image["archive"], self._spec_dir(path))  # may not leave the repository
        build = image.get("build")
        if build is None:
            return
        path = ("images", key, "build", "context")
        context = self._resolve(path, build["context"], self._spec_dir(path))
        if context is None:
            return
        if not context.is_dir():
            self.out.append((path, f"build context {build['context']!r} is not a directory ({context})"))
            return
        dockerfile = build.get("dockerfile", "Dockerfile")
        where = ("images", key, "build", "dockerfile") if "dockerfile" in build else path
        resolved = self._resolve(where, dockerfile, context)
        if resolved is not None and not resolved.is_file():
            self.out.append((where, f"{dockerfile!r} not found in build context {build['context']!r}"))

    def _depends_on(self, base: tuple, depends_on: list | dict | None) -> list[tuple[str, tuple]]:
        """Checks the names; returns (dependency, path of its entry) for the cycle search."""
        entries = _entries(depends_on)
        edges = []
        for where, name in entries:
            path = (*base, "depends_on", where)
            if name == base[1]:
                self.out.append((path, f"container {name!r} cannot depend on itself"))
            elif name not in self.defined["containers"]:
                self.out.append((path, f"container {name!r} is not defined in containers"))
            elif not self._enabled(base[1]):
                continue  # left out itself: what it needs does not matter
            elif not self._enabled(name):
                wanted = self._section("containers")[name]["profiles"]
                self.out.append((path, f"container {name!r} is only enabled with profile "
                                       f"{' or '.join(map(str, wanted))} (--profile {wanted[0]})"))
            else:
                edges.append((name, path))
        return edges

    def _cycles(self, graph: dict[str, list[tuple[str, tuple]]]) -> None:
        """Report each depends_on cycle once, at the entry where it starts.

        An iterative depth-first search: every edge is followed once, and an
        edge back to a container still on the trail closes exactly one cycle.
        """
        state: dict[str, str] = {}
        for start in graph:
            if start in state:
                continue
            trail, stack = [start], [iter(graph[start])]
            state[start] = "open"
            while stack:
                name, path = next(stack[-1], (None, ()))
                if name is None:
                    state[trail.pop()] = "done"
                    stack.pop()
                elif state.get(name) == "open":
                    members = trail[trail.index(name):] + [name]
                    message = "depends_on cycle: " + " -> ".join(members)
                    self.out.append((self._entry(graph, members), message))
                elif name not in state and name in graph:
                    state[name] = "open"
                    trail.append(name)
                    stack.append(iter(graph[name]))

    @staticmethod
    def _entry(graph: dict[str, list[tuple[str, tuple]]], members: list[str]) -> tuple:
        return next(path for name, path in graph[members[0]] if name == members[1])

    def _spec_dir(self, path: tuple) -> Path:
        return self.raw.origin(path).resolve().parent

    def _bind_source(self, path: tuple, value: str) -> Path | None:
        """A bind mount's source resolved, or None (and a finding) if it may not be mounted.

        An absolute or ``~`` source is a host path (``~``: the home of the user running
        the reconciler); a relative one is the repository's and may not climb out of it.
        So may not an absolute one that climbs with ``..``: the Compose reader writes a
        relative path of an override file in another folder that way (``/project/../x``).
        Outside the repository, either must lie below one of ``host_paths`` when given.
        """
        if value.startswith("~") or (os.path.isabs(value) and ".." not in Path(value).parts):
            resolved = Path(value).expanduser().resolve()
        else:
            resolved = self._resolve(path, value, self._spec_dir(path))
        if resolved is None or self.host_paths is None:
            return resolved
        root = self._repo_root(self.raw.origin(path).resolve())
        if inside(resolved, root) or any(inside(resolved, os.path.realpath(r)) for r in self.host_paths):
            return resolved
        rule = (f"outside this source's {HOST_PATHS_SETTING} ({', '.join(self.host_paths)})" if self.host_paths
                else f"this source's {HOST_PATHS_SETTING} is false")
        self.out.append((path, f"bind source {value!r} resolves to {resolved}, outside the repository {root}, "
                               f"and {rule}"))
        return None

    def _resolve(self, path: tuple, value: str, base: Path) -> Path | None:
        """Absolute form of a path the reconciler reads, or None (and a finding) if it leaves the repository.

        Relative, absolute and ``~`` paths answer to one rule: a spec from a
        repository makes the reconciler read only what is in that repository,
        unless the user says otherwise (``/etc/os-release`` is no more harmless
        than ``../../etc/os-release``). Symbolic links are followed before judging.
        """
        resolved = (base / Path(value).expanduser()).resolve()
        if self.allow_outside:
            return resolved
        root = self._repo_root(self.raw.origin(path).resolve())
        if not inside(resolved, root):
            self.out.append((path, f"{value!r} resolves to {resolved}, outside the repository {root} "
                                   f"(allow paths outside it with {ALLOW_OUTSIDE_FLAG})"))
            return None
        return resolved

    def _repo_root(self, spec: Path) -> Path:
        """The repository holding the spec file (``paths.repo_root``), looked up once per folder."""
        if spec.parent not in self._roots:
            self._roots[spec.parent] = repo_root(spec)
        return self._roots[spec.parent]


def _entries(value: list | dict | None) -> list[tuple[int | str, str]]:
    """(where, name) for a list of names or a mapping keyed by name (networks, depends_on)."""
    if isinstance(value, list):
        return list(enumerate(value))
    return [(name, name) for name in value or {}]
