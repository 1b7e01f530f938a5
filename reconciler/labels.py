"""Every label the reconciler reads or writes, in one place.

An object's labels say what it *claims*: which stack owns it, what it is in the
spec, and a hash of the desired config it was made from (never the config: it
may hold secrets). The core decides every label an object carries
(``object_labels``) and hands them to the driver that creates it; drivers
store them as given and report them back in ``LiveObject.labels``. No driver
invents a label the core later reads.

Labels can be copied by anyone who can reach the engine, so they are a claim,
not a proof: changing or deleting an object also needs the reconciler's own
record (``reconciler.state``), and deleting data needs the record to say the
reconciler created it.

Labels are also inherited: a container carries every label of its image, and
the images we build carry ours (``kind=image``). So only labels whose ``KIND``
names the object's own kind claim anything (``is_owned(labels, stack,
kind=...)``, and ``owner_selectors`` for an engine's list filter): a container
someone runs from one of our images is a stranger's, never the stack's.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from .hashing import canonical_json, field_hashes

__all__ = [
    "BUILD_CACHE",
    "BUILD_HASH",
    "BUILD_STEPS",
    "COMPOSE_NETWORK",
    "COMPOSE_NUMBER",
    "COMPOSE_ONEOFF",
    "COMPOSE_PREFIX",
    "COMPOSE_PROJECT",
    "COMPOSE_SERVICE",
    "COMPOSE_VERSION",
    "COMPOSE_VOLUME",
    "CONFIG_HASH",
    "DRIVER",
    "FIELDS",
    "KIND",
    "NAME",
    "PREFIX",
    "REPLICA",
    "SECRET_ENV",
    "STACK",
    "VOLUME_ID",
    "is_owned",
    "object_labels",
    "owner_selector",
    "owner_selectors",
    "read_field_hashes",
    "read_secret_env",
    "spec_field_hashes",
]

PREFIX = "io.reconciler."
STACK = PREFIX + "stack"  # the stack that owns the object
KIND = PREFIX + "kind"  # image, network, volume, container
NAME = PREFIX + "name"  # the object's key in the spec
REPLICA = PREFIX + "replica"  # a container's replica number (1-based)
CONFIG_HASH = PREFIX + "config-hash"  # sha256 of the normalized desired config
FIELDS = PREFIX + "fields"  # JSON map of short per-field hashes, to name what changed
DRIVER = PREFIX + "driver"  # the driver that created the object (networks, volumes, containers)
BUILD_HASH = PREFIX + "build-hash"  # a built image's hash of its build inputs
BUILD_STEPS = PREFIX + "build-steps"  # a built image's digest of each step's inputs (model.buildstep)
# Which of the last build's steps of the final stage the engine's cache reused ("c") or made ("m"), in
# order: the registry driver writes it after the build, the one label no spec decides.
BUILD_CACHE = PREFIX + "build-cache"
SECRET_ENV = PREFIX + "secret-env"  # comma-separated names (never values) of secret env vars
# A random id the core gives each volume it creates (the engine gives volumes none; their
# CreatedAt moves whenever the volume's root is chmod-ed). Recorded in the state database.
VOLUME_ID = PREFIX + "volume-id"

# Compose's own labels (v1 and v2 write the same ones): what ``reconcile adopt`` reads to take a
# running Compose project over. Read only; the reconciler never writes them.
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_NUMBER = "com.docker.compose.container-number"
COMPOSE_ONEOFF = "com.docker.compose.oneoff"
COMPOSE_VOLUME = "com.docker.compose.volume"
COMPOSE_NETWORK = "com.docker.compose.network"
COMPOSE_VERSION = "com.docker.compose.version"
COMPOSE_PREFIX = "com.docker.compose."

# Maps whose keys get a field hash each, so a plan names ``env.LOG_LEVEL``, not ``env``.
_EXPANDED = frozenset({"options", "labels"})


def object_labels(stack: str, kind: str, spec: Any) -> dict[str, str]:
    """Every label an object the reconciler creates carries: the user's labels, then ours.

    ``kind`` is a ``model.Kind`` (a str enum: ``"image"``, ``"network"``, ...);
    ``spec`` the matching ``ImageSpec``, ``NetworkSpec``, ``VolumeSpec`` or ``ContainerSpec``.
    """
    kind = _kind(kind)
    labels = dict(getattr(spec, "labels", ()) or ())
    labels.update({STACK: stack, KIND: kind, NAME: spec.key, CONFIG_HASH: spec.config_hash})
    if kind == "image":
        if spec.is_build:
            labels[BUILD_HASH] = spec.build_hash
            if spec.build_steps:
                labels[BUILD_STEPS] = spec.steps_label
        return labels
    labels[DRIVER] = spec.driver
    if kind == "container":
        labels[REPLICA] = str(spec.replica)
        if spec.secret_env:
            labels[SECRET_ENV] = ",".join(sorted(spec.secret_env))
        fields = dict(spec.field_hashes)
    else:
        fields = spec_field_hashes(spec)
    labels[FIELDS] = canonical_json(fields)
    return labels


def spec_field_hashes(spec: Any) -> dict[str, str]:
    """Per-field hashes of a network or volume (``spec.config()``), stored under ``FIELDS``."""
    return field_hashes(spec.config(), expand=_EXPANDED)


def owner_selector(stack: str) -> str:
    """``key=value`` selecting every object that carries ``stack``'s label, whatever its kind.

    Inherited labels match too (a container run from an image we built): for
    the objects that claim the stack, filter with ``owner_selectors``.
    """
    return f"{STACK}={stack}"


def owner_selectors(stack: str, kind: str) -> list[str]:
    """The engine label filters (every one must match) selecting the objects of ``kind`` that claim ``stack``.

    ``kind`` is a ``model.Kind`` or its value (``"container"``); the same rule as ``is_owned``.
    """
    return [owner_selector(stack), f"{KIND}={_kind(kind)}"]


def is_owned(labels: Mapping[str, str] | None, stack: str, *, kind: str) -> bool:
    """Whether ``labels``, found on an object of ``kind``, claim that ``stack`` owns the object.

    Both the stack and the kind must match: labels whose ``KIND`` names another
    kind were inherited (a container's from its image) and claim nothing.
    """
    labels = labels or {}
    return labels.get(STACK) == stack and labels.get(KIND) == _kind(kind)


def _kind(kind: str) -> str:
    """A kind's label value, from a ``model.Kind`` (a str enum) or the plain string."""
    return str(getattr(kind, "value", kind))


def read_field_hashes(labels: Mapping[str, str]) -> dict[str, str]:
    """The per-field hashes stored under ``FIELDS``; a missing or mangled label gives none."""
    try:
        value = json.loads(labels.get(FIELDS, "{}"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def read_secret_env(labels: Mapping[str, str]) -> frozenset[str]:
    """The names of a container's secret env vars, as recorded under ``SECRET_ENV``."""
    return frozenset(filter(None, labels.get(SECRET_ENV, "").split(",")))
