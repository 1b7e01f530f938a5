"""The planner: a pure function of desired and live state.

No I/O happens here and nothing imports an engine's client. ``plan_changes``
compares what the spec asks for with what the drivers report and returns the
ordered list of changes (``reconciler.plan``), each with the reasons a user
needs to trust it: which fields changed (old → new, secrets redacted), which
field forces a replacement, and which changes need an explicit flag because
they would destroy state. Images are planned in ``reconciler.imageplan``,
containers in ``reconciler.containerplan``, changed fields explained in
``reconciler.explain``. External networks and
volumes (made outside the stack) get no change at all; a missing one is a
refusal of the whole plan (``Plan.refusals``), at the spec line asking for it.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from . import labels
from .containerplan import plan_containers
from .explain import changed_fields
from .fsdrift import reported
from .imageplan import plan_images
from .model import (
    DesiredState,
    Kind,
    LiveObject,
    LiveState,
    NetworkSpec,
    Record,
    VolumeSpec,
)
from .ownership import Vetted, live_driver, refused_create, set_aside_for, unrecorded, vet
from .plan import Action, Change, Plan, Reason

__all__ = ["plan_changes"]

_FLAGS = {Kind.NETWORK: "--recreate-networks", Kind.VOLUME: "--recreate-volumes"}


def plan_changes(desired: DesiredState, live: LiveState, *, prune_volumes: bool = False,
                 record: Record | None = None, adopt: bool = False) -> Plan:
    """Every change that makes ``live`` match ``desired``, in dependency order.

    ``record`` is what the reconciler's own record says it created (see
    ``reconciler.ownership``): objects whose labels claim the stack but which
    it does not list are reported with an error, never changed, unless
    ``adopt``. None trusts the labels alone (callers without a record).
    """
    vetted = _bring_back(desired, vet(desired, live, record, adopt=adopt))
    live = vetted.live
    notes: list[str] = []
    images = plan_images(desired.of(Kind.IMAGE), live)
    networks = _plan_simple(Kind.NETWORK, desired.networks, vetted, prune=True, notes=notes)
    volumes = _plan_simple(Kind.VOLUME, desired.volumes, vetted, prune=prune_volumes, notes=notes)
    replaced = {c.name for c in networks + volumes if c.action in (Action.REPLACE, Action.DELETE) and not c.error}
    containers = plan_containers(desired, vetted, images, replaced)
    changes = images + networks + volumes + containers
    if vetted.rebuilding:
        changes = _without_removals(changes, notes)
    fs_notes, drifted = reported(desired, live)
    notes += _adoption_notes(vetted) + fs_notes
    return Plan(stack=desired.stack, changes=tuple(changes), notes=tuple(notes), adopted=vetted.adopted,
                refusals=tuple(_missing_external(desired, live)), drifted=drifted)


def _missing_external(desired: DesiredState, live: LiveState) -> list[str]:
    """One located line for each external network or volume that does not exist: nothing can be applied."""
    out = []
    for kind in (Kind.NETWORK, Kind.VOLUME):
        present = live.of(kind)
        for key, spec in sorted(desired.section(kind).items()):
            if spec.external and spec.name not in present:
                where = f"{spec.origin}: " if spec.origin else ""
                out.append(f"{where}{kind.section}.{key}: external {kind.value} {spec.name!r} does not exist: "
                           f"create it (docker {kind.value} create {spec.name}) or remove external:")
    return out


def _bring_back(desired: DesiredState, vetted: Vetted) -> Vetted:
    """Show each container an interrupted replacement left aside under the name it gave up, when that is free.

    Its change then replaces it (``Reason.INTERRUPTED``), starting from the rename
    already made: the replacement is finished, or rolled back if the new one fails.
    One whose name has a successor stays aside, and is removed as a leftover.
    """
    containers = dict(vetted.live.containers)
    for name, obj in sorted(vetted.live.containers.items()):
        origin = set_aside_for(obj)
        if obj.owned and origin in desired.containers and origin not in containers:
            del containers[name]
            containers[origin] = replace(obj, name=origin, details={**obj.details, "aside": name})
    if containers == vetted.live.containers:
        return vetted
    return replace(vetted, live=replace(vetted.live, containers=containers))


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
        if spec.external:  # made and kept outside the stack; a missing one is a refusal (_missing_external)
            continue
        if current is None:
            changes.append(Change(Action.CREATE, kind, name, spec.key, ("new",), driver=spec.driver,
                                  reason=Reason.NEW))
        elif not current.owned:
            changes.append(refused_create(kind, name, spec.key, spec.driver, vetted, current))
        elif current.config_hash != spec.config_hash:
            changed = changed_fields(labels.spec_field_hashes(spec), current.field_hashes)
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
        error = unrecorded(kind, name, vetted) if not current.owned else _keeps_data(kind, current, vetted,
                                                                                      "--prune-volumes")
        changes.append(Change(Action.DELETE, kind, name, current.key, ("no longer in the spec",),
                              live_id=current.id, live_driver=live_driver(kind, current), error=error,
                              reason=Reason.NO_LONGER_IN_SPEC if current.owned else Reason.NOT_RECORDED))
    return changes


def _keeps_data(kind: Kind, current: LiveObject, vetted: Vetted, flag: str) -> str:
    """Why deleting a volume would delete data the record does not say the reconciler created ("" if not)."""
    if kind is not Kind.VOLUME or vetted.may_delete_data(current):
        return ""
    return (f"volume {current.name} was not created by the reconciler (its record says it was adopted, or "
            f"does not list it), so its data is kept; rerun with {flag} --adopt to delete it anyway")
