"""The plan: a pure function of desired and live state.

No I/O happens here and nothing imports docker. ``plan_changes`` compares what
the spec asks for with what the engine reports and returns the ordered list of
changes, each with the reasons a user needs to trust it: which fields changed
(old → new, secrets redacted), which field forces a replacement, and which
changes need an explicit flag because they would destroy state.
"""
from __future__ import annotations

import enum
from dataclasses import asdict, is_dataclass, replace
from typing import Iterable, Mapping

from . import labels
from .defaults import DEFAULT_DRIVERS
from .hashing import canonical_json
from .redact import REDACTED
from .values import value
from .model import (
    ContainerSpec,
    DesiredState,
    ImageSpec,
    Kind,
    LiveObject,
    LiveState,
    NetworkSpec,
    Record,
    VolumeSpec,
)
from .ownership import Vetted, vet

__all__ = ["Action", "Change", "Rollout", "FieldChange", "Operation", "Plan", "PUSH_REASON", "Reason", "plan_changes", "REDACTED",
           "spec_fields", "wanted_images"]

DEFAULT_NETWORK = "bridge"  # where the engine attaches a container that names no network
# Kept for plugins that imported them from here; ``reconciler.labels`` is their home.
SECRET_ENV_LABEL = labels.SECRET_ENV
spec_fields = labels.spec_field_hashes
PUSH_REASON = "push: not in the registry"  # an up-to-date build to push, not to rebuild


class Action(str, enum.Enum):
    """What a change does to its object (Terraform's vocabulary: ``+``, ``~``, ``-/+``, ``-``)."""

    CREATE = "create"
    UPDATE = "update"  # images: build, pull or push again under the same reference; networks and volumes:
    # change options their driver marks in place; containers of a runtime that schedules replicas
    # (a Swarm service): change the service, whose tasks the runtime rolls over itself
    REPLACE = "replace"
    START = "start"
    DELETE = "delete"


class Operation(enum.StrEnum):
    """What a run is for, as the lifecycle hooks are told (``operation=``): a policy may treat them differently."""

    APPLY = "apply"  # make the engine match a spec (also ``plan``, ``watch`` and the daemon's passes)
    DESTROY = "destroy"  # remove everything the stack owns


class Reason(enum.StrEnum):
    """Why a change is planned: the code that text, JSON, notifications and policies read.

    Modelled on Terraform's ``ResourceInstanceChangeActionReason``: the
    ``reasons`` text of a change is a rendering for people; code that needs
    to know *why* reads this, never the English.
    """

    NEW = "new"  # the object does not exist (or its name is taken: see Change.error)
    CONFIG_CHANGED = "config-changed"  # its desired config hash differs from the live one
    OPTIONS_CHANGED = "options-changed"  # only driver options its driver changes in place differ (an update)
    IMAGE_CHANGED = "image-changed"  # a container's image gets, or already has, another id
    REWIRED = "rewired"  # a container attached to other networks than its spec says
    DRIFTED = "drifted"  # its runtime reports fields changed outside the reconciler (``details["drift"]``)
    DEPENDENCY_RECREATED = "dependency-recreated"  # a network or volume it uses is recreated
    NOT_RUNNING = "not-running"  # a container that should run is stopped, created or paused
    FILES_MISSING = "files-missing"  # the config or secret files it mounts are gone (a reboot empties a tmpfs)
    NO_LONGER_IN_SPEC = "no-longer-in-spec"  # owned by the stack, gone from the spec
    SCALED_DOWN = "scaled-down"  # a replica above the spec's ``replicas``
    BUILD_MISSING = "build-missing"  # a built image that is not present
    BUILD_CHANGED = "build-changed"  # a built image whose inputs changed
    PUSH_MISSING = "push-missing"  # an up-to-date build the registry does not have yet
    LOAD_MISSING = "load-missing"  # an archived image that is not present
    CONTENT_CHANGED = "content-changed"  # its registry driver says the source holds other content now
    PULL_MISSING = "pull-missing"  # a pulled image that is not present
    PULL_TAG_MOVED = "pull-tag-moved"  # the tag points to another digest upstream
    PULL_ALWAYS = "pull-always"  # pull policy ``always`` and no digest to compare
    NOT_RECORDED = "not-recorded"  # claims the stack by its labels, not in the record: shown, never applied

    @property
    def image_verb(self) -> str:
        """What a registry driver does for an image change with this reason: build, load, push or pull."""
        return _IMAGE_VERBS.get(self, "pull")


