"""An image's version policy: which newer tags of its ``ref`` the automation may move it to.

Users write it per image (``images.<key>.update:``) or per Compose service
(``x-reconcile: {update: …}``); ``reconciler.imagepolicy`` parses and checks it
and picks a tag among those a registry lists. It lives in the model so that
``ImageSpec`` can carry it to the daemon's automation, plain data like every
other record that crosses phases. It never changes a hash or a plan: the tag
it picks reaches the engine only through a commit that edits ``ref``.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["PolicyKind", "UpdatePolicy"]


class PolicyKind(Enum):
    """How a policy orders tags and says which are allowed."""

    #: An npm-style range over semantic versions (``>=1.4 <2``, ``^1.4``, ``1.x``).
    SEMVER = "semver"
    #: A regular expression the whole tag matches; a group of it orders the tags.
    PATTERN = "pattern"
    #: The tag itself, followed by digest: written back as ``name:tag@sha256:…``.
    DIGEST = "digest"


@dataclass(frozen=True)
class UpdatePolicy:
    """One image's ``update:``, as ``reconciler.imagepolicy.parse_policy`` reads it."""

    kind: PolicyKind
    #: The range as written (SEMVER only).
    semver: str = ""
    #: Whether pre-releases (``1.5.0-rc1``) may be chosen (SEMVER only).
    prerelease: bool = False
    #: A Python regex, matched against the whole tag (PATTERN only).
    pattern: str = ""
    #: ``$name`` or ``$1``: the group whose text orders the tags; "" = the whole tag (PATTERN only).
    extract: str = ""
    #: ``numerical`` (the numbers in the extracted text, compared in turn) or ``alphabetical`` (PATTERN only).
    order: str = "numerical"
    #: Seconds a tag must have been published before it may be chosen (0: at once).
    min_age: float = 0.0
    #: Seconds between two looks at the registry.
    interval: float = 300.0
    #: Write ``name:tag@sha256:…`` (``pin: digest``); always True for DIGEST.
    pin_digest: bool = False
