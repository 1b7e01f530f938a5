"""Which images of a stack a newer version is allowed for, asked of their registries: the heart of image automation.

Why a module of its own, below the CLI and the daemon: ``reconcile images
outdated`` and ``update`` (a person at a work tree) and the daemon's
automation (commits to git) ask the same question the same way. The policy
(``reconciler.imagepolicy``) decides among tags; this module asks each image's
registry driver for them (``RegistryDriver.list_tags``, and ``tag_details``
only where an answer needs it: the publication time of the candidates a
``min_age`` holds back, newest first until one is old enough; the digest of
the tag chosen when the policy pins it), so an image whose registry has
nothing new costs one request per check. One image's failure (a registry
down, a driver that cannot list tags) is that image's answer, never the
stack's.

A version quarantined for a stack (it failed its health gate there) is never
chosen; when the spec names a quarantined version itself, the newest allowed
version that is not quarantined is chosen, older or not: that is the revert.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Collection, Iterable, Mapping

from .drivers import Drivers
from .errors import ReconcilerError
from .imagepolicy import Verdict, candidates, choose, current_tag, repository, with_tag
from .model import DesiredState, ImageSpec, Kind, PolicyKind, UpdatePolicy

__all__ = ["ImageCheck", "check_images", "commit_message", "describe_policy", "repository_of", "spec_file_edit",
           "updatable"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageCheck:
    """One image with an update policy, as its registry answered."""

    stack: str
    #: The key under ``images:``.
    key: str
    #: The reference the spec names now.
    ref: str
    policy: UpdatePolicy
    #: The policy's choice among the registry's tags (None when they could not be listed).
    verdict: Verdict | None = None
    #: The reference to write instead of ``ref``; "" when it stays.
    new_ref: str = ""
    #: The digest of the chosen tag, when the policy pins it or follows a digest.
    digest: str = ""
    #: Why the image could not be checked ("" when it was).
    error: str = ""
    #: Versions quarantined for this stack and image.
    quarantined: tuple[str, ...] = ()

    @property
    def outdated(self) -> bool:
        return bool(self.new_ref)

    @property
    def new_tag(self) -> str:
        return current_tag(self.new_ref) if self.new_ref else current_tag(self.ref)


def updatable(desired: DesiredState) -> list[ImageSpec]:
    """The stack's images with an update policy, in key order."""
    return [spec for _, spec in sorted(desired.images.items()) if spec.update is not None]


def check_images(desired: DesiredState, drivers: Drivers, *, quarantined: Mapping[str, Collection[str]] | None = None,
                 only: Collection[str] | None = None, now: datetime | None = None) -> list[ImageCheck]:
    """Each image of ``desired`` with a policy (``only`` these keys, when given), checked against its registry.

    ``quarantined``: image key → versions not to choose for this stack.
    """
    now = now or datetime.now(timezone.utc)
    out = []
    for spec in updatable(desired):
        if only is not None and spec.key not in only:
            continue
        held = tuple(sorted((quarantined or {}).get(spec.key, ())))
        try:
            out.append(_check(desired.stack, spec, drivers, held, now))
        except ReconcilerError as exc:
            out.append(ImageCheck(desired.stack, spec.key, spec.ref, spec.update, error=str(exc), quarantined=held))
    return out


