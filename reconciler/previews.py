"""A stack's desired state made into a preview of one branch: its name, its host ports, what it may share.

Why a module of its own: a preview is a second copy of a stack on the same
engine, and a copy fights the original for whatever the spec names outright.
The daemon loads a branch's spec with ``stack=preview_name(...)``, so every
name the builder derives (``<stack>-<key>-<n>``, ``<stack>_<key>``,
``<stack>-<key>:latest``) is the preview's already. What is left is what the
spec gives by hand or takes from the host: ``container_name:``, a volume's or
network's ``name:``, a built image's ``ref:``, fixed host ports and subnets,
external volumes and host paths it writes. ``preview_of`` changes exactly
those, recomputes every hash, and says each change in a note for the
preview's status. The rule it keeps: **a preview never writes what the main
stack writes**; what it may not own it shares read-only.

Everything here is pure (no engine, no daemon, no git, no record): the
daemon's preview workers (``reconciler.daemon.previews``) call it on every
pass, with the host ports the record kept, so an unchanged branch gives equal
hashes and its containers are never recreated.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path
from typing import Collection, Iterable, Mapping

from .errors import SpecError
from .hashing import config_hash
from .model import ContainerSpec, DesiredState, ImageSpec, Mount, NetworkSpec, Port, PreviewRules, VolumeSpec
from .names import MAX_STACK_NAME
from .spec.containerspecs import with_container_hashes
from .spec.conversions import engine_name
from .units import size_text
from .values import value

__all__ = ["Adapted", "PortsExhausted", "allocate_ports", "port_key", "port_keys", "preview_name", "preview_of",
           "preview_urls"]

# A run of characters a stack name may not hold; one '-' stands for the run.
_OUTSIDE_NAME = re.compile(r"[^a-z0-9_-]+")
# Hex digits of sha256(stack NUL branch) that tell apart two names cut to the same text.
_SUFFIX_DIGITS = 6
# A host address that means "every address": the engine's host is the one to name in a URL.
_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::", "[::]"})


class PortsExhausted(SpecError):
    """The previews' host port range has fewer free ports than a preview needs."""

    def __init__(self, port_range: tuple[int, int], needed: int, free: int) -> None:
        low, high = port_range
        super().__init__(f"the previews' port range {low}-{high} has {free} free host port(s), and this preview "
                         f"needs {needed} more: widen port_range, lower max, or use ports: drop")
        self.port_range = port_range
        self.needed = needed
        self.free = free


@value
class Adapted:
    """A preview's desired state, and what was changed to make it one (one sentence each, for its status)."""

    desired: DesiredState
    notes: tuple[str, ...] = ()


def preview_name(stack: str, branch: str, taken: Collection[str] = ()) -> str:
    """The preview stack name of ``stack`` at ``branch``: ``{stack}-{branch}`` made a valid stack name.

    Lowercased, each run of characters outside ``[a-z0-9_-]`` one ``-``, the
    branch's part without leading or trailing ``-``/``_``. A name longer than
    ``MAX_STACK_NAME``, in ``taken`` (another stack's or preview's: never this
    preview's own) or with nothing left of the branch is cut and ends in ``-``
    and 6 hex digits of sha256 of ``stack + "\\0" + branch``. The same inputs
    always give the same name.
    """
    part = _OUTSIDE_NAME.sub("-", branch.lower()).strip("-_")
    name = f"{stack}-{part}"
    if part and len(name) <= MAX_STACK_NAME and name not in taken:
        return name
    digest = hashlib.sha256(f"{stack}\0{branch}".encode()).hexdigest()[:_SUFFIX_DIGITS]
    head = name[:MAX_STACK_NAME - _SUFFIX_DIGITS - 1].rstrip("-_")  # the stack starts with [a-z0-9]: never empty
    return f"{head}-{digest}"


def port_key(spec: ContainerSpec, port: Port) -> str:
    """The key a published port is allocated under: ``{container key}-{replica}:{target}/{protocol}``."""
    return f"{spec.key}-{spec.replica}:{port.target}/{port.protocol}"


def port_keys(desired: DesiredState) -> list[str]:
    """The keys of every published host port of ``desired``'s containers, sorted, each once."""
    return sorted({port_key(spec, port) for spec in desired.containers.values()
                   for port in spec.ports if port.published is not None})


