"""What image automation did: a version written back to git, quarantined, or released by a person.

Why a value of its own: the daemon's automation tells plugins (notifications,
audit) through the ``reconciler_image_event`` hook, and they must not need
the automation's own types to read it.
"""
from __future__ import annotations

import enum

from ..values import value

__all__ = ["ImageEvent", "ImageEventKind"]


class ImageEventKind(enum.StrEnum):
    """What happened to an image of a stack."""

    UPDATED = "updated"  # a newer version was committed to the source (or to an update branch)
    QUARANTINED = "quarantined"  # its rollout failed the health gate and rolled back; the version is never proposed again
    RELEASED = "released"  # a person let a quarantined version be proposed again


@value
class ImageEvent:
    """One image automation event, for plugins (``reconciler_image_event``)."""

    kind: ImageEventKind
    #: The stack, and the image's key under ``images:``.
    stack: str
    image: str
    #: The reference before and after (``after`` "" for a release).
    before: str
    after: str = ""
    #: The version (tag) the event is about: the new one, or the one quarantined or released.
    version: str = ""
    #: The policy, in a few words (``semver >=1.4 <2``).
    policy: str = ""
    #: The commit written to the source ("" when none), and the branch it went to.
    commit: str = ""
    branch: str = ""
    #: Why (a quarantine's failed health gate), for people.
    reason: str = ""