_IMAGE_VERBS = {
    Reason.BUILD_MISSING: "build",
    Reason.BUILD_CHANGED: "build",
    Reason.PUSH_MISSING: "push",
    Reason.LOAD_MISSING: "load",
}


@value
class FieldChange:
    """One field that differs; values are display strings, already redacted."""

    path: str
    old: str | None = None
    new: str | None = None

    def __str__(self) -> str:
        if self.old is None and self.new is None:
            return f"{self.path}: changed"
        return f"{self.path}: {self.old if self.old is not None else '(unset)'} → {self.new if self.new is not None else '(unset)'}"


@value
class Rollout:
    """How a container's replacement rolls out, decided by the planner from its ``update`` policy."""

    #: ``start-first``: the new container starts beside the old one, which stops once the new one
    #: is ready; ``stop-first``: the old one stops, then the new one starts.
    order: str
    #: Why this order (shown in the plan).
    why: str = ""
    #: Seconds to wait before starting, after the replica replaced before it.
    delay: float = 0.0
    #: Seconds the new container may take to be ready.
    timeout: float = 60.0
    #: Seconds a container without a healthcheck must keep running to be ready.
    min_ready: float = 0.0
    #: Whether the new container has a healthcheck (ready means healthy).
    healthcheck: bool = False


@value
class Change:
    """One change to one object: what the plan shows, what apply executes, what hooks receive."""

    #: What happens to the object.
    action: Action
    #: The object's kind.
    kind: Kind
    #: The engine name (images: the reference).
    name: str
    #: The key in the spec (``containers.<key>``), or the live object's key when it left the spec.
    key: str
    #: Why, for people: one line each, secrets already redacted. Render these; never parse them.
    reasons: tuple[str, ...] = ()
    #: The fields that differ, old → new (display values, redacted).
    fields: tuple[FieldChange, ...] = ()
    #: The fields that force a replacement (what Terraform marks "forces replacement").
    forced_by: tuple[str, ...] = ()
    #: Objects (``kind:name``) whose own changes must finish before this one creates or starts anything.
    requires: tuple[str, ...] = ()
    #: Objects whose removal must wait until this change has removed its old object.
    holds: tuple[str, ...] = ()
    #: (container name, condition) pairs to wait for before creating: started, healthy or completed.
    waits: tuple[tuple[str, str], ...] = ()
    #: The live object's id (replace, start, delete, image update), so a saved plan can tell it moved.
    live_id: str = ""
    #: The driver that creates the new object.
    driver: str = ""
    #: The driver that removes the old object (differs from ``driver`` when a spec moves a volume).
    live_driver: str = ""
    #: An image change that gives the image a new id: its containers are replaced with it.
    renews: bool = False
    #: Set when the change cannot be applied at all (a name taken by an object the stack does not own).
    error: str = ""
    #: Set when the change needs an explicit flag (recreating a network or a volume).
    blocked: str = ""
    #: Why, as a code (see ``Reason``).
    reason: Reason = Reason.NEW
    #: For a container replaced in place (rename aside, create, start, then remove the old one):
    #: how. None for a replacement that must remove the old container first (a network or
    #: volume it uses is recreated) and for every other change.
    rollout: Rollout | None = None
    #: The live container's state when planned (``running``, ``exited``, ...), for rollbacks.
    live_state: str = ""
    #: A container whose runtime schedules its replicas (a Swarm service): shown as a service.
    scheduled: bool = False

    @property
    def id(self) -> str:
        return f"{self.kind.value}:{self.name}"


