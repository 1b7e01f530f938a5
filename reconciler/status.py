"""Status: every object of a stack, desired against live, with health and drift. Pure.

An external network or volume (made outside the stack) shows ``external``, or
``missing (external)`` when it does not exist: the plan refuses to apply then.

Images and containers also show ``digest`` (the repository digest of the image
they are, or run) and ``upstream`` (where the tag points at the registry now).
An object the plan would change shows ``diff``: each field that differs, one
readable line each (``explain.render_field``). Every object shows ``details``: what its driver reported for people
(``LiveObject.info``, e.g. a storage driver's path), redacted.
"""
from __future__ import annotations

from typing import Any, Mapping

from .explain import render_change
from .fsdrift import filesystem_status
from .model import DesiredState, Kind, LiveState
from .plan import Plan, Reason
from .containerplan import is_scheduled
from .redact import redact

__all__ = ["status_rows"]


def status_rows(desired: DesiredState, live: LiveState, plan: Plan, *, detailed: bool = False,
                sizes: Mapping[str, int] | None = None,
                layers: Mapping[str, dict | None] | None = None) -> list[dict[str, Any]]:
    """One row per desired or owned object; ``drift`` says what the plan would change, if anything.

    ``filesystem`` (containers): their writable layer's changes when their ``filesystem:`` policy had it
    read (see ``fsdrift``), with its paths when ``detailed``, and its size from ``sizes`` (name → bytes).
    ``layers``: each image's ``imagelayers.layer_views`` entry, when a detailed status asked for them.
    """
    changes = {c.id: c for c in plan.changes}
    wanted = {kind: set(desired.of(kind)) for kind in Kind}
    rows = []
    for kind in Kind:
        live_objects = live.of(kind)
        names = wanted[kind] | {n for n, o in live_objects.items() if o.owned}
        for name in sorted(names):
            obj = live_objects.get(name)
            change = changes.get(f"{kind.value}:{name}")
            spec = desired.of(kind).get(name)
            scheduled = (getattr(spec, "replicas", None) is not None) or (
                kind is Kind.CONTAINER and obj is not None and is_scheduled(obj))
            external = bool(getattr(spec, "external", False))
            rows.append({
                "kind": "service" if scheduled else kind.value,
                "name": name,
                "desired": name in wanted[kind],
                "live": obj is not None,
                "managed": bool(obj and obj.owned) and not external and not (
                    change and change.reason is Reason.NOT_RECORDED),
                "external": external,
                "state": _state(kind, obj, external=external),
                "health": (obj.health if obj else "") or None,
                "image": _image(kind, obj, live, desired, name),
                **_digests(kind, obj, live, desired),
                "drift": _drift(change),
                "diff": render_change(change.fields) if change and change.fields else None,
                "details": {str(k): redact(str(v)) for k, v in obj.info.items()} if obj and obj.info else None,
                "filesystem": filesystem_status(spec, obj, detailed=detailed, size_rw=(sizes or {}).get(name))
                if kind is Kind.CONTAINER else None,
                "layers": (layers or {}).get(name) if kind is Kind.IMAGE else None,
            })
    return rows


def _state(kind: Kind, obj, *, external: bool = False) -> str:
    if external:  # made outside the stack: whoever owns it, it is the stack's to use, never to change
        return "external" if obj is not None else "missing (external)"
    if obj is None:
        return "missing"
    if kind is Kind.CONTAINER:
        return obj.state + (f" ({obj.exit_code})" if obj.state == "exited" and obj.exit_code is not None else "")
    return "present" if obj.owned or kind is Kind.IMAGE else "unmanaged"


def _image(kind: Kind, obj, live: LiveState, desired: DesiredState, name: str) -> str | None:
    if kind is Kind.IMAGE and obj is not None:
        return obj.image_id[:19]
    if kind is Kind.CONTAINER and obj is not None:
        return obj.image_id[:19] or None
    return None


def _digests(kind: Kind, obj, live: LiveState, desired: DesiredState) -> dict[str, str | None]:
    """``digest``: what the image (or a container's image) is, by its repository's digest;
    ``upstream``: where the tag points at the registry now, when the registry was asked."""
    if obj is None or kind not in (Kind.IMAGE, Kind.CONTAINER):
        return {"digest": None, "upstream": None}
    if kind is Kind.IMAGE:
        image, image_id = obj, obj.image_id
    else:
        spec = desired.containers.get(obj.name)
        image = live.images.get(spec.image_ref) if spec else None
        image_id = obj.image_id
    if image is None:
        return {"digest": None, "upstream": None}
    by_id = image.details.get("digests_by_id") or {}
    upstream = image.content.source if image.content is not None else None
    return {"digest": by_id.get(image_id) or None, "upstream": upstream or None}


def _drift(change) -> str | None:
    if change is None:
        return None
    detail = "; ".join([*change.reasons, *map(str, change.fields)])
    text = f"{change.action.value}: {detail}" if detail else change.action.value
    return f"{text} [{change.error}]" if change.error else text
