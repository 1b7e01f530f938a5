"""Planning containers: create, start, replace (with a rollout), prune. Pure; part of the planner.

Kept apart from ``reconciler.planner`` as images are (``reconciler.imageplan``):
containers answer the most questions of any kind. Each wanted container is
compared with the live one by config hash, the image it runs, the networks it
is attached to, drift the runtime reports and its writable layer
(``reconciler.fsdrift``); a replacement gets a rollout (start-first where the
old container can keep serving until the new one is ready); containers the
spec no longer names are pruned, after what depends on them. No I/O.
"""
from __future__ import annotations

from dataclasses import replace

from . import labels
from .explain import changed_fields, explain_field, list_change, short_id
from .fsdrift import replace_reason
from .model import ContainerSpec, DesiredState, Kind, LiveObject, LiveState
from .ownership import Vetted, live_driver, refused_create, set_aside_for, unrecorded
from .plan import Action, Change, FieldChange, Reason, Rollout

__all__ = ["is_scheduled", "plan_containers"]


def plan_containers(desired: DesiredState, vetted: Vetted, images: list[Change], replaced: set[str]) -> list[Change]:
    # Builds, loads and pulls of a missing image, and pulls of content its registry
    # driver says changed give the image a new id (plan_images marks them): its containers follow.
    # A pull under policy "always" whose digest is unknown may not; the next pass compares ids.
    renewed = {c.name for c in images if c.renews}
    live = vetted.live
    replicas: dict[str, list[str]] = {}
    for spec in desired.containers.values():
        replicas.setdefault(spec.key, []).append(spec.name)
    # Containers left aside whose name has a successor: removed before that successor starts (a port, an address).
    leftovers: dict[str, list[str]] = {}
    for name, current in live.containers.items():
        if current.owned and name not in desired.containers and set_aside_for(current):
            leftovers.setdefault(set_aside_for(current), []).append(f"container:{name}")
    changes = []
    for name, spec in sorted(desired.containers.items()):
        change = _plan_container(spec, vetted, renewed, replaced)
        if change is None:
            continue
        requires = [f"image:{spec.image_ref}", *sorted(leftovers.get(name, ()))]
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
        error = "" if current.owned else unrecorded(Kind.CONTAINER, name, vetted)
        changes.append(Change(Action.DELETE, Kind.CONTAINER, name, current.key, (text,),
                              reason=reason if current.owned else Reason.NOT_RECORDED, error=error,
                              live_id=current.id, live_driver=live_driver(Kind.CONTAINER, current),
                              holds=tuple(_holds(current, claimed=True)), scheduled=is_scheduled(current)))
    return changes


# Live states of a container that serves nobody: the engine restarts it after a crash (and cannot rename it
# meanwhile: "sandbox not found"), it stopped, its removal failed, or it never started.
_IDLE_STATES = frozenset({"restarting", "exited", "dead", "created"})