def allocate_ports(keys: Iterable[str], kept: Mapping[str, int], taken: Collection[int],
                   rules: PreviewRules) -> dict[str, int]:
    """A host port for each of ``keys``: the one ``kept`` gave it, else the lowest free one of the range.

    Kept ports stay (a moved port would recreate the container); a new key
    gets the lowest port of ``rules.port_range`` neither in ``taken`` (other
    previews', other stacks') nor given in this call, keys in sorted order.
    Raises ``PortsExhausted`` when the range cannot serve them all.
    """
    wanted = sorted(set(keys))
    given = {key: kept[key] for key in wanted if key in kept}
    missing = [key for key in wanted if key not in given]
    if not missing:
        return given
    low, high = rules.port_range
    busy = set(taken) | set(given.values())
    free = [port for port in range(low, high + 1) if port not in busy]
    if len(free) < len(missing):
        raise PortsExhausted(rules.port_range, len(missing), len(free))
    given.update(zip(missing, free))
    return {key: given[key] for key in wanted}


def preview_of(desired: DesiredState, rules: PreviewRules, ports: Mapping[str, int], *,
               tree: Path | None) -> Adapted:
    """``desired`` (loaded with the preview's stack name) made a preview that shares nothing writable.

    ``ports``: the host port of each of ``port_keys(desired)`` (``allocate_ports``;
    unused with ``rules.ports == "drop"``). ``tree``: the branch's checkout; a bind
    mount from outside it is made read-only (None: every bind counts as outside).
    Given names become derived ones, external volumes mounted writable become the
    preview's own (empty), fixed subnets are left to the address pools, host ports
    are remapped or dropped, the limits capped; every hash is recomputed.
    """
    return _Adapter(desired, rules, ports, tree).adapt()