@value
class Plan:
    """Every change that makes the engine match the spec, in dependency order. Plain data."""

    #: The stack the plan is for.
    stack: str
    #: The changes, images first, then networks, volumes and containers.
    changes: tuple[Change, ...] = ()
    #: Things a user should know that change nothing (a volume kept although it left the spec).
    notes: tuple[str, ...] = ()
    #: Objects this pass takes into the reconciler's record without creating them (``--adopt``,
    #: or a missing record rebuilt from labels and config hashes).
    adopted: tuple[LiveObject, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for change in self.changes:
            out[change.action.value] = out.get(change.action.value, 0) + 1
        return out


_FLAGS = {Kind.NETWORK: "--recreate-networks", Kind.VOLUME: "--recreate-volumes"}


def plan_changes(desired: DesiredState, live: LiveState, *, prune_volumes: bool = False,
                 record: Record | None = None, adopt: bool = False) -> Plan:
    """Every change that makes ``live`` match ``desired``, in dependency order.

    ``record`` is what the reconciler's own record says it created (see
    ``reconciler.ownership``): objects whose labels claim the stack but which
    it does not list are reported with an error, never changed, unless
    ``adopt``. None trusts the labels alone (callers without a record).
    """
    vetted = vet(desired, live, record, adopt=adopt)
    live = vetted.live
    notes: list[str] = []
    images = _plan_images(desired.of(Kind.IMAGE), live)
    networks = _plan_simple(Kind.NETWORK, desired.networks, vetted, prune=True, notes=notes)
    volumes = _plan_simple(Kind.VOLUME, desired.volumes, vetted, prune=prune_volumes, notes=notes)
    replaced = {c.name for c in networks + volumes if c.action in (Action.REPLACE, Action.DELETE) and not c.error}
    containers = _plan_containers(desired, vetted, images, replaced)
    changes = images + networks + volumes + containers
    if vetted.rebuilding:
        changes = _without_removals(changes, notes)
    notes += _adoption_notes(vetted)
    return Plan(stack=desired.stack, changes=tuple(changes), notes=tuple(notes), adopted=vetted.adopted)


def _without_removals(changes: list[Change], notes: list[str]) -> list[Change]:
    """A pass that rebuilds the record deletes nothing: replacements wait for the next pass."""
    kept = []
    for change in changes:
        if change.action is Action.REPLACE and change.kind is not Kind.IMAGE and not change.error:
            notes.append(f"{change.kind.value} {change.name} is replaced on the next apply: "
                         f"this one only rebuilds the record and deletes nothing")
        else:
            kept.append(change)
    return kept


def _adoption_notes(vetted: Vetted) -> list[str]:
    if not vetted.adopted:
        return []
    if vetted.rebuilding:
        return [f"the reconciler's record of stack {vetted.stack} on this engine was empty: "
                f"{len(vetted.adopted)} objects matching the spec by labels and config hash are recorded "
                f"as adopted; nothing is deleted on this pass"]
    return [f"{obj.kind.value} {obj.name} is adopted (--adopt): recorded as the stack's"
            for obj in vetted.adopted]


def wanted_images(desired: DesiredState) -> Mapping[str, ImageSpec]:
    """The images ``desired`` needs, by reference (``desired.of(Kind.IMAGE)``; kept for plugins)."""
    return desired.of(Kind.IMAGE)


def live_driver(kind: Kind, current: LiveObject) -> str:
    """The driver that made a live object: its label, else the default of its kind."""
    return current.labels.get(labels.DRIVER) or DEFAULT_DRIVERS[kind.section]


def _plan_images(specs: Mapping[str, ImageSpec], live: LiveState) -> list[Change]:
    changes = []
    for ref, spec in sorted(specs.items()):
        change = _plan_image(spec, live.images.get(ref))
        if change is not None:
            changes.append(change)
    return changes


def _plan_image(spec: ImageSpec, current: LiveObject | None) -> Change | None:
    def change(action: Action, reason: Reason, text: str, **kw) -> Change:
        return Change(action, Kind.IMAGE, spec.ref, spec.key, (text,), reason=reason, driver=spec.driver,
                      live_id=current.id if current else "", **kw)

    if spec.is_build:
        if current is None:
            return change(Action.CREATE, Reason.BUILD_MISSING, "build: image not present", renews=True)
        if current.labels.get(labels.BUILD_HASH, "") != spec.build_hash:
            return change(Action.UPDATE, Reason.BUILD_CHANGED, "build: inputs changed", renews=True)
        if spec.push and not _in_registry(spec.ref, current):
            return change(Action.UPDATE, Reason.PUSH_MISSING, PUSH_REASON)
        return None
    if current is None:
        if spec.is_archive:
            return change(Action.CREATE, Reason.LOAD_MISSING, "load: image not present", renews=True)
        error = f"image {spec.ref} is not present and its pull policy is never" if spec.pull == "never" else ""
        return change(Action.CREATE, Reason.PULL_MISSING, "pull: image not present", error=error, renews=True)
    content = current.content if _follows_source(spec) else None
    if content is not None and content.changed:
        local, source = _short(content.local or "(none)"), _short(content.source or "(unknown)")
        if spec.tracks_tag:
            return change(Action.UPDATE, Reason.PULL_TAG_MOVED, f"pull: tag moved upstream ({local} → {source})",
                          renews=True)
        return change(Action.UPDATE, Reason.CONTENT_CHANGED, f"content changed: {local} → {source}", renews=True)
    if spec.pull == "always" and spec.tracks_tag and content is None:
        # Nobody could say where the tag points: pull, as "always" did before digests.
        return change(Action.UPDATE, Reason.PULL_ALWAYS, "pull: policy always")
    return None


def _follows_source(spec: ImageSpec) -> bool:
    """Whether the registry driver's answer (``LiveObject.content``) can update the image.

    Only that answer can: the core reads no driver's details and computes no
    content of its own. An archive follows its file; a pulled image follows
    its source only while it tracks its tag (``track: digest``, a digest
    reference and ``pull: never`` keep the local image whatever the driver says).
    A driver that reports no ``content`` never triggers such an update.
    """
    return spec.is_archive or spec.tracks_tag


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
    vetted: Vetted,
    *,
    prune: bool,
    notes: list[str],
) -> list[Change]:
    changes = []
    live = vetted.live.of(kind)
    wanted = {spec.name: spec for spec in desired.values()}
    for name, spec in sorted(wanted.items()):
        current = live.get(name)
        if current is None:
            changes.append(Change(Action.CREATE, kind, name, spec.key, ("new",), driver=spec.driver,
                                  reason=Reason.NEW))
        elif not current.owned:
            changes.append(_refused_create(kind, name, spec.key, spec.driver, vetted.unrecorded(current)))
        elif current.config_hash != spec.config_hash:
            changed = _changed_fields(spec_fields(spec), current.field_hashes)
            in_place = [f for f in changed if f.startswith("options.") and f[len("options."):] in spec.in_place]
            forced = [f for f in changed if f not in in_place]
            if in_place and not forced:
                changes.append(Change(
                    Action.UPDATE, kind, name, spec.key, (f"options changed in place: {', '.join(in_place)}",),
                    live_id=current.id, driver=spec.driver, live_driver=live_driver(kind, current),
                    reason=Reason.OPTIONS_CHANGED,
                ))
                continue
            in_place_note = f"; {', '.join(in_place)} could change in place" if in_place else ""
            changes.append(Change(
                Action.REPLACE, kind, name, spec.key,
                (f"config changed: {', '.join(forced) or 'labels'} (forces replacement){in_place_note}",),
                forced_by=tuple(forced), live_id=current.id, driver=spec.driver,
                live_driver=live_driver(kind, current), reason=Reason.CONFIG_CHANGED,
                blocked=f"{kind.value} {name} must be recreated to change {', '.join(forced) or 'its config'}; "
                        f"rerun with {_FLAGS[kind]}" + (" (its data is lost)" if kind is Kind.VOLUME else ""),
                error=_keeps_data(kind, current, vetted, _FLAGS[kind]),
            ))
    for name, current in sorted(live.items()):
        if name in wanted or not (current.owned or vetted.unrecorded(current)):
            continue
        if not prune:
            notes.append(f"{kind.value} {name} is no longer in the spec and is kept (use --prune-volumes to delete it)")
            continue
        error = _unrecorded(kind, name) if not current.owned else _keeps_data(kind, current, vetted, "--prune-volumes")
        changes.append(Change(Action.DELETE, kind, name, current.key, ("no longer in the spec",),
                              live_id=current.id, live_driver=live_driver(kind, current), error=error,
                              reason=Reason.NO_LONGER_IN_SPEC if current.owned else Reason.NOT_RECORDED))
    return changes


