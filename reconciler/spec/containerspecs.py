"""A container entry of the spec to its ``ContainerSpec``s: references resolved, replicas named, hashes computed.

A container is the one kind that refers to every other: its image, networks,
volumes, configs and secrets, and its env files on disk. The stack builder
(``desired``) makes those first and hands them to a ``ContainerBuilder``, so
everything a container will really see (the content of its env files, the
engine names its references resolve to, the sha256 of each config and secret)
goes into its config hash, and editing any of them rolls exactly the
containers that use it. Engine defaults are never hashed: only what the spec
asks for, so an engine restart cannot make a stack look changed.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from typing import Any

from ..defaults import DEFAULT_DRIVERS, DEFAULT_NETWORK_KEY
from ..errors import Problem
from ..hashing import config_hash, field_hashes
from ..model import (
    ContainerSpec,
    EnvVar,
    FileContent,
    FileMount,
    HealthCheck,
    ImageSpec,
    Mount,
    NetworkSpec,
    RolloutPolicy,
    VolumeSpec,
)
from . import units
from .containerfields import container_fields
from .conversions import engine_name, pairs, scalar, spec_path
from .filesources import KINDS, file_ref
from .hostports import shown
from .interpolate import parse_env_file
from .loader import RawStack
from .locations import problem_at

__all__ = ["ContainerBuilder", "network_keys", "with_container_hashes"]

# Maps whose keys get a field hash each, so a plan names ``env.LOG_LEVEL`` or ``secrets.db``.
_EXPANDED = frozenset({"env", "labels", "configs", "secrets"})


def with_container_hashes(spec: ContainerSpec) -> ContainerSpec:
    """``spec`` with ``config_hash`` and ``field_hashes`` computed from its ``config()``."""
    config = spec.config()
    return replace(spec, config_hash=config_hash(config),
                   field_hashes=tuple(sorted(field_hashes(config, expand=_EXPANDED).items())))


def network_keys(container: dict) -> list[str]:
    """The network keys a container joins: its ``networks``, else the stack's default network.

    A container with ``network_mode`` (host, none) joins none.
    """
    if container.get("network_mode"):
        return []
    value = container.get("networks")
    if not value:
        return [DEFAULT_NETWORK_KEY]
    return sorted(value) if isinstance(value, dict) else list(value)


@dataclass
class ContainerBuilder:
    """Builds the ``ContainerSpec``s of container entries, from the stack's other objects, already built."""

    raw: RawStack
    stack: str
    #: The containers' runtime (``runtime:``), and whether it schedules replicas itself (a Swarm service
    #: per container key); ``scheduling`` names every runtime that does (None: not known, as without plugins).
    runtime: str
    services: bool
    scheduling: frozenset[str] | None
    images: dict[str, ImageSpec]
    networks: dict[str, NetworkSpec]
    volumes: dict[str, VolumeSpec]
    #: Per section (configs, secrets): key -> (content, sha256), read once by the stack builder.
    sources: dict[str, dict[str, tuple[FileContent, str]]]
    inputs: set[str]  # files besides the spec that the state depends on: env files join it
    problems: list[Problem]  # problems that leave the rest of the entry buildable (placement) join it

    def specs(self, key: str, value: dict) -> list[ContainerSpec]:
        """The specs of the entry ``key``: one per replica, or one for all when the runtime schedules them.

        A value that makes no sense raises ValueError or OSError, for the caller to locate.
        """
        path = ("containers", key)
        image_key = value["image"] if value["image"] in self.images else None
        image = self.images.get(image_key) if image_key else None
        env = self._env(path, value)
        nets = self._networks(key, value)
        mounts = tuple(self._mount(path + ("volumes", i), m) for i, m in enumerate(value.get("volumes") or []))
        files = self._files(value)
        ports = tuple(p for spec in value.get("ports") or [] for p in units.parse_port(spec))
        self._replica_ports(path, value)
        health = _healthcheck(value.get("healthcheck"))
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
            network_keys=tuple(network_keys(value)),
            mounts=mounts,
            files=files,
            restart=str(value.get("restart", "no")),
            healthcheck=health,
            depends_on=tuple(sorted((k, (v or {}).get("condition", "started")) for k, v in depends.items())),
            labels=pairs(value.get("labels")),
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
            addresses=self._addresses(value.get("networks")),
            **self._placement(path, value.get("placement")),
            endpoint_mode=self._endpoint_mode(path, value.get("endpoint_mode")),
            **extra,
        )
        return self._replicas(key, value, spec)

    def _replicas(self, key: str, value: dict, spec: ContainerSpec) -> list[ContainerSpec]:
        """``spec`` named and hashed: per replica ``<stack>-<key>-<n>``, or once for a runtime that schedules them."""
        count = int(value.get("replicas", 1))
        if self.services:  # one spec for every replica: the runtime schedules them
            if value.get("container_name"):
                raise ValueError(f"container_name: the {self.runtime} runtime names the service "
                                 f"{self.stack}_{key} itself and schedules its replicas; remove container_name")
            name = engine_name("service", f"{self.stack}_{key}")
            return [with_container_hashes(replace(spec, name=name, replica=0, replicas=count))]
        spec = with_container_hashes(spec)
        if value.get("container_name"):  # validated: at most one replica
            return [replace(spec, name=engine_name("container", value["container_name"]), replica=1)][:count]
        engine_name("container", f"{self.stack}-{key}-{count}")  # the last replica has the longest name
        return [replace(spec, name=f"{self.stack}-{key}-{n}", replica=n) for n in range(1, count + 1)]

    def _replica_ports(self, path: tuple, value: dict) -> None:
        """A host port under ``replicas`` > 1: each replica would take it, all but the first fail at apply.

        A runtime that schedules replicas (a Swarm service) publishes the port once for all of them.
        """
        count = int(value.get("replicas", 1))
        known = self.scheduling is not None or self.runtime == DEFAULT_DRIVERS["containers"]  # not a service
        if self.services or not known or count < 2:
            return
        for i, entry in enumerate(value.get("ports") or []):
            held = next((p for p in units.parse_port(entry) if p.published is not None), None)
            if held is not None:
                self.problems.append(problem_at(
                    self.raw.mark(path + ("ports", i)), path + ("ports", i),
                    f"host port {shown(held)} would be published by each of the {count} replicas, and one host "
                    "port serves one container: leave the host port out (the engine picks one per replica) "
                    "or use replicas: 1"))

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
            env_file = spec_path(self.raw, path + ("env_file", i), name)
            self.inputs.add(str(env_file))
            for k, v in parse_env_file(env_file).items():
                merged[k] = EnvVar(k, v)
        env = value.get("env") or {}
        if isinstance(env, list):
            env = dict(item.partition("=")[::2] for item in env)
        for k, v in env.items():
            if isinstance(v, dict):
                merged[k] = EnvVar(k, scalar(v.get("value")), bool(v.get("secret", False)))
            else:
                merged[k] = EnvVar(k, scalar(v))
        return tuple(merged[k] for k in sorted(merged))

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

    def _networks(self, key: str, container: dict) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(engine name, aliases) of every network the container joins; its key is an alias on each (as Compose)."""
        value = container.get("networks")
        out = []
        for network in network_keys(container):
            options = value.get(network) if isinstance(value, dict) else None
            aliases = {key, *((options or {}).get("aliases") or [])}
            out.append((self._network_name(network), tuple(sorted(aliases))))
        return tuple(out)

    def _addresses(self, value: Any) -> tuple[tuple[str, str, str], ...]:
        """(engine network name, IPv4, IPv6) for each network entry with a static address."""
        out = []
        for key, options in sorted(value.items() if isinstance(value, dict) else ()):
            v4, v6 = (options or {}).get("ipv4_address") or "", (options or {}).get("ipv6_address") or ""
            if v4 or v6:
                out.append((self._network_name(key), v4, v6))
        return tuple(out)

    def _mount(self, path: tuple, value: Any) -> Mount:
        spec = units.parse_volume_string(value) if isinstance(value, str) else dict(value)
        kind = spec["type"]
        if kind == "tmpfs":
            size = spec.get("size")
            return Mount(type="tmpfs", target=spec["target"], tmpfs_size=units.parse_bytes(size) if size else None)
        if kind == "bind":
            source = str(spec_path(self.raw, path, spec["source"]))
            mark = self.raw.mark(path)
            return Mount(type="bind", target=spec["target"], source=source, read_only=bool(spec.get("read_only")),
                         create_host_path=isinstance(value, str) or bool(spec.get("create_host_path")),
                         origin=f"{mark.file}:{mark.line}:{mark.col}" if mark else "")
        if not spec.get("source"):  # anonymous: made by the engine, handed on to the container's successor
            return Mount(type="volume", target=spec["target"], read_only=bool(spec.get("read_only")))
        volume = self.volumes.get(spec["source"])
        return Mount(type="volume", target=spec["target"], source=volume.name if volume else spec["source"],
                     read_only=bool(spec.get("read_only")), volume_key=spec["source"])

    def _network_name(self, key: str) -> str:
        """The engine name of network ``key``; its key when the network did not build (its problem is reported
        already, and no state is made of a spec with problems)."""
        network = self.networks.get(key)
        return network.name if network else key


def _healthcheck(value: dict | None) -> HealthCheck | None:
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


def _update_policy(value: dict | None) -> RolloutPolicy:
    value = value or {}
    default = RolloutPolicy()
    return RolloutPolicy(
        order=value.get("order", ""),
        parallelism=int(value.get("parallelism", default.parallelism)),
        delay=units.parse_duration_ns(value["delay"]) / 1e9 if "delay" in value else default.delay,
        min_ready=units.parse_duration_ns(value["min_ready"]) / 1e9 if "min_ready" in value else default.min_ready,
        timeout=units.parse_duration_ns(value["timeout"]) / 1e9 if "timeout" in value else default.timeout,
        snapshot=tuple(value.get("snapshot") or ()),
        restore=value.get("restore", default.restore),
    )


def _seconds(value: Any) -> int | None:
    return None if value is None else units.parse_duration_ns(value) // 10**9


def _argv(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(shlex.split(value))
    return tuple(str(v) for v in value)