def _plan_rollouts(changes: list[Change], desired: DesiredState, live: LiveState, replaced: set[str]) -> list[Change]:
    """Give each container replacement that can keep its old container until the new one is ready a rollout.

    Replicas of one container roll ``parallelism`` at a time: each waits for the
    one ``parallelism`` places before it (through ``requires``). A container that
    is not running has no traffic to protect: it is replaced directly, removed
    before its successor is created, whatever its ``update.order``.
    """
    out = []
    rolled: dict[str, list[str]] = {}
    for change in changes:
        spec = desired.containers.get(change.name)
        current = live.containers.get(change.name)
        recreated = any(r.partition(":")[2] in replaced for r in change.requires if r.startswith(("network:", "volume:")))
        if change.action is not Action.REPLACE or spec is None or recreated or change.scheduled:
            out.append(change)
            continue
        if current is not None and current.state in _IDLE_STATES:
            out.append(replace(change, live_state=current.state, reasons=change.reasons + (
                f"{current.state}: no traffic to protect, so it is removed before its successor is created",)))
            continue
        policy = spec.update
        earlier = rolled.setdefault(spec.key, [])
        after = earlier[-policy.parallelism] if len(earlier) >= policy.parallelism else None
        earlier.append(change.id)
        order, why = _order(spec)
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
    origin = set_aside_for(current)
    if origin:
        fate = "its successor exists" if origin in desired.containers else f"{origin} is no longer in the spec"
        return Reason.INTERRUPTED, f"left aside by an interrupted replacement of {origin}: {fate}"
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
        return refused_create(Kind.CONTAINER, spec.name, spec.key, spec.driver, vetted, current)
    reason, reasons, fields, forced = _replace_reasons(spec, current, live, renewed, replaced)
    aside = current.details.get("aside")
    if aside:  # see _bring_back
        reason, reasons = Reason.INTERRUPTED, [f"left aside as {aside} by an interrupted replacement", *reasons]
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
        keeps = _keeps_if_image(reason, reasons, forced, current)
        if keeps:
            reasons = [*reasons, "kept running instead if the image the build gives is the one Compose built"]
        return Change(Action.REPLACE, reasons=tuple(reasons), fields=tuple(fields), forced_by=tuple(forced),
                      reason=reason, live_id=current.id, live_driver=live_driver(Kind.CONTAINER, current),
                      keeps_if_image=keeps, **base)
    if current.state == "running" or current.state == "restarting":
        return None
    if current.state == "exited" and current.exit_code == 0 and spec.restart == "no":
        return None  # a one-shot container that completed: running it again is not convergence
    return Change(Action.START, reasons=(f"state: {current.state} → running",), reason=Reason.NOT_RUNNING,
                  live_id=current.id, live_driver=live_driver(Kind.CONTAINER, current), **base)


def _keeps_if_image(reason: Reason, reasons: list[str], forced: list[str], current: LiveObject) -> str:
    """The image id of an adopted container replaced only for a rebuilt image that may prove the same; else ""."""
    built = str(current.details.get("compose_build") or "")
    if built and built == current.image_id and reason is Reason.IMAGE_CHANGED and set(forced) == {"image"} \
            and not reasons:
        return built
    return ""


def _expected_networks(spec: ContainerSpec, current: LiveObject) -> list[str] | None:
    """The networks ``current`` should be attached to by engine name; None when nobody can say.

    A container that names no network and no network mode goes where its
    runtime attaches such containers, which the runtime reports as
    ``details["default_network"]`` (the planner knows no engine's default);
    a runtime that does not say is not checked.
    """
    if spec.networks:
        return sorted(name for name, _ in spec.networks)
    fallback = spec.network_mode or str(current.details.get("default_network") or "")
    return [fallback] if fallback else None


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
        changed = changed_fields(dict(spec.field_hashes), current.field_hashes)
        fields.extend(explain_field(path, spec, current, secrets) for path in changed)
        forced.extend(changed)
        if not changed:
            reasons.append("config changed")
    if "networks" in current.details and current.config_hash == spec.config_hash:
        # Free from the list call: catches a container recreated or rewired by hand.
        expected = _expected_networks(spec, current)
        attached = sorted(current.details["networks"])
        if expected is not None and attached != expected:
            codes.append(Reason.REWIRED)
            fields.append(list_change("networks", attached, expected))
            forced.append("networks")
    live_image = live.images.get(spec.image_ref)
    if spec.image_ref in renewed:
        codes.append(Reason.IMAGE_CHANGED)
        fields.append(FieldChange("image", short_id(current.image_id), "(known after apply)"))
        forced.append("image")
    elif live_image is not None and live_image.image_id and current.image_id and current.image_id != live_image.image_id:
        codes.append(Reason.IMAGE_CHANGED)
        fields.append(FieldChange("image", short_id(current.image_id), short_id(live_image.image_id)))
        forced.append("image")
    drift = tuple(current.details.get("drift") or ())
    if drift:
        codes.append(Reason.DRIFTED)
        reasons.append(f"changed outside the reconciler: {', '.join(drift)}")
        fields.extend(FieldChange(path) for path in drift if path not in {f.path for f in fields})
    if layer := replace_reason(spec, current):
        codes.append(Reason.FILESYSTEM_DRIFT)
        reasons.append(layer)
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