def _refused_create(kind: Kind, name: str, key: str, driver: str, unrecorded: bool) -> Change:
    """The create of a wanted name that another object holds: an error, never a takeover."""
    return Change(Action.CREATE, kind, name, key, ("new",), driver=driver,
                  error=_unrecorded(kind, name) if unrecorded else _not_managed(kind, name),
                  reason=Reason.NOT_RECORDED if unrecorded else Reason.NEW)


def _unrecorded(kind: Kind, name: str) -> str:
    return (f"{kind.value} {name} claims this stack by its labels, but the reconciler's record does not list it "
            f"(labels can be copied): it is left alone; rerun with --adopt to take it over")


def _keeps_data(kind: Kind, current: LiveObject, vetted: Vetted, flag: str) -> str:
    """Why deleting a volume would delete data the record does not say the reconciler created ("" if not)."""
    if kind is not Kind.VOLUME or vetted.may_delete_data(current):
        return ""
    return (f"volume {current.name} was not created by the reconciler (its record says it was adopted, or "
            f"does not list it), so its data is kept; rerun with {flag} --adopt to delete it anyway")


def _changed_fields(new: Mapping[str, str], old: Mapping[str, str]) -> list[str]:
    return sorted(k for k in set(new) | set(old) if new.get(k) != old.get(k))


