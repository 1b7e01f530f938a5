"""The registry role of the driver contract: images, and the tags their sources hold.

A room of its own (``contract`` holds the rest of the contract) because image
automation (issue 25) gives this role a second face besides making images
present: asking a source which tags a repository has (``list_tags``) and what
one names now (``tag_details``, a ``TagDetails``). Both are optional: a driver
that keeps the defaults (None: "cannot tell") is simply never automated.
"""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Mapping

from ..errors import PermanentError
from ..model import ImageSpec, Kind, LiveObject
from .contract import ObjectDriver

__all__ = ["RegistryDriver", "TagDetails"]


@dataclass(frozen=True)
class TagDetails:
    """What a tag of a repository names now, at its source.

    ``digest``: the manifest digest the tag names (``sha256:…``; the index's for a
    multi-arch image; a source without manifests says what it has, see its driver).
    ``created``: the image config's ``created`` (UTC, aware), None when unknown.
    """

    tag: str
    digest: str
    created: datetime | None


class RegistryDriver(ObjectDriver):
    """Makes images present: pulls references, builds contexts.

    ``observe`` says whether the content behind a reference changed (a tag
    moved upstream, an archive holds another image) by setting each image's
    ``LiveObject.content``; the core then calls ``pull`` again and replaces
    the containers that use the image. That is the only signal the planner
    reads for it: an image reported with ``content=None`` is never updated for
    its content (``pull: always`` still pulls a tag it follows), whatever its
    ``details`` say.
    """

    kind = Kind.IMAGE

    @abstractmethod
    def pull(self, spec: ImageSpec) -> None:
        """Pull ``spec.ref`` from its registry."""

    @abstractmethod
    def build(self, spec: ImageSpec, labels: Mapping[str, str]) -> None:
        """Build ``spec`` and tag it ``spec.ref``, with ``labels`` on the image."""

    def push(self, spec: ImageSpec) -> None:
        """Push ``spec.ref`` to its registry (for images with ``push: true``).

        Optional: a driver that cannot push keeps this default, and a spec
        asking it to push fails that change with this message.
        """
        raise PermanentError(f"the {type(self).__name__} registry driver cannot push {spec.ref}")

    def delete(self, live: LiveObject) -> None:
        """Images are shared caches: the core never deletes them."""

    def layers(self, ref: str) -> list[dict] | None:
        """Optional: the image's layers, newest first (as ``docker history``); None when it cannot tell.

        Each item: ``id`` (short; two images share a layer when they share its
        id), ``size`` (bytes), ``created_by`` (the Dockerfile step that made it,
        shortened to ~80 characters) and ``reused`` (for a built image's own
        steps: whether its last build took the layer from the cache; None
        otherwise). Asked only by a detailed status, once per image.
        """
        return None

    def equivalent(self, ref: str, image_id: str) -> str:
        """Optional: the id of the image ``ref`` names, when it holds what ``image_id`` holds; else "".

        "What it holds" is its file system layers and its config (command,
        environment, ports, …), labels aside: the image another tool built
        from the same context. Asked after a build, for a container taken
        over from a Compose project (``reconcile adopt``) whose image Compose
        built: the same build keeps the container running instead of
        replacing it. The default ("") cannot tell: the container is replaced.
        """
        return ""

    def list_tags(self, spec: ImageSpec) -> list[str] | None:
        """Optional: every tag of ``spec.ref``'s repository at its source (all pages), or None when the driver cannot list.

        What image automation picks the newest allowed tag from. Raises
        ``TemporaryError`` (unreachable, 5xx, 429) or ``PermanentError`` (not
        found, denied). Each backend request it makes counts one in
        ``self.context.stats["read"]``. The default cannot tell.
        """
        return None

    def tag_details(self, spec: ImageSpec, tag: str) -> TagDetails | None:
        """Optional: what ``tag`` of ``spec.ref``'s repository names now (digest, creation time). Same errors.

        Asked for ``min_age`` (the image's ``created``) and ``pin: digest``. The default cannot tell.
        """
        return None
