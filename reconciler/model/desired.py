"""What the spec asks for: the images, networks and volumes it names, and the ``DesiredState`` of a stack.

``reconciler.spec.desired`` builds these records from a validated spec; the
planner compares them with the live records (``reconciler.model.live``), and
drivers receive them in ``create``. They are frozen so that no phase changes
what an earlier one computed. The container's record, much larger, has a
module of its own (``reconciler.model.container``).
"""
from __future__ import annotations

from dataclasses import field
from functools import cached_property
from typing import Any, Mapping

from ..defaults import DEFAULT_DRIVERS
from ..values import value
from .buildstep import BuildStep, encode_steps
from .container import ContainerSpec
from .fleet import Fleet
from .kinds import Kind
from .snapshots import SnapshotRetention
from .updates import UpdatePolicy

__all__ = ["DesiredState", "ImageSpec", "NetworkSpec", "VolumeSpec"]


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
    driver: str = DEFAULT_DRIVERS[Kind.IMAGE.section]
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
    #: A built image's ``build_hash`` (what its labels carry); empty for pulled and archived images.
    config_hash: str = ""
    #: A built image's steps, each with the digest of its inputs (``reconciler.spec.dockerfile``), so
    #: a plan names the step from which the layer cache breaks; () for pulled and archived images.
    build_steps: tuple[BuildStep, ...] = field(default=(), compare=False)
    #: The absolute path of a docker-save tarball or OCI layout directory. The core only checks
    #: that it exists: what it holds is its registry driver's to read (see ``LiveObject.content``).
    archive: str | None = None
    #: ``tag``: follow the tag upstream; ``digest``: keep the local image, never ask.
    track: str = "tag"
    #: The registry driver's options (``images.<key>.options``), sorted (key, value) pairs, values as
    #: strings; checked against the driver's options schema when the spec is validated.
    options: tuple[tuple[str, str], ...] = ()
    #: The version policy (``images.<key>.update``, Compose's ``x-reconcile.update``): which newer tags
    #: the automation may write into ``ref``. None: the tag is the user's to change.
    update: UpdatePolicy | None = field(default=None, compare=False)
    #: Where the text of ``ref`` starts in the file the user wrote (absolute path, line, col; 1-based,
    #: past an opening quote): what write-back edits. None for a build's default ref, and for a ref
    #: not written out as it is (made from ``${VAR}``, or a multi-line scalar).
    ref_at: tuple[str, int, int] | None = field(default=None, compare=False)

    @property
    def is_build(self) -> bool:
        return self.build_context is not None

    @property
    def steps_label(self) -> str:
        """The text of the built image's ``labels.BUILD_STEPS`` label ("" without steps)."""
        return encode_steps(self.build_steps)

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
        """Whether the registry is asked where this image's tag points now (a pulled tag, ``track: tag``)."""
        return (not self.is_build and not self.is_archive and not self.is_pinned
                and self.track == "tag" and self.pull != "never")


@value
class _EngineObjectSpec:
    """What a network and a volume share: a named object its driver makes, with options and labels."""

    #: The key under ``networks:`` or ``volumes:`` in the spec.
    key: str
    #: The engine name (an external object's: its ``name:``, else its key as written).
    name: str
    #: The driver (each kind's default: see ``reconciler.defaults``).
    driver: str = ""
    #: Driver options, sorted (key, value) pairs.
    options: tuple[tuple[str, str], ...] = ()
    #: The user's own labels, sorted (key, value) pairs.
    labels: tuple[tuple[str, str], ...] = ()
    #: The hash of ``config()``.
    config_hash: str = ""
    #: Options the driver can change without recreating the object (its options schema marks
    #: them ``x-reconciler-change: in-place``); outside ``config()``, so no hash depends on it.
    in_place: frozenset[str] = frozenset()
    #: Made and kept outside the stack (``external: true``): it must exist, and is never created,
    #: changed, relabelled or deleted. Only ``key``, ``name`` and ``origin`` mean anything then.
    external: bool = False
    #: Where the spec asks for an external object (``file:line:col`` of its ``external:``), so that
    #: the plan's refusal of a missing one names the line; "" for a spec built by hand.
    origin: str = field(default="", compare=False)


@value
class NetworkSpec(_EngineObjectSpec):
    """A network, named ``<stack>_<key>`` on the engine unless ``name`` is given (or it is external)."""

    #: The network driver (see ``reconciler.defaults``).
    driver: str = DEFAULT_DRIVERS[Kind.NETWORK.section]
    internal: bool = False
    attachable: bool = False
    subnet: str | None = None
    gateway: str | None = None
    ip_range: str | None = None
    #: How many containers join it (replicas counted), from the spec: what a driver that picks the
    #: subnet sizes it for (``reconciler.addresses``). Outside ``config()``: no hash depends on it.
    endpoints: int = field(default=0, compare=False)

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
class VolumeSpec(_EngineObjectSpec):
    """A named volume, kept across container replacements and by default across prunes."""

    #: The storage driver (see ``reconciler.defaults``).
    driver: str = DEFAULT_DRIVERS[Kind.VOLUME.section]
    #: How many snapshots releases keep of it (``snapshots:``); None: the defaults. Never in ``config()``.
    retention: SnapshotRetention | None = None

    def config(self) -> dict:
        """The normalized config that ``config_hash`` and the per-field hashes cover."""
        return {"driver": self.driver, "options": dict(self.options), "labels": dict(self.labels)}


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
    runtime: str = DEFAULT_DRIVERS[Kind.CONTAINER.section]

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

    def section(self, kind: Kind) -> Mapping[str, Any]:
        """The objects of ``kind`` as the spec's section lists them: by spec key (containers: by engine name)."""
        return getattr(self, kind.section)  # the fields are named after the sections

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