def _not_managed(kind: Kind, name: str) -> str:
    return f"{kind.value} {name} exists and is not managed by this stack; rename it or remove it by hand"


def _plan_containers(desired: DesiredState, vetted: Vetted, images: list[Change], replaced: set[str]) -> list[Change]:
    # Builds, loads and pulls of a missing image, and pulls of content its registry
    # driver says changed give the image a new id (_plan_images marks them): its containers follow.
    # A pull under policy "always" whose digest is unknown may not; the next pass compares ids.
    renewed = {c.name for c in images if c.renews}
    live = vetted.live
    replicas: dict[str, list[str]] = {}
    for spec in desired.containers.values():
        replicas.setdefault(spec.key, []).append(spec.name)
    changes = []
    for name, spec in sorted(desired.containers.items()):
        change = _plan_container(spec, vetted, renewed, replaced)
        if change is None:
            continue
        requires = [f"image:{spec.image_ref}"]
        requires += [f"network:{n}" for n, _ in spec.networks]
        requires += [f"volume:{m.source}" for m in spec.mounts if m.type == "volume" and m.source]
        requires += [f"container:{r}" for target, _ in spec.depends_on for r in replicas.get(target, [])]
        waits = tuple((r, cond) for target, cond in spec.depends_on for r in replicas.get(target, []))
        # A container comes down before what it depends on, and before the
        # networks and volumes it is attached to.
        holds = _holds(live.containers.get(name))
        holds += [f"container:{r}" for target, _ in spec.depends_on for r in replicas.get(target, [])]
        changes.append(replace(change, requires=tuple(requires), waits=waits, holds=tuple(sorted(set(holds)))))
    changes = _plan_rollouts(changes, desired, live, replaced)
    for name, current in sorted(live.containers.items()):
        if name in desired.containers or not (current.owned or vetted.unrecorded(current)):
            continue
        reason, text = _prune_reason(current, desired)
        error = "" if current.owned else _unrecorded(Kind.CONTAINER, name)
        changes.append(Change(Action.DELETE, Kind.CONTAINER, name, current.key, (text,),
                              reason=reason if current.owned else Reason.NOT_RECORDED, error=error,
                              live_id=current.id, live_driver=live_driver(Kind.CONTAINER, current),
                              holds=tuple(_holds(current, claimed=True)), scheduled=is_scheduled(current)))
    return changes


def _plan_rollouts(changes: list[Change], desired: DesiredState, live: LiveState, replaced: set[str]) -> list[Change]:
    """Give each container replacement that can keep its old container until the new one is ready a rollout.

    Replicas of one container roll ``parallelism`` at a time: each waits for the
    one ``parallelism`` places before it (through ``requires``).
    """
    out = []
    rolled: dict[str, list[str]] = {}
    for change in changes:
        spec = desired.containers.get(change.name)
        recreated = any(r.partition(":")[2] in replaced for r in change.requires if r.startswith(("network:", "volume:")))
        if change.action is not Action.REPLACE or spec is None or recreated or change.scheduled:
            out.append(change)
            continue
        policy = spec.update
        earlier = rolled.setdefault(spec.key, [])
        after = earlier[-policy.parallelism] if len(earlier) >= policy.parallelism else None
        earlier.append(change.id)
        order, why = _order(spec)
        current = live.containers.get(change.name)
        rollout = Rollout(order=order, why=why, delay=policy.delay if after else 0.0, timeout=policy.timeout,
                          min_ready=policy.min_ready, healthcheck=spec.healthcheck is not None and not spec.healthcheck.disabled)
        out.append(replace(change, rollout=rollout, live_state=current.state if current else "",
                           requires=change.requires + ((after,) if after else ())))
    return out


