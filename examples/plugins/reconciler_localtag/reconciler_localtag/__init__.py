"""reconciler-localtag: a registry driver whose "registry" is another image on the same engine.

A spec asks for one with::

    images:
      app: {ref: "shop/app:1", driver: localtag, options: {from: "shop/app:candidate"}}

and ``ref`` is made present by tagging whatever ``from`` names now. When
``from`` moves to another image (a new build was tagged ``candidate``), the
driver reports the content behind ``ref`` as changed, so the plan tags it again
and replaces the containers that run it: promotion by tag, without a registry.
It shows the whole registry driver contract in one small module: ``observe``
receives the specs and reports ``LiveObject.content``; ``pull`` makes the
image present; ``build`` is refused; errors are ``PermanentError`` or, for an
absent engine, ``TemporaryError``. Its optional tag listing (image automation)
lists the engine's own tags of ``ref``'s repository: the source is this engine,
so a tag's digest is the image id and ``created`` the image's.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Mapping

from reconciler.sdk import (
    Content, DriverContext, ImageSpec, Kind, LiveObject, PermanentError, RegistryDriver, TagDetails, hookimpl,
)

__all__ = ["RECONCILER_API_VERSION", "LocalTagDriver", "reconciler_register_drivers"]
__version__ = "0.1.0"

RECONCILER_API_VERSION = 2
NAME = "localtag"


def _engine():
    # Imported on first use: loading plugins (say, for `reconcile validate`) must not pay for the Docker SDK.
    from reconciler.sdk import docker as engine_kit

    return engine_kit


class LocalTagDriver(RegistryDriver):
    """Images present by tagging a local source image (``options.from``)."""

    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["from"],
        "properties": {
            "from": {"description": "The local image (name:tag or id) that ref should be", "type": "string",
                     "minLength": 1},
        },
    }

    def __init__(self, context: DriverContext) -> None:
        self.context = context

    @property
    def api(self):
        return _engine().api_client(self.context)

    def observe(self, stack: str, wanted: Mapping[str, ImageSpec]) -> list[LiveObject]:
        """Each wanted image that is present, with ``content``: does it still match its source?"""
        if not wanted:
            return []  # every driver is observed each pass: with nothing wanted, no call at all
        with _engine().engine_errors("list images"):
            images = self.api.images()
        by_ref = {tag: image for image in images for tag in image.get("RepoTags") or ()}
        by_id = {image["Id"]: image for image in images}
        out = []
        for ref, spec in wanted.items():
            image = by_ref.get(ref)
            if image is None:
                continue
            content = None
            source = _source(spec)
            source_image = by_ref.get(source) or by_id.get(source)
            if source_image is not None:
                content = Content(changed=source_image["Id"] != image["Id"], local=image["Id"],
                                  source=source_image["Id"])
            out.append(LiveObject(kind=Kind.IMAGE, name=ref, id=image["Id"], image_id=image["Id"],
                                  labels=image.get("Labels") or {}, content=content, info={"from": source}))
        return out

    def pull(self, spec: ImageSpec) -> None:
        """Tag the source image as ``spec.ref``."""
        import docker.errors

        source = _source(spec)
        repo, _, tag = spec.ref.rpartition(":") if ":" in spec.ref.rsplit("/", 1)[-1] else (spec.ref, "", "latest")
        with _engine().engine_errors(f"tag {source} as {spec.ref}"):
            try:
                self.api.tag(source, repo, tag=tag, force=True)
            except docker.errors.NotFound:
                raise PermanentError(f"image {spec.ref}: its source {source!r} is not on this engine") from None
        self.context.stats["write"] += 1

    def list_tags(self, spec: ImageSpec) -> list[str]:
        """The engine's tags of ``spec.ref``'s repository (one filtered image list); none is a PermanentError."""
        repo = _split(spec.ref)[0]
        with _engine().engine_errors(f"list tags of {repo}"):
            images = self.api.images(name=repo)
        tags = sorted({_split(ref)[1] for image in images for ref in image.get("RepoTags") or ()
                       if _split(ref)[0] == repo})
        if not tags:
            raise PermanentError(f"image {spec.ref}: this engine has no tag of repository {repo}")
        return tags

    def tag_details(self, spec: ImageSpec, tag: str) -> TagDetails:
        """The image ``tag`` of ``spec.ref``'s repository is on this engine: its id as digest, its ``Created``."""
        import docker.errors

        ref = f"{_split(spec.ref)[0]}:{tag}"
        with _engine().engine_errors(f"inspect {ref}"):
            try:
                image = self.api.inspect_image(ref)
            except docker.errors.NotFound:
                raise PermanentError(f"image {spec.ref}: this engine has no tag {ref}") from None
        return TagDetails(tag=tag, digest=image["Id"], created=_created(image.get("Created")))

    def build(self, spec: ImageSpec, labels: Mapping[str, str]) -> None:
        raise PermanentError(f"image {spec.ref}: the localtag driver tags images, it does not build them")

    def delete(self, live: LiveObject) -> None:
        """Images are shared caches: never deleted."""


def _split(ref: str) -> tuple[str, str]:
    """``repo:tag`` (or ``repo:tag@digest``) → (repo, tag); no tag is ``latest``."""
    repo, sep, tag = ref.partition("@")[0].rpartition(":")
    return (repo, tag) if sep and "/" not in tag else (ref.partition("@")[0], "latest")


def _created(text: object) -> datetime | None:
    """The engine's ``Created`` (RFC 3339 with nanoseconds) as an aware UTC datetime."""
    stamp = str(text or "")
    if not stamp.endswith("Z") or "T" not in stamp:
        return None
    whole, _, fraction = stamp[:-1].partition(".")
    try:
        return datetime.fromisoformat(f"{whole}.{(fraction + '000000')[:6]}+00:00").astimezone(timezone.utc)
    except ValueError:
        return None


def _source(spec: ImageSpec) -> str:
    source = dict(spec.options).get("from", "")
    if not source:  # validation requires it: only a spec built by hand gets here
        raise PermanentError(f"image {spec.ref}: the localtag driver needs options.from")
    return source


@hookimpl
def reconciler_register_drivers(registry) -> None:
    """Offer ``driver: localtag`` for images."""
    registry.add_registry_driver(NAME, LocalTagDriver)
