"""From a validated spec to ``DesiredState``: defaults filled, names resolved, hashes computed.

Everything a container will really see goes into its config hash, including
the content of its env files and the references it resolves to, so editing an
env file rolls the container. Configs and secrets are read here (and decrypted)
into ``FileMount``s: only their sha256 reaches a hash, so changing one rolls
exactly the containers that mount it. Engine defaults are never hashed: we hash only
what the spec asks for, so an engine restart cannot make a stack look changed.
"""
from __future__ import annotations

import hashlib
import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Collection

from ..defaults import DEFAULT_DRIVERS, DEFAULT_NETWORK_KEY, driver_for
from ..errors import Problem, SpecError
from ..hashing import config_hash, field_hashes
from ..model import (
    ContainerSpec,
    DesiredState,
    EnvVar,
    FileContent,
    FileMount,
    HealthCheck,
    ImageSpec,
    Mount,
    NetworkSpec,
    Target,
    UpdatePolicy,
    VolumeSpec,
)
from . import units
from .buildctx import build_hash
from .containerfields import container_fields
from .filesources import KINDS, file_ref, read_content
from .fleet import build_fleet
from .gitinfo import spec_revision
from .interpolate import parse_env_file
from .loader import RawStack
from .locations import problem_at
from ..names import engine_name_problem, require_stack_name

__all__ = ["active_containers", "build_desired", "image_config_hash", "stack_name_for", "with_container_hashes"]

_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")

# Maps whose keys get a field hash each, so a plan names ``env.LOG_LEVEL`` or ``secrets.db``.
_EXPANDED = frozenset({"env", "labels", "configs", "secrets"})


def image_config_hash(spec: ImageSpec) -> str:
    """What an image's ``config_hash`` is: a build's build hash, else whether to ask upstream.

    (See ``ImageSpec.NO_UPSTREAM_CHECK``: a pulled image's hash is empty when its
    tag is followed upstream, the marker when not, as for an archive, which no
    registry is asked about.)
    """
    if spec.is_build:
        return spec.build_hash
    return "" if spec.tracks_tag else ImageSpec.NO_UPSTREAM_CHECK


def with_container_hashes(spec: ContainerSpec) -> ContainerSpec:
    """``spec`` with ``config_hash`` and ``field_hashes`` computed from its ``config()``."""
    config = spec.config()
    return replace(spec, config_hash=config_hash(config),
                   field_hashes=tuple(sorted(field_hashes(config, expand=_EXPANDED).items())))


def stack_name_for(raw: RawStack, override: str | None = None) -> str:
    """``--stack``, else ``name:`` in the spec, else the first spec file's directory name.

    All three answer to the one rule of ``names.stack_name_problem``; a name
    that breaks it is a SpecError saying where it came from.
    """
    if override:
        return require_stack_name(override)
    if raw.data.get("name"):
        return require_stack_name(str(raw.data["name"]), problem_at(raw.mark(("name",)), ("name",), ""))
    first = raw.files[0]
    directory = (first if first.is_dir() else first.parent).resolve()
    name = "".join(c for c in directory.name.lower() if c in _NAME_CHARACTERS).lstrip("-_") or "default"
    return require_stack_name(name, Problem("", file=str(first)),
                              hint=f" (made from the directory {directory}; set name: in the spec or pass --stack)")


def _engine_name(what: str, name: str) -> str:
    """``name``, or a ValueError (located by the builder) when the engine could not take it."""
    problem = engine_name_problem(what, name)
    if problem:
        raise ValueError(problem)
    return name


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


def _pairs(mapping: dict | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), _scalar(v)) for k, v in (mapping or {}).items()))