def _order(spec: ContainerSpec) -> tuple[str, str]:
    if spec.update.order:
        return spec.update.order, "update.order"
    fixed = sorted({str(p.published) for p in spec.ports if p.published})
    if fixed:
        return "stop-first", f"publishes fixed host port {', '.join(fixed)}"
    if spec.addresses:  # two containers cannot hold one address either
        return "stop-first", "static address " + ", ".join(v4 or v6 for _, v4, v6 in spec.addresses)
    return "start-first", "default"


def _holds(current: LiveObject | None, *, claimed: bool = False) -> list[str]:
    """What must wait for ``current`` to come down: its networks and volumes (it must be the stack's)."""
    if current is None or not (current.owned or claimed):
        return []
    nets = [f"network:{n}" for n in current.details.get("networks", ())]
    vols = [f"volume:{v}" for v in current.details.get("volumes", ())]
    return nets + vols


def is_scheduled(current: LiveObject) -> bool:
    """Whether a live container is one spec for all its replicas (a service: its replica label is 0)."""
    return current.labels.get(labels.REPLICA) == "0"


def _prune_reason(current: LiveObject, desired: DesiredState) -> tuple[Reason, str]:
    if any(spec.key == current.key for spec in desired.containers.values()):
        return Reason.SCALED_DOWN, f"replica {current.labels.get(labels.REPLICA, '?')} no longer wanted (scaled down)"
    return Reason.NO_LONGER_IN_SPEC, "no longer in the spec"


def _plan_container(spec: ContainerSpec, vetted: Vetted, renewed: set[str], replaced: set[str]) -> Change | None:
    live = vetted.live
    current = live.containers.get(spec.name)
    base = dict(kind=Kind.CONTAINER, name=spec.name, key=spec.key, driver=spec.driver,
                scheduled=spec.replicas is not None)
    if current is None:
        return Change(Action.CREATE, reasons=("new",), reason=Reason.NEW, **base)
    if not current.owned:
        return _refused_create(Kind.CONTAINER, spec.name, spec.key, spec.driver, vetted.unrecorded(current))
    reason, reasons, fields, forced = _replace_reasons(spec, current, live, renewed, replaced)
    recreated = any(n in replaced for n, _ in spec.networks) or any(
        m.type == "volume" and m.source in replaced for m in spec.mounts)
    if reason is not None and spec.replicas is not None and not recreated:
        # The runtime schedules the replicas, and rolls them over itself: the service is updated in place
        # (unless a network or volume it uses is recreated: it must come down first, as a container).
        rollout = Rollout(order=spec.update.order or "stop-first", why="rolling update by the runtime",
                          delay=spec.update.delay, timeout=spec.update.timeout, min_ready=spec.update.min_ready,
                          healthcheck=spec.healthcheck is not None and not spec.healthcheck.disabled)
        return Change(Action.UPDATE, reasons=tuple(reasons), fields=tuple(fields), reason=reason, rollout=rollout,
                      live_id=current.id, live_driver=live_driver(Kind.CONTAINER, current), **base)
    if reason is not None:
        return Change(Action.REPLACE, reasons=tuple(reasons), fields=tuple(fields), forced_by=tuple(forced),
                      reason=reason, live_id=current.id, live_driver=live_driver(Kind.CONTAINER, current), **base)
    if current.state == "running" or current.state == "restarting":
        return None
    if current.state == "exited" and current.exit_code == 0 and spec.restart == "no":
        return None  # a one-shot container that completed: running it again is not convergence
    return Change(Action.START, reasons=(f"state: {current.state} → running",), reason=Reason.NOT_RUNNING,
                  live_id=current.id, live_driver=live_driver(Kind.CONTAINER, current), **base)