def _check(stack: str, spec: ImageSpec, drivers: Drivers, held: tuple[str, ...], now: datetime) -> ImageCheck:
    policy = spec.update
    assert policy is not None
    driver = drivers.get(Kind.IMAGE, spec.driver)
    tag = current_tag(spec.ref)
    pinned = spec.ref.partition("@")[2]
    if policy.kind is PolicyKind.DIGEST:
        details = driver.tag_details(spec, tag)
        if details is None:
            return _cannot(stack, spec, held, "tell which digest a tag names")
        new_ref = with_tag(spec.ref, tag, details.digest) if details.digest != pinned else ""
        verdict = Verdict(current=tag, chosen=tag, newest=tag, skipped=())
        return ImageCheck(stack, spec.key, spec.ref, policy, verdict, new_ref, details.digest, quarantined=held)
    tags = driver.list_tags(spec)
    if tags is None:
        return _cannot(stack, spec, held, "list tags")
    current = "" if tag in held else tag  # a quarantined version is left for the newest one allowed, older or not
    created = _creation_times(spec, driver, policy, current, tags, held, now) if policy.min_age else {}
    verdict = choose(policy, current, tags, created=created, quarantined=held, now=now)
    if current != tag:  # asked as if at no version: the spec's tag stays when nothing else is allowed
        verdict = replace(verdict, current=tag, chosen=verdict.chosen or tag)
    digest, new_ref = "", ""
    if verdict.chosen != tag or (policy.pin_digest and not pinned):
        if policy.pin_digest:
            details = driver.tag_details(spec, verdict.chosen)
            if details is None:
                return _cannot(stack, spec, held, "tell which digest a tag names")
            digest = details.digest
        new_ref = with_tag(spec.ref, verdict.chosen, digest)
    return ImageCheck(stack, spec.key, spec.ref, policy, verdict, new_ref if new_ref != spec.ref else "", digest,
                      quarantined=held)


def _creation_times(spec: ImageSpec, driver, policy: UpdatePolicy, current: str, tags: Iterable[str],
                    held: Collection[str], now: datetime) -> dict[str, datetime | None]:
    """When the candidates newer than ``current`` were made, newest first, until one is old enough (the older
    ones cannot be chosen over it, so they are not asked about)."""
    created: dict[str, datetime | None] = {}
    for tag in candidates(policy, current, tags, quarantined=held):
        details = driver.tag_details(spec, tag)
        created[tag] = details.created if details is not None else None
        if created[tag] is not None and (now - created[tag]).total_seconds() >= policy.min_age:
            break
    return created


def _cannot(stack: str, spec: ImageSpec, held: tuple[str, ...], what: str) -> ImageCheck:
    return ImageCheck(stack, spec.key, spec.ref, spec.update,
                      error=f"the {spec.driver} registry driver cannot {what}", quarantined=held)


def describe_policy(policy: UpdatePolicy) -> str:
    """The policy in a few words, for people: ``semver >=1.4 <2``, ``pattern … (numerical)``, ``digest``."""
    if policy.kind is PolicyKind.SEMVER:
        text = f"semver {policy.semver}" + (" (pre-releases too)" if policy.prerelease else "")
    elif policy.kind is PolicyKind.PATTERN:
        text = f"pattern {policy.pattern} ({policy.order})"
    else:
        text = "digest"
    extras = [f"min_age {policy.min_age:g}s"] if policy.min_age else []
    if policy.pin_digest and policy.kind is not PolicyKind.DIGEST:
        extras.append("pinned by digest")
    return text + (f", {', '.join(extras)}" if extras else "")


def commit_message(check: ImageCheck, *, reason: str = "") -> str:
    """The message of the commit that writes ``check.new_ref``: image, old → new, policy and digest; ``reason``
    (a quarantine's) on top of the body when it is a revert."""
    old, new = current_tag(check.ref) or check.ref, check.new_tag
    verb = "back to" if reason else "→"
    subject = f"images: {check.key} {old} {verb} {new} in stack {check.stack}"
    body = [f"{reason}", ""] if reason else []
    body += [f"image: {'/'.join(repository_of(check.ref))}",
             f"from: {check.ref}", f"to: {check.new_ref}", f"policy: {describe_policy(check.policy)}"]
    if check.digest:
        body.append(f"digest: {check.digest}")
    return subject + "\n\n" + "\n".join(body) + "\n"


def repository_of(ref: str) -> tuple[str, str]:
    """(registry host, repository) of a reference, by Docker's rules: ``busybox:1`` → ("docker.io", "library/busybox")."""
    name = repository(ref)
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "docker.io", name if "/" in name else "library/" + name


def spec_file_edit(spec: ImageSpec, root: Path) -> tuple[str, int, int] | None:
    """(path relative to ``root``, line, col) where ``spec``'s reference is written, when it is inside ``root``."""
    if spec.ref_at is None:
        return None
    file, line, col = spec.ref_at
    try:
        return str(Path(file).resolve().relative_to(root.resolve())), line, col
    except ValueError:
        return None
