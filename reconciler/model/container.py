"""One container replica as the spec asks for it, and the parts it is made of.

``ContainerSpec.config()`` is what a container's config hash covers: when it
differs from the live container's, the container is replaced. The parts
(environment, ports, mounts, files, healthcheck, update policy) are records of
their own because the spec's builder, the planner and runtime drivers read
them one by one.
"""
from __future__ import annotations

from dataclasses import asdict, field

from ..defaults import DEFAULT_DRIVERS
from ..values import value
from .kinds import Kind

__all__ = ["ContainerSpec", "EnvVar", "FileContent", "FileMount", "FilesystemPolicy", "HealthCheck", "Mount", "Port",
           "RolloutPolicy"]


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
    #: Where the spec wrote the mount (``file:line:col``), for rules that refuse it (policy);
    #: out of the config hash and of equality: moving a line changes nothing the container sees.
    origin: str = field(default="", compare=False)

    def config(self) -> dict:
        """What the container's config hash covers for this mount."""
        config = asdict(self)
        del config["create_host_path"], config["origin"]
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
class RolloutPolicy:
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
    #: Keys of the stack's volumes to snapshot before a replacement (``reconciler.releasedata``).
    snapshot: tuple[str, ...] = ()
    #: ``on-failure``: a failed rollout restores those volumes from their snapshots; ``never``: it keeps the data.
    restore: str = "on-failure"


@value
class FilesystemPolicy:
    """What the reconciler does when a container's writable layer changed (``filesystem:`` in the spec).

    A policy of the reconciler, not of the container: never part of the config
    hash, so setting or changing it replaces nothing (see ``reconciler.fsdrift``).
    """

    #: ``ignore`` (never looked at), ``report`` (plan, status and metrics say so) or
    #: ``recreate`` (the container is replaced, with its update order).
    mode: str = "ignore"
    #: Paths inside the container whose changes do not count (``/tmp`` covers ``/tmp/x``), sorted.
    ignore: tuple[str, ...] = ()

    @property
    def watched(self) -> bool:
        """Whether the runtime must read the writable layer's changes for this policy."""
        return self.mode != "ignore"


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
    driver: str = DEFAULT_DRIVERS[Kind.CONTAINER.section]
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
    update: RolloutPolicy = RolloutPolicy()
    #: What a change of the writable layer does (out of the config hash: a policy of the reconciler).
    filesystem: FilesystemPolicy = FilesystemPolicy()
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