def _replace_reasons(
    spec: ContainerSpec, current: LiveObject, live: LiveState, renewed: set[str], replaced: set[str]
) -> tuple[Reason | None, list[str], list[FieldChange], list[str]]:
    """Why ``current`` must be replaced: (code, reason texts, changed fields, forcing fields); no code: it need not."""
    codes: list[Reason] = []
    reasons: list[str] = []
    fields: list[FieldChange] = []
    forced: list[str] = []
    if current.config_hash != spec.config_hash:
        codes.append(Reason.CONFIG_CHANGED)
        secrets = spec.secret_env | labels.read_secret_env(current.labels)
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
            codes.append(Reason.REWIRED)
            fields.append(FieldChange("networks", _display(tuple(attached)), _display(tuple(expected))))
            forced.append("networks")
    live_image = live.images.get(spec.image_ref)
    if spec.image_ref in renewed:
        codes.append(Reason.IMAGE_CHANGED)
        fields.append(FieldChange("image", _short(current.image_id), "(known after apply)"))
        forced.append("image")
    elif live_image is not None and live_image.image_id and current.image_id and current.image_id != live_image.image_id:
        codes.append(Reason.IMAGE_CHANGED)
        fields.append(FieldChange("image", _short(current.image_id), _short(live_image.image_id)))
        forced.append("image")
    drift = tuple(current.details.get("drift") or ())
    if drift:
        codes.append(Reason.DRIFTED)
        reasons.append(f"changed outside the reconciler: {', '.join(drift)}")
        fields.extend(FieldChange(path) for path in drift if path not in {f.path for f in fields})
    if current.details.get("files_missing"):
        codes.append(Reason.FILES_MISSING)
        reasons.append("the config or secret files it mounts are gone from the host")
    for network, _ in spec.networks:
        if network in replaced:
            codes.append(Reason.DEPENDENCY_RECREATED)
            reasons.append(f"network {network} is recreated")
    for mount in spec.mounts:
        if mount.type == "volume" and mount.source in replaced:
            codes.append(Reason.DEPENDENCY_RECREATED)
            reasons.append(f"volume {mount.source} is recreated")
    return (codes[0] if codes else None), reasons, fields, forced


def _short(image_id: str) -> str:
    return image_id[:19] + "…" if len(image_id) > 19 else image_id or "(unknown)"


def _explain(path: str, spec: ContainerSpec, current: LiveObject, secrets: Iterable[str]) -> FieldChange:
    """Old and new display values for one changed field, from the spec and the live details."""
    section, _, sub = path.partition(".")
    if section == "env" and sub in secrets:
        return FieldChange(path, REDACTED if sub in current.details.get("env", {}) else None,
                           REDACTED if sub in spec.env_dict() else None)
    if section in ("configs", "secrets"):
        return _explain_file(path, spec, current)
    new = _display(_desired_value(spec, section, sub))
    old_source = current.details.get(section)
    if old_source is None:
        return FieldChange(path, "(was different)", new) if new is not None else FieldChange(path)
    old = _display(old_source.get(sub) if sub and isinstance(old_source, Mapping) else (old_source if not sub else None))
    if old == new:  # the same networks with other aliases, say: the names alone cannot show it
        return FieldChange(path)
    return FieldChange(path, old, new)


def _explain_file(path: str, spec: ContainerSpec, current: LiveObject) -> FieldChange:
    """A config by its short content hash, a secret only as ``(secret)``: never the content.

    Whether the live container mounted it comes from its field hashes (a
    label); the old hash of a config from the driver's ``details`` when it
    could tell (``configs``: name → content hash).
    """
    section, _, name = path.partition(".")
    was = path in current.field_hashes
    new_hash = spec.file_hashes(section[:-1]).get(name)
    if section == "secrets":
        return FieldChange(path, REDACTED if was else None, REDACTED if new_hash else None)
    old_hash = str(current.details.get("configs", {}).get(name) or "")
    old = _short_content(old_hash) if old_hash else ("(was different)" if was else None)
    new = _short_content(new_hash) if new_hash else None
    if old == new:  # the same content at another target, owner or mode
        return FieldChange(path)
    return FieldChange(path, old, new)


def _short_content(digest: str) -> str:
    return digest[:12]


def _desired_value(spec: ContainerSpec, section: str, sub: str) -> object:
    if section == "env":
        return spec.env_dict().get(sub)
    if section == "labels":
        return dict(spec.labels).get(sub)
    if section == "image":
        return spec.image_ref
    if section == "networks":  # by engine name, as the live side reports them
        return tuple(name for name, _ in spec.networks)
    value = getattr(spec, section, None)
    return value


def _display(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    if is_dataclass(value):
        return canonical_json({k: v for k, v in asdict(value).items() if v not in (None, 0, "", ())})
    if isinstance(value, tuple):
        return canonical_json([asdict(v) if is_dataclass(v) else v for v in value])
    return str(value)
