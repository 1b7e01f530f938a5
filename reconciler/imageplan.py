"""Planning images: build, load, pull or push what the spec wants, and follow moved content.

Part of the planner (``reconciler.planner``), kept apart because images answer
other questions than the objects the stack owns: an image is never owned or
pruned, and whether it is current is told by its build hash, its registry
digests and what its registry driver says about the source (``content``).
Pure: no I/O.
"""
from __future__ import annotations

from typing import Mapping

from . import labels
from .explain import short_id
from .model import ImageSpec, Kind, LiveObject, LiveState, cache_break
from .plan import Action, Change, Reason

__all__ = ["plan_images"]


def plan_images(specs: Mapping[str, ImageSpec], live: LiveState) -> list[Change]:
    """The changes that make each wanted image present and current, by reference."""
    changes = []
    for ref, spec in sorted(specs.items()):
        change = _plan_image(spec, live.images.get(ref))
        if change is not None:
            changes.append(change)
    return changes


def _plan_image(spec: ImageSpec, current: LiveObject | None) -> Change | None:
    def change(action: Action, reason: Reason, *texts: str, **kw) -> Change:
        return Change(action, Kind.IMAGE, spec.ref, spec.key, texts, reason=reason, driver=spec.driver,
                      live_id=current.id if current else "", **kw)

    if spec.is_build:
        if current is None:
            return change(Action.CREATE, Reason.BUILD_MISSING, "build: image not present", renews=True)
        if current.labels.get(labels.BUILD_HASH, "") != spec.build_hash:
            where = cache_break(spec.build_steps, current.labels.get(labels.BUILD_STEPS, ""))
            return change(Action.UPDATE, Reason.BUILD_CHANGED, "build: inputs changed", *([where] if where else []),
                          renews=True)
        if spec.push and not _in_registry(spec.ref, current):
            return change(Action.UPDATE, Reason.PUSH_MISSING, "push: not in the registry")
        return None
    if current is None:
        if spec.is_archive:
            return change(Action.CREATE, Reason.LOAD_MISSING, "load: image not present", renews=True)
        error = f"image {spec.ref} is not present and its pull policy is never" if spec.pull == "never" else ""
        return change(Action.CREATE, Reason.PULL_MISSING, "pull: image not present", error=error, renews=True)
    content = current.content if _follows_source(spec) else None
    if content is not None and content.changed:
        local, source = short_id(content.local or "(none)"), short_id(content.source or "(unknown)")
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
