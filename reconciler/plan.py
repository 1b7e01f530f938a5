"""The plan: a pure function of desired and live state.

No I/O happens here and nothing imports docker. ``plan_changes`` compares what
the spec asks for with what the engine reports and returns the ordered list of
changes, each with the reasons a user needs to trust it: which fields changed
(old → new, secrets redacted), which field forces a replacement, and which
changes need an explicit flag because they would destroy state.
"""
from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, is_dataclass, replace
from typing import Iterable, Mapping

from .hashing import canonical_json, field_hashes
from .model import (
    BUILD_HASH_LABEL,
    DRIVER_LABEL,
    REPLICA_LABEL,
    ContainerSpec,
    DesiredState,
    ImageSpec,
    Kind,
    LiveObject,
    LiveState,
    NetworkSpec,
    VolumeSpec,
)

__all__ = ["Action", "Change", "FieldChange", "Plan", "plan_changes", "PUSH_REASON", "REDACTED", "spec_fields", "wanted_images"]

REDACTED = "(secret)"
DEFAULT_NETWORK = "bridge"  # where the engine attaches a container that names no network
SECRET_ENV_LABEL = "io.reconciler.secret-env"
PUSH_REASON = "push: not in the registry"  # an up-to-date build to push, not to rebuild


class Action(str, enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    START = "start"
    DELETE = "delete"


@dataclass(frozen=True)
class FieldChange:
    """One field that differs; values are display strings, already redacted."""

    path: str
    old: str | None = None
    new: str | None = None

    def __str__(self) -> str:
        if self.old is None and self.new is None:
            return f"{self.path}: changed"
        return f"{self.path}: {self.old if self.old is not None else '(unset)'} → {self.new if self.new is not None else '(unset)'}"


@dataclass(frozen=True)
class Change:
    """One change to one object.

    ``requires`` names objects (``kind:name``) whose own changes must finish
    before this one creates or starts anything; ``holds`` names objects whose
    removal must wait until this change has removed its old object. ``waits``
    lists container names and the condition (started, healthy, completed) to
    wait for before creating. ``error`` is set when the change cannot be
    applied at all (a name taken by an object we do not own), ``blocked`` when
    it needs an explicit flag. ``renews`` marks an image change that gives the
    image a new id (its containers follow). ``driver`` creates the new object, ``live_driver``
    removes the old one (they differ when a spec moves a volume to another driver).
    """

    action: Action
    kind: Kind
    name: str
    key: str
    reasons: tuple[str, ...] = ()
    fields: tuple[FieldChange, ...] = ()
    forced_by: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    holds: tuple[str, ...] = ()
    waits: tuple[tuple[str, str], ...] = ()
    live_id: str = ""
    driver: str = ""
    live_driver: str = ""
    renews: bool = False
    error: str = ""
    blocked: str = ""

    @property
    def id(self) -> str:
        return f"{self.kind.value}:{self.name}"


@dataclass(frozen=True)
class Plan:
    stack: str
    changes: tuple[Change, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for change in self.changes:
            out[change.action.value] = out.get(change.action.value, 0) + 1
        return out


_DEFAULT_DRIVER = {Kind.NETWORK: "bridge", Kind.VOLUME: "local"}
_FLAGS = {Kind.NETWORK: "--recreate-networks", Kind.VOLUME: "--recreate-volumes"}


def plan_changes(desired: DesiredState, live: LiveState, *, prune_volumes: bool = False) -> Plan:
    """Every change that makes ``live`` match ``desired``, in dependency order."""
    notes: list[str] = []
    images = _plan_images(wanted_images(desired), live)
    networks = _plan_simple(Kind.NETWORK, desired.networks, live.networks, prune=True, notes=notes)
    volumes = _plan_simple(Kind.VOLUME, desired.volumes, live.volumes, prune=prune_volumes, notes=notes)
    replaced = {c.name for c in networks + volumes if c.action in (Action.REPLACE, Action.DELETE)}
    containers = _plan_containers(desired, live, images, replaced)
    return Plan(stack=desired.stack, changes=tuple(images + networks + volumes + containers), notes=tuple(notes))


def wanted_images(desired: DesiredState) -> dict[str, ImageSpec]:
    wanted = {spec.ref: spec for spec in desired.images.values()}
    for container in desired.containers.values():
        if container.image_key is None and container.image_ref not in wanted:
            wanted[container.image_ref] = ImageSpec(key=container.image_ref, ref=container.image_ref)
    return wanted


def _plan_images(specs: Mapping[str, ImageSpec], live: LiveState) -> list[Change]:
    changes = []
    for ref, spec in sorted(specs.items()):
        current = live.images.get(ref)
        if spec.is_build:
            built_from = current.labels.get(BUILD_HASH_LABEL, "") if current else ""
            if current is None:
                changes.append(Change(Action.CREATE, Kind.IMAGE, ref, spec.key, ("build: image not present",),
                                      renews=True))
            elif built_from != spec.build_hash:
                changes.append(Change(Action.UPDATE, Kind.IMAGE, ref, spec.key, ("build: inputs changed",),
                                      live_id=current.id, renews=True))
            elif spec.push and not _in_registry(ref, current):
                changes.append(Change(Action.UPDATE, Kind.IMAGE, ref, spec.key, (PUSH_REASON,),
                                      live_id=current.id))
        elif spec.is_archive:
            # The archive names its image id: compare it with the local image, no state needed.
            if current is None:
                changes.append(Change(Action.CREATE, Kind.IMAGE, ref, spec.key, ("load: image not present",),
                                      renews=True))
            elif current.image_id != spec.archive_image_id:
                changes.append(Change(Action.UPDATE, Kind.IMAGE, ref, spec.key, ("load: archive changed",),
                                      live_id=current.id, renews=True))
        elif current is None:
            error = f"image {ref} is not present and its pull policy is never" if spec.pull == "never" else ""
            changes.append(Change(Action.CREATE, Kind.IMAGE, ref, spec.key, ("pull: image not present",), error=error,
                                  renews=True))
        elif (moved := _tag_moved(spec, current)) is not None:
            changes.append(Change(Action.UPDATE, Kind.IMAGE, ref, spec.key,
                                  (f"pull: tag moved upstream ({_short(moved[0])} → {_short(moved[1])})",),
                                  live_id=current.id, renews=True))
        elif spec.pull == "always" and spec.tracks_tag and not current.details.get("upstream_digest"):
            # Nobody could say where the tag points: pull, as "always" did before digests.
            changes.append(Change(Action.UPDATE, Kind.IMAGE, ref, spec.key, ("pull: policy always",), live_id=current.id))
    return changes


def _tag_moved(spec: ImageSpec, current: LiveObject | None) -> tuple[str, str] | None:
    """(local digest, upstream digest) when the tag ``spec`` follows points elsewhere upstream.

    The local side is the image's ``RepoDigests`` for the reference's repository:
    any of them matching the upstream digest means nothing moved.
    """
    if current is None or not spec.tracks_tag:
        return None
    upstream = str(current.details.get("upstream_digest") or "")
    if not upstream:
        return None
    repo = _repository(spec.ref)
    local = [d.partition("@")[2] for d in current.details.get("repo_digests", ()) if d.partition("@")[0] == repo]
    if upstream in local:
        return None
    return (local[0] if local else "(none)", upstream)


def _in_registry(ref: str, current: LiveObject) -> bool:
    """Whether the local image was pushed to (or pulled from) its registry.

    The engine records a ``RepoDigest`` for the reference's repository when it
    pushes: its absence means the registry does not have this image. (Checking
    the registry itself would cost a request per plan; this costs none.)
    """
    repo = _repository(ref)
    return any(d.partition("@")[0] == repo for d in current.details.get("repo_digests", ()))


def _repository(ref: str) -> str:
    """``host/name:tag`` → ``host/name`` (a colon after the last ``/`` is a tag, before it a port)."""
    name, sep, tag = ref.rpartition(":")
    return name if sep and "/" not in tag else ref


def _plan_simple(
    kind: Kind,
    desired: Mapping[str, NetworkSpec | VolumeSpec],
    live: Mapping[str, LiveObject],
    *,
    prune: bool,
    notes: list[str],
) -> list[Change]:
    changes = []
    wanted = {spec.name: spec for spec in desired.values()}
    for name, spec in sorted(wanted.items()):
        current = live.get(name)
        if current is None:
            changes.append(Change(Action.CREATE, kind, name, spec.key, ("new",), driver=spec.driver))
        elif not current.owned:
            changes.append(Change(Action.CREATE, kind, name, spec.key, ("new",), driver=spec.driver,
                                  error=_not_managed(kind, name)))
        elif current.config_hash != spec.config_hash:
            forced = _changed_fields(spec_fields(spec), current.field_hashes)
            changes.append(Change(
                Action.REPLACE, kind, name, spec.key,
                (f"config changed: {', '.join(forced) or 'labels'} (cannot change in place)",),
                forced_by=tuple(forced), live_id=current.id, driver=spec.driver,
                live_driver=current.labels.get(DRIVER_LABEL, _DEFAULT_DRIVER[kind]),
                blocked=f"{kind.value} {name} must be recreated to change {', '.join(forced) or 'its config'}; "
                        f"rerun with {_FLAGS[kind]}" + (" (its data is lost)" if kind is Kind.VOLUME else ""),
            ))
    for name, current in sorted(live.items()):
        if current.owned and name not in wanted:
            if prune:
                changes.append(Change(Action.DELETE, kind, name, current.key, ("no longer in the spec",),
                                      live_id=current.id, live_driver=current.labels.get(DRIVER_LABEL, _DEFAULT_DRIVER[kind])))
            else:
                notes.append(f"{kind.value} {name} is no longer in the spec and is kept (use --prune-volumes to delete it)")
    return changes


def spec_fields(spec: NetworkSpec | VolumeSpec) -> dict[str, str]:
    """Per-field hashes of a network or volume, stored in its labels to name what changed."""
    return field_hashes(spec.config(), expand=frozenset({"options", "labels"}))


def _changed_fields(new: Mapping[str, str], old: Mapping[str, str]) -> list[str]:
    return sorted(k for k in set(new) | set(old) if new.get(k) != old.get(k))


def _not_managed(kind: Kind, name: str) -> str:
    return f"{kind.value} {name} exists and is not managed by this stack; rename it or remove it by hand"


def _plan_containers(desired: DesiredState, live: LiveState, images: list[Change], replaced: set[str]) -> list[Change]:
    # Builds, loads of a changed archive, pulls of a missing image or of a tag that
    # moved give the image a new id (_plan_images marks them): its containers follow.
    # A pull under policy "always" whose digest is unknown may not; the next pass compares ids.
    renewed = {c.name for c in images if c.renews}
    replicas: dict[str, list[str]] = {}
    for spec in desired.containers.values():
        replicas.setdefault(spec.key, []).append(spec.name)
    changes = []
    for name, spec in sorted(desired.containers.items()):
        change = _plan_container(spec, live, renewed, replaced)
        if change is None:
            continue
        requires = [f"image:{spec.image_ref}"]
        requires += [f"network:{n}" for n, _ in spec.networks]
        requires += [f"volume:{m.source}" for m in spec.mounts if m.type == "volume"]
        requires += [f"container:{r}" for target, _ in spec.depends_on for r in replicas.get(target, [])]
        waits = tuple((r, cond) for target, cond in spec.depends_on for r in replicas.get(target, []))
        # A container comes down before what it depends on, and before the
        # networks and volumes it is attached to.
        holds = _holds(live.containers.get(name))
        holds += [f"container:{r}" for target, _ in spec.depends_on for r in replicas.get(target, [])]
        changes.append(replace(change, requires=tuple(requires), waits=waits, holds=tuple(sorted(set(holds)))))
    for name, current in sorted(live.containers.items()):
        if current.owned and name not in desired.containers:
            changes.append(Change(Action.DELETE, Kind.CONTAINER, name, current.key, _prune_reason(current, desired),
                                  live_id=current.id, holds=tuple(_holds(current))))
    return changes


def _holds(current: LiveObject | None) -> list[str]:
    if current is None or not current.owned:
        return []
    nets = [f"network:{n}" for n in current.details.get("networks", ())]
    vols = [f"volume:{v}" for v in current.details.get("volumes", ())]
    return nets + vols


def _prune_reason(current: LiveObject, desired: DesiredState) -> tuple[str, ...]:
    if any(spec.key == current.key for spec in desired.containers.values()):
        return (f"replica {current.labels.get(REPLICA_LABEL, '?')} no longer wanted (scaled down)",)
    return ("no longer in the spec",)


def _plan_container(spec: ContainerSpec, live: LiveState, renewed: set[str], replaced: set[str]) -> Change | None:
    current = live.containers.get(spec.name)
    base = dict(kind=Kind.CONTAINER, name=spec.name, key=spec.key)
    if current is None:
        return Change(Action.CREATE, reasons=("new",), **base)
    if not current.owned:
        return Change(Action.CREATE, reasons=("new",), error=_not_managed(Kind.CONTAINER, spec.name), **base)
    reasons, fields, forced = _replace_reasons(spec, current, live, renewed, replaced)
    if reasons or fields:
        return Change(Action.REPLACE, reasons=tuple(reasons), fields=tuple(fields), forced_by=tuple(forced),
                      live_id=current.id, **base)
    if current.state == "running" or current.state == "restarting":
        return None
    if current.state == "exited" and current.exit_code == 0 and spec.restart == "no":
        return None  # a one-shot container that completed: running it again is not convergence
    return Change(Action.START, reasons=(f"state: {current.state} → running",), live_id=current.id, **base)


def _replace_reasons(
    spec: ContainerSpec, current: LiveObject, live: LiveState, renewed: set[str], replaced: set[str]
) -> tuple[list[str], list[FieldChange], list[str]]:
    reasons: list[str] = []
    fields: list[FieldChange] = []
    forced: list[str] = []
    if current.config_hash != spec.config_hash:
        secrets = spec.secret_env | set(filter(None, current.labels.get(SECRET_ENV_LABEL, "").split(",")))
        changed = _changed_fields(dict(spec.field_hashes), current.field_hashes)
        fields.extend(_explain(path, spec, current, secrets) for path in changed)
        forced.extend(changed)
        if not changed:
            reasons.append("config changed")
    if "networks" in current.details and current.config_hash == spec.config_hash:
        # Free from the list call: catches a container recreated or rewired by hand.
        expected = sorted(n for n, _ in spec.networks) or [spec.network_mode or DEFAULT_NETWORK]
        attached = sorted(current.details["networks"])
        if attached != expected:
            fields.append(FieldChange("networks", _display(tuple(attached)), _display(tuple(expected))))
            forced.append("networks")
    live_image = live.images.get(spec.image_ref)
    if spec.image_ref in renewed:
        fields.append(FieldChange("image", _short(current.image_id), "(known after apply)"))
        forced.append("image")
    elif live_image is not None and live_image.image_id and current.image_id and current.image_id != live_image.image_id:
        fields.append(FieldChange("image", _short(current.image_id), _short(live_image.image_id)))
        forced.append("image")
    for network, _ in spec.networks:
        if network in replaced:
            reasons.append(f"network {network} is recreated")
    for mount in spec.mounts:
        if mount.type == "volume" and mount.source in replaced:
            reasons.append(f"volume {mount.source} is recreated")
    return reasons, fields, forced


def _short(image_id: str) -> str:
    return image_id[:19] + "…" if len(image_id) > 19 else image_id or "(unknown)"


def _explain(path: str, spec: ContainerSpec, current: LiveObject, secrets: Iterable[str]) -> FieldChange:
    """Old and new display values for one changed field, from the spec and the live details."""
    section, _, sub = path.partition(".")
    if section == "env" and sub in secrets:
        return FieldChange(path, REDACTED if sub in current.details.get("env", {}) else None,
                           REDACTED if sub in spec.env_dict() else None)
    new = _display(_desired_value(spec, section, sub))
    old_source = current.details.get(section)
    if old_source is None:
        return FieldChange(path, "(was different)", new) if new is not None else FieldChange(path)
    old = _display(old_source.get(sub) if sub and isinstance(old_source, Mapping) else (old_source if not sub else None))
    return FieldChange(path, old, new)


def _desired_value(spec: ContainerSpec, section: str, sub: str) -> object:
    if section == "env":
        return spec.env_dict().get(sub)
    if section == "labels":
        return dict(spec.labels).get(sub)
    if section == "image":
        return spec.image_ref
    value = getattr(spec, section, None)
    return value


def _display(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    if is_dataclass(value):
        return canonical_json({k: v for k, v in asdict(value).items() if v not in (None, 0, "", ())})
    if isinstance(value, tuple):
        return canonical_json([asdict(v) if is_dataclass(v) else v for v in value])
    return str(value)
