"""Desired and live state built by hand, for tests of the pure planner and what reads its plans.

Plain data builders, shared by test modules; tests never import from each other.
"""
from __future__ import annotations

from reconciler.hashing import canonical_json
from reconciler.labels import (
    FIELDS as FIELDS_LABEL,
    CONFIG_HASH as HASH_LABEL,
    KIND as KIND_LABEL,
    NAME as NAME_LABEL,
    REPLICA as REPLICA_LABEL,
    STACK as STACK_LABEL,
    spec_field_hashes,
)
from reconciler.model import ContainerSpec, DesiredState, Kind, LiveObject, LiveState

STACK = "demo"
IMAGE_ID = "sha256:" + "a" * 64


def container(key="web", replica=1, env=(), **kw) -> ContainerSpec:
    from reconciler.hashing import config_hash, field_hashes

    config = {"image": kw.get("image_ref", "base:1"), "env": {e.name: e.value for e in env},
              "command": kw.get("command")}
    return ContainerSpec(
        key=key, name=f"{STACK}-{key}-{replica}", replica=replica, image_key=None,
        image_ref=kw.pop("image_ref", "base:1"), env=tuple(env),
        config_hash=config_hash(config),
        field_hashes=tuple(sorted(field_hashes(config, expand=frozenset({"env"})).items())),
        **kw,
    )


def live_container(spec: ContainerSpec, *, state="running", exit_code=None, image_id=IMAGE_ID, owned=True,
                   details=None, labels_extra=None) -> LiveObject:
    labels = {STACK_LABEL: STACK, KIND_LABEL: Kind.CONTAINER.value, NAME_LABEL: spec.key, HASH_LABEL: spec.config_hash,
              REPLICA_LABEL: str(spec.replica), FIELDS_LABEL: canonical_json(dict(spec.field_hashes))}
    labels.update(labels_extra or {})
    return LiveObject(Kind.CONTAINER, spec.name, "id-" + spec.name, labels if owned else {}, owned=owned,
                      state=state, exit_code=exit_code, image_id=image_id, details=details or {})


def live_image(ref="base:1", image_id=IMAGE_ID, labels=None) -> LiveObject:
    return LiveObject(Kind.IMAGE, ref, image_id, labels or {}, image_id=image_id)


def state(*containers, networks=(), volumes=(), images=()) -> DesiredState:
    return DesiredState(
        stack=STACK,
        containers={c.name: c for c in containers},
        networks={n.key: n for n in networks},
        volumes={v.key: v for v in volumes},
        images={i.key: i for i in images},
    )


def live(*containers, networks=(), volumes=(), images=(live_image(),)) -> LiveState:
    return LiveState(containers={c.name: c for c in containers}, networks={n.name: n for n in networks},
                     volumes={v.name: v for v in volumes}, images={i.name: i for i in images})


def owned(kind: Kind, spec, **labels) -> LiveObject:
    base = {STACK_LABEL: STACK, KIND_LABEL: kind.value, NAME_LABEL: spec.key, HASH_LABEL: spec.config_hash,
            FIELDS_LABEL: canonical_json(spec_field_hashes(spec))}
    base.update(labels)
    return LiveObject(kind, spec.name, "id-" + spec.name, base, owned=True)


def actions(plan) -> list[tuple[str, str]]:
    return [(c.action.value, c.id) for c in plan.changes]