def _build_args(mapping: dict | None) -> tuple[tuple[tuple[str, str], ...], frozenset[str]]:
    """Build args as sorted (name, value) pairs, and the names of those marked ``secret: true``.

    Secret values stay in the pairs: the engine needs them and the build hash
    covers them (a changed secret rebuilds); only their display is redacted.
    """
    pairs, secret = [], set()
    for name, value in (mapping or {}).items():
        if isinstance(value, dict):
            if value.get("secret"):
                secret.add(str(name))
            value = value.get("value")
        pairs.append((str(name), _scalar(value)))
    return tuple(sorted(pairs)), frozenset(secret)


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _argv(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(shlex.split(value))
    return tuple(str(v) for v in value)


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
        containers: dict[str, ContainerSpec] = {}
        for key, value in sorted(active.items()):
            for replica in self._guard(("containers", key), lambda: self._containers(key, value, images, networks, volumes)) or []:
                containers[replica.name] = replica
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
            self.problems.append(problem_at(self.raw.mark(path), path, str(exc)))
            return None

    def _path(self, path: tuple, value: str) -> Path:
        base = self.raw.origin(path).parent
        return (base / Path(value).expanduser()).resolve()

    def _image(self, key: str, value: dict) -> ImageSpec:
        build = value.get("build")
        if value.get("archive"):
            if build:
                raise ValueError("an image comes from build or from archive, not both")
            archive = self._path(("images", key, "archive"), value["archive"])
            self.inputs.add(str(archive))
            if not archive.exists():
                raise ValueError(f"image archive {archive} does not exist")
            # What the archive holds is its registry driver's to read (LiveObject.content).
            spec = ImageSpec(key=key, ref=value["ref"], pull="never", driver=driver_for("images", value),
                             options=_pairs(value.get("options")), archive=str(archive))
            return replace(spec, config_hash=image_config_hash(spec))
        if not build:
            spec = ImageSpec(key=key, ref=value["ref"], pull=value.get("pull", "if-not-present"),
                             driver=driver_for("images", value), track=value.get("track", "tag"),
                             options=_pairs(value.get("options")))
            return replace(spec, config_hash=image_config_hash(spec))
        context = self._path(("images", key, "build", "context"), build["context"])
        dockerfile = build.get("dockerfile", "Dockerfile")
        args, secret_args = _build_args(build.get("args"))
        target = build.get("target")
        digest = build_hash(context, dockerfile, args, target)
        return ImageSpec(
            key=key,
            ref=value.get("ref") or _engine_name("image", f"{self.stack}-{key}") + ":latest",
            pull="never",
            driver=driver_for("images", value),
            options=_pairs(value.get("options")),
            build_context=str(context),
            dockerfile=dockerfile,
            build_args=args,
            secret_args=secret_args,
            push=bool(value.get("push", False)),
            target=target,
            build_hash=digest,
            config_hash=digest,
        )

    def _network(self, key: str, value: dict) -> NetworkSpec:
        ipam = value.get("ipam") or {}
        spec = NetworkSpec(
            key=key,
            name=_engine_name("network", value.get("name") or f"{self.stack}_{key}"),
            driver=driver_for("networks", value),
            options=_pairs(value.get("options")),
            internal=bool(value.get("internal", False)),
            attachable=bool(value.get("attachable", False)),
            subnet=ipam.get("subnet"),
            gateway=ipam.get("gateway"),
            ip_range=ipam.get("ip_range"),
            labels=_pairs(value.get("labels")),
        )
        return replace(spec, config_hash=config_hash(spec.config()))

    def _volume(self, key: str, value: dict) -> VolumeSpec:
        spec = VolumeSpec(
            key=key,
            name=_engine_name("volume", value.get("name") or f"{self.stack}_{key}"),
            driver=driver_for("volumes", value),
            options=_pairs(value.get("options")),
            labels=_pairs(value.get("labels")),
        )
        return replace(spec, config_hash=config_hash(spec.config()))

    def _containers(self, key: str, value: dict, images: dict, networks: dict, volumes: dict) -> list[ContainerSpec]:
        path = ("containers", key)
        image_key = value["image"] if value["image"] in images else None
        image = images.get(image_key) if image_key else None
        env = self._env(path, value)
        nets = self._networks(key, value, networks)
        mounts = tuple(self._mount(path + ("volumes", i), m, volumes) for i, m in enumerate(value.get("volumes") or []))
        files = self._files(value)
        ports = tuple(p for spec in value.get("ports") or [] for p in units.parse_port(spec))
        health = self._healthcheck(value.get("healthcheck"))
        extra = container_fields(value)
        depends = value.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {name: {"condition": "started"} for name in depends}
        spec = ContainerSpec(
            key=key,
            name="",
            replica=0,
            image_key=image_key,
            image_ref=image.ref if image else value["image"],
            image_build=image.build_hash if image else "",
            command=_argv(value.get("command")),
            entrypoint=_argv(value.get("entrypoint")),
            env=env,
            ports=ports,
            networks=nets,
            network_keys=tuple(_network_keys(value)),
            mounts=mounts,
            files=files,
            restart=str(value.get("restart", "no")),
            healthcheck=health,
            depends_on=tuple(sorted((k, (v or {}).get("condition", "started")) for k, v in depends.items())),
            labels=_pairs(value.get("labels")),
            user=value.get("user"),
            working_dir=value.get("working_dir"),
            hostname=value.get("hostname"),
            stop_signal=value.get("stop_signal"),
            stop_grace_period=_seconds(value.get("stop_grace_period")),
            init=bool(value.get("init", False)),
            privileged=bool(value.get("privileged", False)),
            network_mode=value.get("network_mode"),
            memory=units.parse_bytes(value["memory"]) if value.get("memory") is not None else None,
            nano_cpus=int(float(value["cpus"]) * 1e9) if value.get("cpus") is not None else None,
            driver=self.runtime,
            update=_update_policy(value.get("update")),
            addresses=self._addresses(value.get("networks"), networks),
            **self._placement(path, value.get("placement")),
            endpoint_mode=self._endpoint_mode(path, value.get("endpoint_mode")),
            **extra,
        )
        count = int(value.get("replicas", 1))
        if self.services:  # one spec for every replica: the runtime schedules them
            if value.get("container_name"):
                raise ValueError(f"container_name: the {self.runtime} runtime names the service "
                                 f"{self.stack}_{key} itself and schedules its replicas; remove container_name")
            name = _engine_name("service", f"{self.stack}_{key}")
            return [with_container_hashes(replace(spec, name=name, replica=0, replicas=count))]
        spec = with_container_hashes(spec)
        if value.get("container_name"):  # validated: at most one replica
            return [replace(spec, name=_engine_name("container", value["container_name"]), replica=1)][:count]
        _engine_name("container", f"{self.stack}-{key}-{count}")  # the last replica has the longest name
        return [replace(spec, name=f"{self.stack}-{key}-{n}", replica=n) for n in range(1, count + 1)]

    def _placement(self, path: tuple, value: dict | None) -> dict:
        """The ContainerSpec fields of ``placement:``; a problem at its line for a runtime that places nothing."""
        if not value:
            return {}
        if self.scheduling is not None and not self.services:
            self.problems.append(problem_at(
                self.raw.mark(path + ("placement",)), path + ("placement",),
                f"placement: the {self.runtime} runtime runs every container on the one engine it talks to and "
                f"cannot place it; placement needs a runtime that schedules replicas (runtime: swarm)"))
            return {}
        return {
            "placement_constraints": tuple(str(c) for c in value.get("constraints") or ()),
            "placement_preferences": tuple(str(p["spread"]) for p in value.get("preferences") or ()),
            "max_replicas_per_node": value.get("max_replicas_per_node"),
        }

    def _endpoint_mode(self, path: tuple, value: str | None) -> str | None:
        """``endpoint_mode:`` (vip or dnsrr); a problem at its line for a runtime without service endpoints."""
        if value is None:
            return None
        if self.scheduling is not None and not self.services:
            self.problems.append(problem_at(
                self.raw.mark(path + ("endpoint_mode",)), path + ("endpoint_mode",),
                f"endpoint_mode: the {self.runtime} runtime's containers have no service endpoint; "
                f"endpoint_mode needs a runtime that schedules replicas (runtime: swarm)"))
            return None
        return str(value)

    def _env(self, path: tuple, value: dict) -> tuple[EnvVar, ...]:
        merged: dict[str, EnvVar] = {}
        files = value.get("env_file") or []
        for i, name in enumerate([files] if isinstance(files, str) else files):
            env_file = self._path(path + ("env_file", i), name)
            self.inputs.add(str(env_file))
            for k, v in parse_env_file(env_file).items():
                merged[k] = EnvVar(k, v)
        env = value.get("env") or {}
        if isinstance(env, list):
            env = dict(item.partition("=")[::2] for item in env)
        for k, v in env.items():
            if isinstance(v, dict):
                merged[k] = EnvVar(k, _scalar(v.get("value")), bool(v.get("secret", False)))
            else:
                merged[k] = EnvVar(k, _scalar(v))
        return tuple(merged[k] for k in sorted(merged))

    def _file_source(self, section: str, key: str, value: dict) -> tuple[FileContent, str]:
        """A config's or secret's content (decrypted) and its sha256."""
        file = None
        if value.get("file"):
            file = self._path((section, key, "file"), value["file"])
            self.inputs.add(str(file))
        data = read_content(KINDS[section], value, file=file, variables=self.raw.variables((section, key)),
                            environ=self.raw.environ)
        return FileContent(data), hashlib.sha256(data).hexdigest()

    def _files(self, value: dict) -> tuple[FileMount, ...]:
        """The configs and secrets a container lists, as file mounts sorted by target."""
        out = []
        for section, kind in KINDS.items():
            for item in value.get(section) or []:
                ref = file_ref(kind, item)
                if ref.source not in self.sources[section]:
                    raise ValueError(f"{kind} {ref.source!r} is not defined in {section}")
                content, digest = self.sources[section][ref.source]
                out.append(FileMount(kind=kind, name=ref.source, target=ref.target, content_hash=digest,
                                     uid=ref.uid, gid=ref.gid, mode=ref.mode, content=content))
        return tuple(sorted(out, key=lambda m: m.target))

    def _networks(self, key: str, container: dict, networks: dict) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(engine name, aliases) of every network the container joins; its key is an alias on each (as Compose)."""
        value = container.get("networks")
        out = []
        for network in _network_keys(container):
            options = value.get(network) if isinstance(value, dict) else None
            aliases = {key, *((options or {}).get("aliases") or [])}
            out.append((networks[network].name, tuple(sorted(aliases))))
        return tuple(out)

    @staticmethod
    def _addresses(value: Any, networks: dict) -> tuple[tuple[str, str, str], ...]:
        """(engine network name, IPv4, IPv6) for each network entry with a static address."""
        out = []
        for key, options in sorted(value.items() if isinstance(value, dict) else ()):
            v4, v6 = (options or {}).get("ipv4_address") or "", (options or {}).get("ipv6_address") or ""
            if v4 or v6:
                out.append((networks[key].name, v4, v6))
        return tuple(out)

    def _mount(self, path: tuple, value: Any, volumes: dict) -> Mount:
        spec = units.parse_volume_string(value) if isinstance(value, str) else dict(value)
        kind = spec["type"]
        if kind == "tmpfs":
            size = spec.get("size")
            return Mount(type="tmpfs", target=spec["target"], tmpfs_size=units.parse_bytes(size) if size else None)
        if kind == "bind":
            source = str(self._path(path, spec["source"]))
            return Mount(type="bind", target=spec["target"], source=source, read_only=bool(spec.get("read_only")),
                         create_host_path=isinstance(value, str))
        if not spec.get("source"):  # anonymous: made by the engine, handed on to the container's successor
            return Mount(type="volume", target=spec["target"], read_only=bool(spec.get("read_only")))
        volume = volumes[spec["source"]]
        return Mount(type="volume", target=spec["target"], source=volume.name,
                     read_only=bool(spec.get("read_only")), volume_key=volume.key)

    def _healthcheck(self, value: dict | None) -> HealthCheck | None:
        if not value:
            return None
        if value.get("disable"):  # Compose's spelling of test: ["NONE"]: the image's own check is off too
            return HealthCheck(test=("NONE",))
        test = value.get("test")
        test = ("CMD-SHELL", test) if isinstance(test, str) else tuple(str(t) for t in test)
        return HealthCheck(
            test=test,
            interval_ns=units.parse_duration_ns(value.get("interval", 0)),
            timeout_ns=units.parse_duration_ns(value.get("timeout", 0)),
            retries=int(value.get("retries", 0)),
            start_period_ns=units.parse_duration_ns(value.get("start_period", 0)),
        )


def _network_keys(container: dict) -> list[str]:
    """The network keys a container joins: its ``networks``, else the stack's default network.

    A container with ``network_mode`` (host, none) joins none.
    """
    if container.get("network_mode"):
        return []
    value = container.get("networks")
    if not value:
        return [DEFAULT_NETWORK_KEY]
    return sorted(value) if isinstance(value, dict) else list(value)


def _uses_default_network(containers: dict) -> bool:
    """Whether some container joins the default network (so the stack needs it)."""
    return any(DEFAULT_NETWORK_KEY in _network_keys(c) for c in containers.values())


def active_containers(containers: dict | None, profiles: Collection[str]) -> dict[str, dict]:
    """The container entries that are part of the state: those without ``profiles``, or with an enabled one."""
    return {key: value for key, value in (containers or {}).items()
            if not value.get("profiles") or set(value["profiles"]) & set(profiles)}


def _update_policy(value: dict | None) -> UpdatePolicy:
    value = value or {}
    default = UpdatePolicy()
    return UpdatePolicy(
        order=value.get("order", ""),
        parallelism=int(value.get("parallelism", default.parallelism)),
        delay=units.parse_duration_ns(value["delay"]) / 1e9 if "delay" in value else default.delay,
        min_ready=units.parse_duration_ns(value["min_ready"]) / 1e9 if "min_ready" in value else default.min_ready,
        timeout=units.parse_duration_ns(value["timeout"]) / 1e9 if "timeout" in value else default.timeout,
    )


def _seconds(value: Any) -> int | None:
    return None if value is None else units.parse_duration_ns(value) // 10**9
