"""The data that flows between phases: desired state, live state, and their vocabulary.

Desired objects are built from a validated spec (``reconciler.spec.desired``); live
objects are built by drivers from what the engine reports. Both are frozen so a
phase can never change what an earlier phase computed. Everything here is plain
data: no I/O, no docker import.
"""
from __future__ import annotations

import enum
import warnings
from dataclasses import asdict, field
from functools import cached_property
from typing import Any, ClassVar, Mapping

from . import labels as _labels
from .defaults import DEFAULT_DRIVERS
from .values import value

__all__ = [
    "Content",
    "ContainerSpec",
    "DesiredState",
    "EnvVar",
    "FileContent",
    "Fleet",
    "FileMount",
    "HealthCheck",
    "ImageSpec",
    "Kind",
    "LiveObject",
    "LiveState",
    "Mount",
    "NetworkSpec",
    "Placement",
    "Port",
    "Record",
    "Target",
    "TLSFiles",
    "VolumeSpec",
]

# Label names lived here before reconciler.labels; the old names keep working
# for one release, with a DeprecationWarning.
_MOVED_LABELS = {
    "LABEL_PREFIX": "PREFIX",
    "STACK_LABEL": "STACK",
    "KIND_LABEL": "KIND",
    "NAME_LABEL": "NAME",
    "REPLICA_LABEL": "REPLICA",
    "HASH_LABEL": "CONFIG_HASH",
    "FIELDS_LABEL": "FIELDS",
    "DRIVER_LABEL": "DRIVER",
    "BUILD_HASH_LABEL": "BUILD_HASH",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED_LABELS:
        new = _MOVED_LABELS[name]
        warnings.warn(f"reconciler.model.{name} moved to reconciler.labels.{new}", DeprecationWarning, stacklevel=2)
        return getattr(_labels, new)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Kind(str, enum.Enum):
    """The four object kinds the core knows, in the order they are created."""

    IMAGE = "image"
    NETWORK = "network"
    VOLUME = "volume"
    CONTAINER = "container"


@value
class ImageSpec:
    """An image to pull (``ref`` only), to build (``build_context`` set) or to load (``archive`` set).

    Reaches registry drivers (``pull``, ``build``, ``push``) and plugins' hooks.
    """

    #: The key under ``images:`` in the spec; for an image a container names
    #: inline (``image: busybox:1``), the reference itself.
    key: str
    #: The reference the engine knows the image by (``host/name:tag`` or ``name@sha256:…``).
    ref: str
    #: ``always``, ``if-not-present`` or ``never``; builds and archives are never pulled.
    pull: str = "if-not-present"
    #: The registry driver that makes the image present (see ``reconciler.defaults``).
    driver: str = DEFAULT_DRIVERS["images"]
    #: The absolute build context, when the image is built.
    build_context: str | None = None
    #: The Dockerfile, relative to the context.
    dockerfile: str = "Dockerfile"
    #: Every build arg, secret ones included (the engine needs their values):
    #: kept out of repr so a logged or printed spec never shows a secret.
    build_args: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    #: Names of build args whose values are redacted everywhere.
    secret_args: frozenset[str] = frozenset()
    #: After a build, push ``ref`` to its registry.
    push: bool = False
    #: The Dockerfile stage to build.
    target: str | None = None
    #: The content hash of a built image's inputs (honouring ``.dockerignore``); empty for
    #: pulled and archived images. Containers hash it, so a change rolls them.
    build_hash: str = ""
    #: What the registry driver's ``observe`` receives for this image (see ``NO_UPSTREAM_CHECK``).
    config_hash: str = ""
    #: The absolute path of a docker-save tarball or OCI layout directory. The core only checks
    #: that it exists: what it holds is its registry driver's to read (see ``LiveObject.content``).
    archive: str | None = None
    #: ``tag``: follow the tag upstream; ``digest``: keep the local image, never ask.
    track: str = "tag"
    #: The registry driver's options (``images.<key>.options``), sorted (key, value) pairs, values as
    #: strings; checked against the driver's options schema when the spec is validated.
    options: tuple[tuple[str, str], ...] = ()

    # A pulled image has no config of its own to hash: its ``config_hash`` (all
    # that a registry driver's observe receives) says instead whether to ask the
    # registry where its tag points. Empty (the default, and what an inline
    # reference in a container gets) means ask; this marker means do not.
    NO_UPSTREAM_CHECK: ClassVar[str] = "upstream-check:off"

    @property
    def is_build(self) -> bool:
        return self.build_context is not None

    @property
    def secret_values(self) -> tuple[str, ...]:
        """The values of secret build args, longest first (so a value inside another is not half-redacted)."""
        values = {v for k, v in self.build_args if k in self.secret_args and v}
        return tuple(sorted(values, key=lambda v: (-len(v), v)))

    @property
    def is_archive(self) -> bool:
        return self.archive is not None

    @property
    def is_pinned(self) -> bool:
        """A reference by digest (``name@sha256:…``): it never moves."""
        return "@" in self.ref

    @property
    def tracks_tag(self) -> bool:
        """Whether the registry is asked where this image's tag points now (see ``NO_UPSTREAM_CHECK``)."""
        return (not self.is_build and not self.is_archive and not self.is_pinned
                and self.track == "tag" and self.pull != "never")


@value
class NetworkSpec:
    """A network, named ``<stack>_<key>`` on the engine unless ``name`` is given."""

    #: The key under ``networks:`` in the spec.
    key: str
    #: The engine name.
    name: str
    #: The network driver (see ``reconciler.defaults``).
    driver: str = DEFAULT_DRIVERS["networks"]
    #: Driver options, sorted (key, value) pairs.
    options: tuple[tuple[str, str], ...] = ()
    internal: bool = False
    attachable: bool = False
    subnet: str | None = None
    gateway: str | None = None
    ip_range: str | None = None
    #: The user's own labels, sorted (key, value) pairs.
    labels: tuple[tuple[str, str], ...] = ()
    #: The hash of ``config()``.
    config_hash: str = ""
    #: Options the driver can change without recreating the object (its options schema marks
    #: them ``x-reconciler-change: in-place``); outside ``config()``, so no hash depends on it.
    in_place: frozenset[str] = frozenset()

    def config(self) -> dict:
        """The normalized config that ``config_hash`` and the per-field hashes cover."""
        return {
            "driver": self.driver,
            "options": dict(self.options),
            "internal": self.internal,
            "attachable": self.attachable,
            "subnet": self.subnet,
            "gateway": self.gateway,
            "ip_range": self.ip_range,
            "labels": dict(self.labels),
        }


@value
class VolumeSpec:
    """A named volume, kept across container replacements and by default across prunes."""

    #: The key under ``volumes:`` in the spec.
    key: str
    #: The engine name.
    name: str
    #: The storage driver (see ``reconciler.defaults``).
    driver: str = DEFAULT_DRIVERS["volumes"]
    #: Driver options, sorted (key, value) pairs.
    options: tuple[tuple[str, str], ...] = ()
    #: The user's own labels, sorted (key, value) pairs.
    labels: tuple[tuple[str, str], ...] = ()
    #: The hash of ``config()``.
    config_hash: str = ""
    #: Options the driver can change without recreating the object (its options schema marks
    #: them ``x-reconciler-change: in-place``); outside ``config()``, so no hash depends on it.
    in_place: frozenset[str] = frozenset()

    def config(self) -> dict:
        """The normalized config that ``config_hash`` and the per-field hashes cover."""
        return {"driver": self.driver, "options": dict(self.options), "labels": dict(self.labels)}


@value
class EnvVar:
    name: str
    value: str
    #: Never printed, logged or stored: only its name reaches the labels.
    secret: bool = False


@value
class Port:
    #: The container's port.
    target: int
    #: The host port; None lets the engine pick a free one.
    published: int | None = None
    protocol: str = "tcp"
    #: The host address to publish on ("" = every address).
    host_ip: str = ""


@value
class Mount:
    """A mount; for ``volume`` the source is the engine volume name, for ``bind`` an absolute path."""

    #: ``volume``, ``bind`` or ``tmpfs``.
    type: str
    #: The path inside the container.
    target: str
    source: str = ""
    read_only: bool = False
    #: A tmpfs mount's size in bytes.
    tmpfs_size: int | None = None
    #: The key under ``volumes:`` of a volume mount's volume.
    volume_key: str | None = None
    #: A bind mount written in the short syntax: a missing source is made a directory
    #: on the engine's host when the container is created (as Compose does). Out of the
    #: config hash: it changes nothing the container sees once its source exists.
    create_host_path: bool = False

    def config(self) -> dict:
        """What the container's config hash covers for this mount."""
        config = asdict(self)
        del config["create_host_path"]
        return config


class FileContent:
    """The bytes of a config or a secret, held so that no rendering can show them.

    ``repr`` and ``str`` name only the size, and a deep copy (``asdict``) shares
    the object, so a spec that is logged, printed or serialized with
    ``default=str`` never carries a secret. ``reveal()`` is for the driver that
    writes the file, and for nothing else.
    """

    __slots__ = ("_data",)

    def __init__(self, data: bytes = b"") -> None:
        self._data = bytes(data)

    def reveal(self) -> bytes:
        """The content itself: only a runtime driver materializing the file calls this."""
        return self._data

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"<{len(self._data)} bytes>"

    __str__ = __repr__

    def __copy__(self) -> FileContent:
        return self  # immutable: and a copy would be one more place holding the bytes

    def __deepcopy__(self, memo: dict) -> FileContent:
        return self

    def __reduce__(self):  # pickling would write the bytes out: refuse
        raise TypeError("FileContent is not serializable")


@value
class FileMount:
    """A config or secret materialized as a file and bind-mounted read-only into a container.

    ``config()`` covers everything here but ``content``: only its sha256
    (``content_hash``) is hashed, so a changed config or secret replaces
    exactly the containers that mount it, and no label or plan holds the content.
    """

    #: ``config`` or ``secret``.
    kind: str
    #: The key under ``configs:`` or ``secrets:`` in the spec.
    name: str
    #: The absolute path of the file inside the container.
    target: str
    #: The hex sha256 of the content.
    content_hash: str
    #: The owner of the file; None: root when the reconciler runs as root, else its own user.
    uid: int | None = None
    gid: int | None = None
    #: The file's permission bits (default 0444 for configs, 0400 for secrets).
    mode: int = 0o444
    #: The bytes themselves, out of repr, equality and hashes.
    content: FileContent = field(default_factory=FileContent, repr=False, compare=False)

    @property
    def secret(self) -> bool:
        return self.kind == "secret"

    def config(self) -> dict:
        """What the container's config hash covers for this file."""
        return {"target": self.target, "uid": self.uid, "gid": self.gid, "mode": self.mode,
                "content": self.content_hash}


@value
class HealthCheck:
    #: The engine's test form: ``("CMD", …)``, ``("CMD-SHELL", "…")`` or ``("NONE",)``.
    test: tuple[str, ...]
    interval_ns: int = 0
    timeout_ns: int = 0
    retries: int = 0
    start_period_ns: int = 0

    @property
    def disabled(self) -> bool:
        """``test: ["NONE"]`` (``disable: true``): no check runs, not even the image's own."""
        return self.test[:1] == ("NONE",)


@value
class UpdatePolicy:
    """How a replacement of a container rolls out (``update:`` in the spec). Not part of the config hash."""

    #: ``start-first`` (the new container runs beside the old one until ready) or
    #: ``stop-first``; "" lets the planner choose (start-first unless a fixed host port is published).
    order: str = ""
    #: Replicas replaced at once.
    parallelism: int = 1
    #: Seconds between one replica's replacement and the next.
    delay: float = 0.0
    #: Seconds a container without a healthcheck must keep running to count as ready.
    min_ready: float = 0.0
    #: Seconds the new container may take to be healthy or ready before the rollout fails.
    timeout: float = 60.0


@value
class ContainerSpec:
    """One container replica, fully resolved: engine names for image, networks and volumes.

    Reaches the runtime driver's ``create`` and plugins' hooks. ``config()``
    is what the config hash covers; the fields after it in this class
    (identity, ordering, hashes) are not part of it.
    """

    #: The key under ``containers:`` in the spec.
    key: str
    #: The engine name, ``<stack>-<key>-<replica>``.
    name: str
    #: The replica number, from 1.
    replica: int
    #: The key under ``images:`` the container names, or None for an inline reference.
    image_key: str | None
    #: The image reference the container runs.
    image_ref: str
    #: The image's build hash (built and archived images), so a rebuild rolls the container.
    image_build: str = ""
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    #: The environment, sorted by name; secret values included (the engine needs them).
    env: tuple[EnvVar, ...] = ()
    ports: tuple[Port, ...] = ()
    #: (engine network name, aliases) pairs; the first one is attached at create.
    networks: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: The keys under ``networks:`` the container joins (for ordering and policy checks).
    network_keys: tuple[str, ...] = ()
    #: ``host``, ``none`` or None (the engine's default, or ``networks``).
    network_mode: str | None = None
    mounts: tuple[Mount, ...] = ()
    #: Configs and secrets mounted as files, sorted by target.
    files: tuple[FileMount, ...] = ()
    #: The engine's restart policy: ``no``, ``always``, ``unless-stopped``, ``on-failure``.
    restart: str = "no"
    healthcheck: HealthCheck | None = None
    #: (container key, condition) pairs; the condition is ``started``, ``healthy`` or ``completed``.
    depends_on: tuple[tuple[str, str], ...] = ()
    #: The user's own labels, sorted (key, value) pairs.
    labels: tuple[tuple[str, str], ...] = ()
    user: str | None = None
    working_dir: str | None = None
    hostname: str | None = None
    stop_signal: str | None = None
    #: Seconds the engine waits after the stop signal before it kills the process.
    stop_grace_period: int | None = None
    init: bool = False
    privileged: bool = False
    #: The memory limit in bytes.
    memory: int | None = None
    #: The CPU limit in billionths of a CPU.
    nano_cpus: int | None = None
    #: Ports the container exposes without publishing them, as ``"80/tcp"``, sorted.
    expose: tuple[str, ...] = ()
    #: Capabilities added and dropped (as written: ``NET_ADMIN`` or ``CAP_NET_ADMIN``), sorted.
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    #: Namespaced kernel parameters, sorted (key, value) pairs.
    sysctls: tuple[tuple[str, str], ...] = ()
    #: Extra ``/etc/hosts`` lines as ``"host:address"``, in the spec's order.
    extra_hosts: tuple[str, ...] = ()
    #: DNS servers, search domains and resolver options, in the spec's order.
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_opt: tuple[str, ...] = ()
    #: The size of ``/dev/shm`` in bytes.
    shm_size: int | None = None
    #: (name, soft, hard) resource limits, sorted by name.
    ulimits: tuple[tuple[str, int, int], ...] = ()
    #: Host devices as ``"host:container:permissions"``, in the spec's order.
    devices: tuple[str, ...] = ()
    #: Security options (``no-new-privileges``, ``seccomp=…``, ``label=…``), in the spec's order.
    security_opt: tuple[str, ...] = ()
    #: The PID namespace (``host``, ``container:<name>``); None: its own.
    pid: str | None = None
    #: The IPC namespace (``host``, ``private``, ``shareable``, ``none``, ``container:<name>``); None: the engine's.
    ipc: str | None = None
    #: The logging driver and its options, sorted (key, value) pairs; None: the engine's default.
    log_driver: str | None = None
    log_options: tuple[tuple[str, str], ...] = ()
    #: The image platform (``linux/amd64``), when not the engine's own.
    platform: str | None = None
    #: The OCI runtime (``runc``, ``runsc``…); None: the engine's default.
    runtime: str | None = None
    #: Keep stdin open, and allocate a terminal.
    stdin_open: bool = False
    tty: bool = False
    #: Mount the root file system read-only.
    read_only: bool = False
    #: (engine network name, IPv4 address, IPv6 address) for networks with a static address.
    addresses: tuple[tuple[str, str, str], ...] = ()
    #: The runtime driver that runs the container (the stack's ``runtime:``).
    driver: str = DEFAULT_DRIVERS["containers"]
    #: For a runtime that schedules replicas itself (``RuntimeDriver.schedules_replicas``, e.g. a
    #: Swarm service): how many it runs, and this one spec stands for them all (``name`` is
    #: ``<stack>_<key>``, ``replica`` 0). None for a runtime that gets one spec per replica, so
    #: that neither this field nor ``update`` reaches the hash of such a container.
    replicas: int | None = None
    #: Where a scheduling runtime may run the replicas (``placement:``): node constraints
    #: (``node.role==worker``, ``node.labels.zone==a``), in the spec's order.
    placement_constraints: tuple[str, ...] = ()
    #: Spread preferences, as the label descriptors to spread over (``node.labels.zone``), in order.
    placement_preferences: tuple[str, ...] = ()
    #: At most this many replicas on one node (None: no limit).
    max_replicas_per_node: int | None = None
    #: How a scheduling runtime's clients reach the replicas by the service's name: ``vip`` (one
    #: virtual address, load-balanced by the kernel's IPVS) or ``dnsrr`` (the name resolves to the
    #: replicas' own addresses). None: the runtime's default (Swarm's ``vip``).
    endpoint_mode: str | None = None
    #: How a replacement rolls out.
    update: UpdatePolicy = UpdatePolicy()
    #: The hash of ``config()``: different from the live container's means replace it.
    config_hash: str = ""
    #: Short per-field hashes of ``config()`` (env and labels per key), to name what changed.
    field_hashes: tuple[tuple[str, str], ...] = ()

    def config(self) -> dict:
        """The normalized config that ``config_hash`` and ``field_hashes`` cover.

        Fields at their defaults are left out of the hash (see ``hashing``), so a
        release that adds a field does not replace every container.
        """
        return {
            "image": self.image_ref,
            "image_build": self.image_build,
            "command": self.command,
            "entrypoint": self.entrypoint,
            "env": self.env_dict(),
            "ports": [asdict(p) for p in self.ports],
            "networks": {name: list(aliases) for name, aliases in self.networks},
            "mounts": [m.config() for m in self.mounts],
            "restart": self.restart,
            "healthcheck": asdict(self.healthcheck) if self.healthcheck else None,
            "labels": dict(self.labels),
            "user": self.user,
            "working_dir": self.working_dir,
            "hostname": self.hostname,
            "stop_signal": self.stop_signal,
            "stop_grace_period": self.stop_grace_period,
            "init": self.init,
            "privileged": self.privileged,
            "network_mode": self.network_mode,
            "memory": self.memory,
            "nano_cpus": self.nano_cpus,
            # The Compose fields below are at their defaults (and so out of the hash) unless the spec sets them.
            "expose": list(self.expose),
            "cap_add": list(self.cap_add),
            "cap_drop": list(self.cap_drop),
            "sysctls": dict(self.sysctls),
            "extra_hosts": list(self.extra_hosts),
            "dns": list(self.dns),
            "dns_search": list(self.dns_search),
            "dns_opt": list(self.dns_opt),
            "shm_size": self.shm_size,
            "ulimits": [list(u) for u in self.ulimits],
            "devices": list(self.devices),
            "security_opt": list(self.security_opt),
            "pid": self.pid,
            "ipc": self.ipc,
            "logging": ({"driver": self.log_driver, "options": dict(self.log_options)}
                        if self.log_driver or self.log_options else None),
            "platform": self.platform,
            "runtime": self.runtime,
            "stdin_open": self.stdin_open,
            "tty": self.tty,
            "read_only": self.read_only,
            "addresses": {name: [v4, v6] for name, v4, v6 in self.addresses},
            # Empty (and so left out of the hash) for a container that mounts none.
            "configs": self._file_configs("config"),
            "secrets": self._file_configs("secret"),
            # None (out of the hash) unless a scheduling runtime runs this container: the
            # runtime then rolls updates out itself, by this policy, so it is part of the config.
            "replicas": self.replicas,
            "placement": ({"constraints": list(self.placement_constraints),
                           "preferences": list(self.placement_preferences),
                           "max_replicas_per_node": self.max_replicas_per_node}
                          if self.placement_constraints or self.placement_preferences
                          or self.max_replicas_per_node is not None else None),
            "endpoint_mode": self.endpoint_mode,
            "update": asdict(self.update) if self.replicas is not None else None,
        }

    def _file_configs(self, kind: str) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for mount in self.files:
            if mount.kind == kind:
                out.setdefault(mount.name, []).append(mount.config())
        return out

    def env_dict(self) -> dict[str, str]:
        return {e.name: e.value for e in self.env}

    def file_hashes(self, kind: str) -> dict[str, str]:
        """Content hashes of the configs (``kind="config"``) or secrets this container mounts, by name."""
        return {m.name: m.content_hash for m in self.files if m.kind == kind}

    @property
    def secret_env(self) -> frozenset[str]:
        return frozenset(e.name for e in self.env if e.secret)


@value
class TLSFiles:
    """Client certificate files for a ``tcp://`` engine that verifies its clients (absolute paths)."""

    ca: str
    cert: str
    key: str


@value
class Target:
    """One engine of a fleet, as a spec's ``targets:`` names it."""

    #: The target's key in ``targets:``: how reports, status and history name it.
    name: str
    #: unix://, tcp:// or ssh:// URL of its engine.
    engine: str
    tls: TLSFiles | None = None
    #: Label -> value, matched by ``Placement.labels``.
    labels: Mapping[str, str] = field(default_factory=dict)


@value
class Placement:
    """Which of the fleet's targets run a stack (``placement:``); the default is all of them."""

    #: Label -> value a target must carry to be chosen.
    labels: Mapping[str, str] = field(default_factory=dict)
    #: How many of the matching targets (None: all).
    count: int | None = None
    #: A label key whose values the chosen targets take in turn.
    spread: str | None = None


@value
class Fleet:
    """The engines a stack runs on: ``targets:`` and ``placement:``. No object's hash reads it."""

    targets: tuple[Target, ...] = ()
    placement: Placement = field(default_factory=Placement)


@value
class DesiredState:
    """What the spec asks for. The one output of ``reconciler.spec.load_desired``."""

    #: The stack's name: every object it owns carries it in a label.
    stack: str
    #: Images by spec key.
    images: Mapping[str, ImageSpec] = field(default_factory=dict)
    #: Networks by spec key.
    networks: Mapping[str, NetworkSpec] = field(default_factory=dict)
    #: Volumes by spec key.
    volumes: Mapping[str, VolumeSpec] = field(default_factory=dict)
    #: Container replicas by engine name.
    containers: Mapping[str, ContainerSpec] = field(default_factory=dict)
    #: The spec files, as given.
    sources: tuple[str, ...] = ()
    #: Other files the desired state was read from (env files, image archives), absolute:
    #: what ``reconcile watch`` watches besides the spec files and build contexts.
    inputs: tuple[str, ...] = ()
    #: The git revision of the spec files ("" outside a repository).
    revision: str = ""
    #: The engines the stack runs on, when the spec names a fleet (None: the one ``--engine``).
    fleet: Fleet | None = None
    #: The runtime driver the stack's containers run on (its ``runtime:``). It says what the
    #: stack's lock and record are keyed on (``RuntimeDriver.engine_id``): a Swarm stack's is the
    #: swarm, whichever manager is reached.
    runtime: str = DEFAULT_DRIVERS["containers"]

    def is_empty(self) -> bool:
        return not (self.images or self.networks or self.volumes or self.containers)

    def secret_values(self) -> frozenset[str]:
        """Every value marked secret, as text: secret env values, secret build args, and secret files.

        For a process-wide redactor: a secret file is registered whole and
        stripped (a file read into a log line usually loses its final newline).
        """
        env = {e.value for spec in self.containers.values() for e in spec.env if e.secret}
        args = {v for spec in self.images.values() for v in spec.secret_values}
        files = set()
        for spec in self.containers.values():
            for mount in spec.files:
                if mount.secret:
                    text = mount.content.reveal().decode("utf-8", "replace")
                    files.update({text, text.strip()})
        return frozenset(v for v in env | args | files if v)

    def of(self, kind: Kind) -> Mapping[str, Any]:
        """The wanted objects of ``kind`` by engine name (images by reference), as ``LiveState.of``.

        Images include those containers name inline (``image: busybox:1``),
        each once, with the default registry driver.
        """
        return self._by_kind[kind]

    @cached_property
    def _by_kind(self) -> dict[Kind, Mapping[str, Any]]:
        images = {spec.ref: spec for spec in self.images.values()}
        for container in self.containers.values():
            if container.image_key is None and container.image_ref not in images:
                images[container.image_ref] = ImageSpec(key=container.image_ref, ref=container.image_ref)
        return {
            Kind.IMAGE: images,
            Kind.NETWORK: {spec.name: spec for spec in self.networks.values()},
            Kind.VOLUME: {spec.name: spec for spec in self.volumes.values()},
            Kind.CONTAINER: dict(self.containers),
        }


@value
class Content:
    """A registry driver's answer to "does the local image hold what the spec's source holds now?".

    Set on an image's ``LiveObject.content`` by ``observe``: the documented way
    for a registry driver to say that the content behind a reference changed
    (a tag moved upstream, an archive now holds another image), and the only
    one the core reads. The core then pulls the image again
    (``RegistryDriver.pull``) and replaces the containers that use it.
    ``None`` on the live object means the driver did not or could not tell:
    the image is then never updated for its content (only an image with
    ``pull: always`` that tracks its tag is pulled anyway, by policy).
    """

    #: True: the source holds other content than the local image; False: checked, the same.
    changed: bool
    #: The local content, as a short non-secret identifier (a digest, an image id), for the plan's text.
    local: str = ""
    #: What the source holds now, likewise (shown by ``status`` as ``upstream``).
    source: str = ""


@value
class LiveObject:
    """An object as its driver reports it, reduced to what planning needs.

    Built by drivers' ``observe``; read by the planner, ``status`` and plugins.
    """

    kind: Kind
    #: The engine name (images: the reference).
    name: str
    #: The engine id. Volumes have none: the id the reconciler gave the volume
    #: (its ``io.reconciler.volume-id`` label) when its driver reports it, else the name.
    id: str
    #: Every label the object carries (see ``reconciler.labels``).
    labels: Mapping[str, str] = field(default_factory=dict)
    #: True when the labels claim this stack owns it.
    owned: bool = False
    #: A container's state: ``running``, ``exited``, ``created``, ``paused``, ``restarting``.
    state: str = ""
    #: A container's health status, when it has a healthcheck.
    health: str = ""
    #: An exited container's exit code.
    exit_code: int | None = None
    #: The image a container runs, or an image's own id.
    image_id: str = ""
    #: Non-secret values a driver could read cheaply, used to explain a change:
    #: ``networks`` and ``volumes`` (attached names) for containers,
    #: ``repo_digests`` for images, and after a config change the old values of
    #: the changed fields. No key here tells the planner that an image's content
    #: changed: a registry driver says so through ``content``.
    details: Mapping[str, object] = field(default_factory=dict)
    #: Images only: whether the content behind the reference changed (see ``Content``);
    #: None (the driver cannot tell) never triggers an update for the image's content.
    content: Content | None = None
    #: What ``reconcile status`` shows about the object (text and JSON, under ``details``):
    #: short, non-secret facts the driver read anyway, e.g. a storage driver's ``path``
    #: or ``usage``. Never read by the planner.
    info: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.labels.get(_labels.NAME, "")

    @property
    def config_hash(self) -> str:
        return self.labels.get(_labels.CONFIG_HASH, "")

    @property
    def field_hashes(self) -> dict[str, str]:
        return _labels.read_field_hashes(self.labels)


@value
class LiveState:
    """What the engine holds that matters to this stack: owned objects and name collisions.

    Each map is keyed by engine name (images by reference).
    """

    images: Mapping[str, LiveObject] = field(default_factory=dict)
    networks: Mapping[str, LiveObject] = field(default_factory=dict)
    volumes: Mapping[str, LiveObject] = field(default_factory=dict)
    containers: Mapping[str, LiveObject] = field(default_factory=dict)

    def of(self, kind: Kind) -> Mapping[str, LiveObject]:
        return {
            Kind.IMAGE: self.images,
            Kind.NETWORK: self.networks,
            Kind.VOLUME: self.volumes,
            Kind.CONTAINER: self.containers,
        }[kind]


@value
class Record:
    """What the reconciler's own record says about one stack on one engine (see ``reconciler.state``).

    Labels say what an object *claims*; the record says what the reconciler
    *did*. The planner reads both: an object whose labels claim the stack but
    which the record does not list is reported, never changed or deleted,
    unless the user adopts it (``--adopt``).
    """

    #: (kind, name, id) of every object the reconciler created.
    created: frozenset[tuple[Kind, str, str]] = frozenset()
    #: (kind, name, id) of every object it took over instead (``--adopt``, or a record rebuilt from
    #: labels): it may update, replace and prune them, but deleting a volume's data needs more.
    adopted: frozenset[tuple[Kind, str, str]] = frozenset()
    #: True when the record knows nothing of this stack on this engine (a new machine, a new state
    #: directory): the pass rebuilds it from the objects that match by labels and config hash,
    #: and deletes nothing.
    missing: bool = False

    def union(self, other: Record) -> Record:
        """What either record lists (the stack's record under another identity of the same engine)."""
        return Record(created=self.created | other.created, adopted=self.adopted | other.adopted,
                      missing=self.missing and other.missing)

    def lists(self, obj: LiveObject) -> bool:
        """Whether the record lists this very object (kind, name and id)."""
        key = (obj.kind, obj.name, obj.id)
        return key in self.created or key in self.adopted

    def made(self, obj: LiveObject) -> bool:
        """Whether the reconciler created this very object (not merely adopted it)."""
        return (obj.kind, obj.name, obj.id) in self.created