def preview_urls(desired: DesiredState, rules: PreviewRules, engine_host: str) -> tuple[str, ...]:
    """``http://host:port/`` for each published TCP port of a preview's containers, sorted, each once.

    The host is ``rules.host`` when set, else the port's own address when it
    names one, else ``engine_host``; an IPv6 address is bracketed.
    """
    urls = set()
    for spec in desired.containers.values():
        for port in spec.ports:
            if port.published is None or port.protocol != "tcp":
                continue
            host = rules.host or (port.host_ip if port.host_ip not in _ANY_ADDRESS else engine_host)
            urls.add(f"http://{_bracketed(host)}:{port.published}/")
    return tuple(sorted(urls))


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class _Adapter:
    """One ``preview_of`` call: the renames it made, kept so the containers follow them, and its notes."""

    def __init__(self, desired: DesiredState, rules: PreviewRules, ports: Mapping[str, int],
                 tree: Path | None) -> None:
        self.desired = desired
        self.stack = desired.stack
        self.rules = rules
        self.ports = ports
        self.tree = tree.resolve() if tree is not None else None
        self.notes: list[str] = []
        self.image_refs: dict[str, str] = {}  # image key -> the preview's ref
        self.volume_names: dict[str, str] = {}  # volume key -> the preview's engine name
        self.network_names: dict[str, NetworkSpec] = {}  # the spec's engine name -> the preview's network
        self.unpinned: set[str] = set()  # the spec's engine names of networks whose fixed subnet was dropped
        self.container_names: dict[str, str] = {}  # a given container_name -> the preview's name
        self.capped: dict[str, list[str]] = {"memory": [], "nano_cpus": []}

    def adapt(self) -> Adapted:
        images = {key: self._image(spec) for key, spec in sorted(self.desired.images.items())}
        volumes = {key: self._volume(spec) for key, spec in sorted(self.desired.volumes.items())}
        networks = {key: self._network(spec) for key, spec in sorted(self.desired.networks.items())}
        self.container_names = {spec.name: self._derived_container(spec) for spec in self.desired.containers.values()
                                if self._given_name(spec)}
        containers: dict[str, ContainerSpec] = {}
        for spec in sorted(self.desired.containers.values(), key=lambda s: (s.key, s.replica)):
            spec = with_container_hashes(self._container(spec))
            containers[spec.name] = spec
        self._note_caps()
        desired = replace(self.desired, images=images, volumes=volumes, networks=networks, containers=containers)
        return Adapted(desired=desired, notes=tuple(self.notes))

    # -- images, volumes, networks ------------------------------------------------------------

    def _image(self, spec: ImageSpec) -> ImageSpec:
        """A built image the spec tags itself is built under the preview's own tag, and never pushed."""
        if not spec.is_build:
            return spec
        ref = self._derived("image", f"{self.stack}-{spec.key}") + ":latest"
        if spec.ref == ref:
            return spec
        self.image_refs[spec.key] = ref
        pushed = " and is not pushed" if spec.push else ""
        self.notes.append(f"image {spec.key}: built as {ref}{pushed} (its ref {spec.ref} is the main stack's)")
        return replace(spec, ref=ref, push=False, ref_at=None)

    def _volume(self, spec: VolumeSpec) -> VolumeSpec:
        """A volume under the derived name: one with a given name renamed; a writable external one, or one whose
        driver options may name outside storage, made the preview's own (empty, the default driver); an external
        one that no container writes is shared as it is."""
        if spec.external and not self._written(spec.key):
            return spec
        name = self._derived("volume", f"{self.stack}_{spec.key}")
        if spec.external:
            self.notes.append(f"volume {spec.key}: the external volume {spec.name} is mounted writable; the "
                              f"preview has its own, empty, {name}")
            spec = VolumeSpec(key=spec.key, name=name)
        elif spec.options:
            # Options may point the volume at storage outside the engine (a hostdir path, a local bind
            # device, an NFS or CIFS share): the main stack's. Only their names are told: values may hold secrets.
            names = ", ".join(key for key, _ in spec.options)
            self.notes.append(f"volume {spec.key}: its {spec.driver} options ({names}) may name the main stack's "
                              f"storage; the preview has its own, empty, {name}")
            spec = VolumeSpec(key=spec.key, name=name, labels=spec.labels, retention=spec.retention)
        elif spec.name != name:
            self.notes.append(f"volume {spec.key}: named {name} (its name {spec.name} is the main stack's)")
            spec = replace(spec, name=name)
        self.volume_names[spec.key] = name
        return replace(spec, config_hash=config_hash(spec.config()))

    def _written(self, key: str) -> bool:
        """Whether a container mounts volume ``key`` writable (one that mounts it read-only is told so)."""
        mounts = [m for c in self.desired.containers.values() for m in c.mounts if m.volume_key == key]
        if mounts and all(m.read_only for m in mounts):
            self.notes.append(f"volume {key}: the external volume {self.desired.volumes[key].name} is shared, "
                              f"read-only")
        return any(not m.read_only for m in mounts)

    def _network(self, spec: NetworkSpec) -> NetworkSpec:
        """A given name becomes the derived one; a fixed subnet is left to the address pools (it is taken)."""
        if spec.external:
            self.network_names[spec.name] = spec
            return spec
        name = self._derived("network", f"{self.stack}_{spec.key}")
        adapted = spec
        if spec.name != name:
            self.notes.append(f"network {spec.key}: named {name} (its name {spec.name} is the main stack's)")
            adapted = replace(adapted, name=name)
        if spec.subnet or spec.gateway or spec.ip_range:
            self.unpinned.add(spec.name)
            fixed = spec.subnet or spec.ip_range or spec.gateway
            self.notes.append(f"network {spec.key}: its fixed subnet {fixed} is the main stack's; the preview's "
                              f"comes from the address pools, and static addresses on it are dropped")
            adapted = replace(adapted, subnet=None, gateway=None, ip_range=None)
        adapted = replace(adapted, config_hash=config_hash(adapted.config()))
        self.network_names[spec.name] = adapted
        return adapted

    # -- containers -----------------------------------------------------------------------------

    def _container(self, spec: ContainerSpec) -> ContainerSpec:
        given = self._given_name(spec)
        name = self.container_names.get(spec.name, spec.name)
        networks = tuple((self._network_name(net), self._aliases(net, aliases, spec.name if given else ""))
                         for net, aliases in spec.networks)
        if given:
            joined = [self._network_name(net) for net, _ in spec.networks if not self._external(net)]
            alias = f"; {spec.name} stays its alias on {', '.join(joined)}" if joined else ""
            self.notes.append(f"container {spec.key}: named {name} (its container_name {spec.name} is the main "
                              f"stack's){alias}")
        if spec.network_mode == "host":
            self.notes.append(f"container {name}: on the host's network (network_mode: host), it listens on the "
                              f"same ports as the main stack's")
        return replace(
            spec, name=name, networks=networks, addresses=self._addresses(name, spec), ports=self._ports(name, spec),
            mounts=tuple(self._mount(name, m) for m in spec.mounts), image_ref=self.image_refs.get(
                spec.image_key or "", spec.image_ref),
            pid=self._namespace(spec.pid), ipc=self._namespace(spec.ipc), **self._limits(name, spec))

    def _given_name(self, spec: ContainerSpec) -> bool:
        """Whether ``container_name:`` named it (a runtime that schedules replicas names its service itself)."""
        return spec.replicas is None and spec.name != f"{self.stack}-{spec.key}-{spec.replica}"

    def _derived_container(self, spec: ContainerSpec) -> str:
        return self._derived("container", f"{self.stack}-{spec.key}-{spec.replica}")

    def _aliases(self, network: str, aliases: tuple[str, ...], given: str) -> tuple[str, ...]:
        if not given or self._external(network):
            return aliases
        return tuple(sorted({*aliases, given}))

    def _addresses(self, name: str, spec: ContainerSpec) -> tuple[tuple[str, str, str], ...]:
        kept = []
        for network, v4, v6 in spec.addresses:
            if network in self.unpinned:
                self.notes.append(f"container {name}: no static address {v4 or v6} on {self._network_name(network)}")
            else:
                kept.append((self._network_name(network), v4, v6))
        return tuple(kept)

    def _ports(self, name: str, spec: ContainerSpec) -> tuple[Port, ...]:
        out = []
        for port in spec.ports:
            if port.published is None:
                out.append(port)
                continue
            what = f"{port.target}/{port.protocol}"
            if self.rules.ports == "drop":
                self.notes.append(f"container {name}: {what} not published on host port {port.published} "
                                  f"(previews' ports: drop)")
                continue
            published = self.ports[port_key(spec, port)]
            self.notes.append(f"container {name}: {what} published on host port {published}, "
                              f"not {port.published}")
            out.append(replace(port, published=published))
        return tuple(out)

    def _mount(self, name: str, mount: Mount) -> Mount:
        if mount.type == "volume" and mount.volume_key in self.volume_names:
            return replace(mount, source=self.volume_names[mount.volume_key])
        if mount.type == "bind" and not mount.read_only and not self._inside_tree(mount.source):
            self.notes.append(f"container {name}: the host path {mount.source} on {mount.target} is mounted "
                              f"read-only (the main stack's is the same path)")
            return replace(mount, read_only=True)
        return mount

    def _inside_tree(self, source: str) -> bool:
        return self.tree is not None and Path(source).resolve().is_relative_to(self.tree)

    def _namespace(self, value: str | None) -> str | None:
        """``container:<name>`` (pid, ipc) follows a renamed container: the main stack's is not the preview's."""
        if value and value.startswith("container:"):
            target = value.partition(":")[2]
            return f"container:{self.container_names.get(target, target)}"
        return value

    def _limits(self, name: str, spec: ContainerSpec) -> dict[str, int | None]:
        changes = {}
        for field in ("memory", "nano_cpus"):
            cap, own = getattr(self.rules, field), getattr(spec, field)
            if cap is not None and (own is None or own > cap):
                changes[field] = cap
                self.capped[field].append(name)
        return changes

    def _note_caps(self) -> None:
        if self.capped["memory"]:
            self.notes.append(f"memory capped at {size_text(self.rules.memory)}: {', '.join(self.capped['memory'])}")
        if self.capped["nano_cpus"]:
            cpus = self.rules.nano_cpus / 1e9
            self.notes.append(f"CPUs capped at {cpus:g}: {', '.join(self.capped['nano_cpus'])}")

    # -- names ----------------------------------------------------------------------------------

    def _network_name(self, name: str) -> str:
        network = self.network_names.get(name)
        return network.name if network else name

    def _external(self, name: str) -> bool:
        network = self.network_names.get(name)
        return network is not None and network.external

    @staticmethod
    def _derived(what: str, name: str) -> str:
        """``name`` as the builder derives it, or a SpecError when the engine could not take it."""
        try:
            return engine_name(what, name)
        except ValueError as exc:
            raise SpecError(f"preview: {exc}") from None
