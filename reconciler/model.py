"""The data that flows between phases: desired state, live state, and their vocabulary.

Desired objects are built from a validated spec (``reconciler.spec.desired``); live
objects are built by drivers from what the engine reports. Both are frozen so a
phase can never change what an earlier phase computed. Everything here is plain
data: no I/O, no docker import.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar, Mapping

__all__ = [
    "LABEL_PREFIX",
    "ContainerSpec",
    "DesiredState",
    "EnvVar",
    "HealthCheck",
    "ImageSpec",
    "Kind",
    "LiveObject",
    "LiveState",
    "Mount",
    "NetworkSpec",
    "Port",
    "VolumeSpec",
    "labels_for",
]

LABEL_PREFIX = "io.reconciler."
STACK_LABEL = LABEL_PREFIX + "stack"
KIND_LABEL = LABEL_PREFIX + "kind"
NAME_LABEL = LABEL_PREFIX + "name"
REPLICA_LABEL = LABEL_PREFIX + "replica"
HASH_LABEL = LABEL_PREFIX + "config-hash"
FIELDS_LABEL = LABEL_PREFIX + "fields"
DRIVER_LABEL = LABEL_PREFIX + "driver"
BUILD_HASH_LABEL = LABEL_PREFIX + "build-hash"


class Kind(str, enum.Enum):
    """The four object kinds the core knows, in the order they are created."""

    IMAGE = "image"
    NETWORK = "network"
    VOLUME = "volume"
    CONTAINER = "container"


def labels_for(stack: str, kind: Kind, key: str, config_hash: str, **extra: str) -> dict[str, str]:
    """Ownership labels for an object: stack, kind, spec key and config hash (never config)."""
    labels = {
        STACK_LABEL: stack,
        KIND_LABEL: kind.value,
        NAME_LABEL: key,
        HASH_LABEL: config_hash,
    }
    labels.update({LABEL_PREFIX + k.replace("_", "-"): v for k, v in extra.items()})
    return labels


@dataclass(frozen=True)
class ImageSpec:
    """An image to pull (``ref`` only), to build (``build_context`` set) or to load (``archive`` set).

    ``build_hash`` is the content hash of what the image is made from: the
    build inputs, or for an archive the image id inside it. Containers hash
    it, so a change rolls them.
    """

    key: str
    ref: str
    pull: str = "if-not-present"
    driver: str = "docker"
    build_context: str | None = None
    dockerfile: str = "Dockerfile"
    # Every build arg, secret ones included (the engine needs their values): kept
    # out of repr so a logged or printed spec never shows a secret.
    build_args: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    secret_args: frozenset[str] = frozenset()  # names of build args whose values are redacted everywhere
    push: bool = False  # after a build, push ``ref`` to its registry
    target: str | None = None
    build_hash: str = ""
    config_hash: str = ""
    archive: str | None = None  # absolute path of a docker-save tarball or OCI layout directory
    archive_image_id: str = ""  # the image id inside the archive, read at the desired stage
    track: str = "tag"  # "tag": follow the tag upstream; "digest": keep the local image, never ask

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


@dataclass(frozen=True)
class NetworkSpec:
    """A network, named ``<stack>_<key>`` on the engine unless ``name`` is given."""

    key: str
    name: str
    driver: str = "bridge"
    options: tuple[tuple[str, str], ...] = ()
    internal: bool = False
    attachable: bool = False
    subnet: str | None = None
    gateway: str | None = None
    ip_range: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    config_hash: str = ""

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


@dataclass(frozen=True)
class VolumeSpec:
    """A named volume, kept across container replacements and by default across prunes."""

    key: str
    name: str
    driver: str = "local"
    options: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    config_hash: str = ""

    def config(self) -> dict:
        """The normalized config that ``config_hash`` and the per-field hashes cover."""
        return {"driver": self.driver, "options": dict(self.options), "labels": dict(self.labels)}


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str
    secret: bool = False


@dataclass(frozen=True)
class Port:
    target: int
    published: int | None = None
    protocol: str = "tcp"
    host_ip: str = ""


@dataclass(frozen=True)
class Mount:
    """A mount; for ``volume`` the source is the engine volume name, for ``bind`` an absolute path."""

    type: str
    target: str
    source: str = ""
    read_only: bool = False
    tmpfs_size: int | None = None
    volume_key: str | None = None


@dataclass(frozen=True)
class HealthCheck:
    test: tuple[str, ...]
    interval_ns: int = 0
    timeout_ns: int = 0
    retries: int = 0
    start_period_ns: int = 0


@dataclass(frozen=True)
class ContainerSpec:
    """One container replica, fully resolved: engine names for image, networks and volumes."""

    key: str
    name: str
    replica: int
    image_key: str | None
    image_ref: str
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: tuple[EnvVar, ...] = ()
    ports: tuple[Port, ...] = ()
    networks: tuple[tuple[str, tuple[str, ...]], ...] = ()
    network_keys: tuple[str, ...] = ()
    network_mode: str | None = None
    mounts: tuple[Mount, ...] = ()
    restart: str = "no"
    healthcheck: HealthCheck | None = None
    depends_on: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    user: str | None = None
    working_dir: str | None = None
    hostname: str | None = None
    stop_signal: str | None = None
    stop_grace_period: int | None = None
    init: bool = False
    privileged: bool = False
    memory: int | None = None
    nano_cpus: int | None = None
    config_hash: str = ""
    field_hashes: tuple[tuple[str, str], ...] = ()

    def env_dict(self) -> dict[str, str]:
        return {e.name: e.value for e in self.env}

    @property
    def secret_env(self) -> frozenset[str]:
        return frozenset(e.name for e in self.env if e.secret)


@dataclass(frozen=True)
class DesiredState:
    """What the spec asks for, keyed by spec key (containers by engine name)."""

    stack: str
    images: Mapping[str, ImageSpec] = field(default_factory=dict)
    networks: Mapping[str, NetworkSpec] = field(default_factory=dict)
    volumes: Mapping[str, VolumeSpec] = field(default_factory=dict)
    containers: Mapping[str, ContainerSpec] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    revision: str = ""

    def is_empty(self) -> bool:
        return not (self.images or self.networks or self.volumes or self.containers)


@dataclass(frozen=True)
class LiveObject:
    """An object as the engine reports it, reduced to what planning needs.

    ``owned`` is true when it carries this stack's label. ``state`` is the
    container state (running, exited, created, ...), ``health`` its health
    status if it has a healthcheck. ``image_id`` is the image a container runs,
    or an image's own id. ``details`` holds non-secret values that drivers
    could read cheaply, used only to explain a change.
    """

    kind: Kind
    name: str
    id: str
    labels: Mapping[str, str] = field(default_factory=dict)
    owned: bool = False
    state: str = ""
    health: str = ""
    exit_code: int | None = None
    image_id: str = ""
    details: Mapping[str, object] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.labels.get(NAME_LABEL, "")

    @property
    def config_hash(self) -> str:
        return self.labels.get(HASH_LABEL, "")

    @property
    def field_hashes(self) -> dict[str, str]:
        import json

        try:
            value = json.loads(self.labels.get(FIELDS_LABEL, "{}"))
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class LiveState:
    """What the engine holds that matters to this stack: owned objects and name collisions."""

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
