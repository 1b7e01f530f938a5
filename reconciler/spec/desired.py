"""From a validated spec to ``DesiredState``: defaults filled, names resolved, hashes computed.

The stack builder walks the sections in the order their references need:
images, networks (with the implicit default network when a container joins
it), volumes, then configs and secrets, read here (and decrypted) once each.
Only their sha256 reaches a hash, so changing one rolls exactly the containers
that mount it. Containers come last, from everything else
(``containerspecs.ContainerBuilder``). A value that makes no sense becomes a
SpecError at its file and line; every such problem is reported at once.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace
from typing import Any, Callable, Collection, Iterable

from ..defaults import DEFAULT_DRIVERS, DEFAULT_NETWORK_KEY, driver_for
from ..errors import Problem, SpecError
from ..hashing import config_hash
from ..model import ContainerSpec, DesiredState, FileContent, ImageSpec, NetworkSpec, Target, VolumeSpec
from ..names import require_stack_name
from .buildctx import build_hash
from .dockerfile import build_steps
from .containerspecs import ContainerBuilder, network_keys
from .conversions import FieldError, engine_name, pairs, scalar, spec_path
from .filesources import KINDS, read_content
from .fleet import build_fleet
from .gitinfo import spec_revision
from .loader import RawStack
from .locations import KEY, problem_at
from .snapshotspecs import retention
from .updates import ref_position

__all__ = ["active_containers", "build_desired", "stack_name_for"]

_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def stack_name_for(raw: RawStack, override: str | None = None) -> str:
    """``--stack``, else ``name:`` in the spec, else the first spec file's directory name.

    All three answer to the one rule of ``names.stack_name_problem``; a name
    that breaks it is a SpecError saying where it came from.
    """
    if override is not None:  # an empty --stack is a mistake, not "the spec's name"
        return require_stack_name(override)
    if raw.data.get("name"):
        return require_stack_name(str(raw.data["name"]), problem_at(raw.mark(("name",)), ("name",), ""))
    first = raw.files[0]
    directory = (first if first.is_dir() else first.parent).resolve()
    name = "".join(c for c in directory.name.lower() if c in _NAME_CHARACTERS).lstrip("-_") or "default"
    return require_stack_name(name, Problem("", file=str(first)),
                              hint=f" (made from the directory {directory}; set name: in the spec or pass --stack)")


def build_desired(raw: RawStack, stack: str, *, profiles: Collection[str] = (),
                  scheduling: Collection[str] | None = None, targets: tuple[Target, ...] = ()) -> DesiredState:
    """Turn validated raw data into frozen specs; value errors become located SpecErrors.

    A container listing ``profiles`` is part of the state only when one of them is in ``profiles``.
    ``scheduling`` names the runtimes that schedule replicas themselves (see
    ``RuntimeDriver.schedules_replicas``; None: not known, as without plugins). A stack
    whose ``runtime:`` is one of them gets one spec per container key, named
    ``<stack>_<key>`` with ``replicas`` set, and its implicit default network is an
    attachable overlay; ``placement:`` is refused for any other runtime.
    ``targets`` (a daemon's) are the fleet of a stack that names no targets of its own.
    """
    builder = _Builder(raw, stack, profiles, scheduling, targets)
    state = builder.build()
    if builder.problems:
        raise SpecError(builder.problems)
    return state


def _build_args(mapping: dict | None) -> tuple[tuple[tuple[str, str], ...], frozenset[str]]:
    """Build args as sorted (name, value) pairs, and the names of those marked ``secret: true``.

    Secret values stay in the pairs: the engine needs them and the build hash
    covers them (a changed secret rebuilds); only their display is redacted.
    """
    found, secret = [], set()
    for name, value in (mapping or {}).items():
        if isinstance(value, dict):
            if value.get("secret"):
                secret.add(str(name))
            value = value.get("value")
        found.append((str(name), scalar(value)))
    return tuple(sorted(found)), frozenset(secret)


class _Builder:
    def __init__(self, raw: RawStack, stack: str, profiles: Collection[str] = (),
                 scheduling: Collection[str] | None = None, targets: tuple[Target, ...] = ()) -> None:
        self.raw = raw
        self.stack = stack
        self.profiles = frozenset(profiles)
        self.targets = targets
        self.problems: list[Problem] = []
        self.runtime = str(raw.data.get("runtime") or DEFAULT_DRIVERS["containers"])
        self.scheduling = None if scheduling is None else frozenset(scheduling)
        #: The runtime schedules replicas itself (a Swarm service per container key).
        self.services = self.scheduling is not None and self.runtime in self.scheduling
        self.inputs: set[str] = set()  # files besides the spec that the state depends on
        self.sources: dict[str, dict[str, tuple[FileContent, str]]] = {}  # configs and secrets, read once
        self.lines: dict[str, list[str] | None] = {}  # spec files' lines, for where each image's ref stands

    def build(self) -> DesiredState:
        data = self.raw.data
        images = self._each("images", self._image)
        active = active_containers(data.get("containers"), self.profiles)
        networks = self._each("networks", self._network)
        if DEFAULT_NETWORK_KEY not in networks and _uses_default_network(active):
            # Services on several nodes reach each other only over an overlay network.
            default = {"driver": "overlay", "attachable": True} if self.services else {}
            networks[DEFAULT_NETWORK_KEY] = self._network(DEFAULT_NETWORK_KEY, default)
        volumes = self._each("volumes", self._volume)
        self.sources = {section: self._each(section, lambda key, value, s=section: self._file_source(s, key, value))
                        for section in KINDS}
        builder = ContainerBuilder(raw=self.raw, stack=self.stack, runtime=self.runtime, services=self.services,
                                   scheduling=self.scheduling, images=images, networks=networks, volumes=volumes,
                                   sources=self.sources, inputs=self.inputs, problems=self.problems)
        containers: dict[str, ContainerSpec] = {}
        for key, value in sorted(active.items()):
            for replica in self._guard(("containers", key), lambda: builder.specs(key, value)) or []:
                containers[replica.name] = replica
        networks = _with_endpoints(networks, containers.values())
        return DesiredState(
            stack=self.stack,
            images=images,
            networks=networks,
            volumes=volumes,
            containers=containers,
            sources=tuple(str(f) for f in self.raw.files),
            inputs=tuple(sorted(self.inputs)),
            revision=spec_revision(self.raw.files[0]) if self.raw.files else "",
            fleet=build_fleet(self.raw, self.targets),
            runtime=self.runtime,
        )

    def _each(self, section: str, make: Callable[[str, dict], Any]) -> dict[str, Any]:
        out = {}
        for key, value in sorted((self.raw.data.get(section) or {}).items()):
            made = self._guard((section, key), lambda: make(key, value or {}))
            if made is not None:
                out[key] = made
        return out

    def _guard(self, path: tuple, make: Callable[[], Any]) -> Any:
        try:
            return make()
        except (ValueError, OSError) as exc:
            # About the entry, reported at the line of the field at fault when the error names one.
            mark = self.raw.mark((*path, exc.field) if isinstance(exc, FieldError) else path)
            self.problems.append(problem_at(mark, path, str(exc)))
            return None

    def _image(self, key: str, value: dict) -> ImageSpec:
        spec = self._image_source(key, value)
        if "ref" not in value:
            return spec  # a build's default ref: written nowhere
        return replace(spec, update=_policy(value["update"]) if "update" in value else None,
                       ref_at=ref_position(self.raw, ("images", key, "ref"), spec.ref, self.lines))

    def _image_source(self, key: str, value: dict) -> ImageSpec:
        build = value.get("build")
        if value.get("archive"):
            if build:
                raise ValueError("an image comes from build or from archive, not both")
            archive = spec_path(self.raw, ("images", key, "archive"), value["archive"])
            self.inputs.add(str(archive))
            if not archive.exists():
                raise ValueError(f"image archive {archive} does not exist")
            # What the archive holds is its registry driver's to read (LiveObject.content).
            return ImageSpec(key=key, ref=value["ref"], pull="never", driver=driver_for("images", value),
                             options=pairs(value.get("options")), archive=str(archive))
        if not build:
            return ImageSpec(key=key, ref=value["ref"], pull=value.get("pull", "if-not-present"),
                             driver=driver_for("images", value), track=value.get("track", "tag"),
                             options=pairs(value.get("options")))
        context = spec_path(self.raw, ("images", key, "build", "context"), build["context"])
        dockerfile = build.get("dockerfile", "Dockerfile")
        args, secret_args = _build_args(build.get("args"))
        target = build.get("target")
        digest = build_hash(context, dockerfile, args, target)
        return ImageSpec(
            key=key,
            ref=value.get("ref") or engine_name("image", f"{self.stack}-{key}") + ":latest",
            pull="never",
            driver=driver_for("images", value),
            options=pairs(value.get("options")),
            build_context=str(context),
            dockerfile=dockerfile,
            build_args=args,
            secret_args=secret_args,
            push=bool(value.get("push", False)),
            target=target,
            build_hash=digest,
            config_hash=digest,
            build_steps=build_steps(context, dockerfile, args, target, frozenset(secret_args)),
        )

    def _network(self, key: str, value: dict) -> NetworkSpec:
        if value.get("external"):
            return NetworkSpec(key=key, **self._external("networks", key, value))
        ipam = value.get("ipam") or {}
        spec = NetworkSpec(
            key=key,
            name=self._engine_name("network", key, value),
            driver=driver_for("networks", value),
            options=pairs(value.get("options")),
            internal=bool(value.get("internal", False)),
            attachable=bool(value.get("attachable", False)),
            subnet=ipam.get("subnet"),
            gateway=ipam.get("gateway"),
            ip_range=ipam.get("ip_range"),
            labels=pairs(value.get("labels")),
        )
        return replace(spec, config_hash=config_hash(spec.config()))

    def _volume(self, key: str, value: dict) -> VolumeSpec:
        if value.get("external"):
            return VolumeSpec(key=key, **self._external("volumes", key, value))
        spec = VolumeSpec(
            key=key,
            name=self._engine_name("volume", key, value),
            driver=driver_for("volumes", value),
            options=pairs(value.get("options")),
            labels=pairs(value.get("labels")),
            retention=retention(value.get("snapshots")),
        )
        return replace(spec, config_hash=config_hash(spec.config()))

    def _external(self, section: str, key: str, value: dict) -> dict[str, Any]:
        """An external network's or volume's fields: its engine name (``name:``, else the key as written,
        never prefixed, as Compose names it) and where the spec asks for it."""
        mark = self.raw.mark((section, key, "external", KEY))
        given = "name" if value.get("name") else ""
        return {"name": engine_name(section[:-1], str(value.get("name") or key), field=given), "external": True,
                "origin": f"{mark.file}:{mark.line}:{mark.col}" if mark is not None else ""}

    def _engine_name(self, what: str, key: str, value: dict) -> str:
        """A network's or volume's ``name:``, else ``<stack>_<key>``, if the engine can take it."""
        if value.get("name"):
            return engine_name(what, str(value["name"]), field="name")
        return engine_name(what, f"{self.stack}_{key}")

    def _file_source(self, section: str, key: str, value: dict) -> tuple[FileContent, str]:
        """A config's or secret's content (decrypted) and its sha256."""
        file = None
        if value.get("file"):
            file = spec_path(self.raw, (section, key, "file"), value["file"])
            self.inputs.add(str(file))
        data = read_content(KINDS[section], value, file=file, variables=self.raw.variables((section, key)),
                            environ=self.raw.environ)
        return FileContent(data), hashlib.sha256(data).hexdigest()


def _with_endpoints(networks: dict[str, NetworkSpec], containers: Iterable[ContainerSpec]) -> dict[str, NetworkSpec]:
    """``networks`` with each one's ``endpoints``: how many containers join it, a service's replicas counted."""
    counts: Counter[str] = Counter()
    for container in containers:
        for key in container.network_keys:
            counts[key] += container.replicas or 1
    return {key: replace(spec, endpoints=counts[key]) if counts[key] else spec for key, spec in networks.items()}


def _uses_default_network(containers: dict) -> bool:
    """Whether some container joins the default network (so the stack needs it)."""
    return any(DEFAULT_NETWORK_KEY in network_keys(c) for c in containers.values())


def active_containers(containers: dict | None, profiles: Collection[str]) -> dict[str, dict]:
    """The container entries that are part of the state: those without ``profiles``, or with an enabled one."""
    return {key: value for key, value in (containers or {}).items()
            if not value.get("profiles") or set(value["profiles"]) & set(profiles)}


def _policy(data):
    """The image's version policy (``imagepolicy`` imported only for a spec that has one)."""
    from ..imagepolicy import parse_policy

    return parse_policy(data)
