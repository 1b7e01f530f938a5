"""Images through the engine: pull by reference, build with the engine's layer cache."""
from __future__ import annotations

from typing import Mapping

from reconciler.drivers import DriverContext, RegistryDriver
from reconciler.errors import PermanentError
from reconciler.model import BUILD_HASH_LABEL, STACK_LABEL, ImageSpec, Kind, LiveObject

from .engine import api_client, engine_errors



def split_ref(ref: str) -> tuple[str, str | None]:
    """``repo:tag`` → (repo, tag); a digest reference keeps its digest in the repo part."""
    if "@" in ref:
        return ref, None
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return repo, tag


class DockerRegistryDriver(RegistryDriver):
    def __init__(self, context: DriverContext) -> None:
        self.context = context

    @property
    def api(self):
        return api_client(self.context)

    def observe(self, stack: str, wanted: Mapping[str, str]) -> list[LiveObject]:
        """One list of all local images, matched against the wanted tags and digests."""
        with engine_errors("list images"):
            images = self.api.images()
        out = []
        for image in images:
            labels = image.get("Labels") or {}
            for ref in (image.get("RepoTags") or []) + (image.get("RepoDigests") or []):
                if ref in wanted:
                    out.append(LiveObject(kind=Kind.IMAGE, name=ref, id=image["Id"], image_id=image["Id"],
                                          labels=labels, owned=labels.get(STACK_LABEL) == stack))
        return out

    def pull(self, spec: ImageSpec) -> None:
        repo, tag = split_ref(spec.ref)
        with engine_errors(f"pull {spec.ref}"):
            for event in self.api.pull(repo, tag=tag, stream=True, decode=True):
                if "error" in event:
                    raise PermanentError(f"pull {spec.ref}: {event['error']}")

    def build(self, spec: ImageSpec, labels: Mapping[str, str]) -> None:
        all_labels = {**labels, BUILD_HASH_LABEL: spec.build_hash}
        with engine_errors(f"build {spec.ref}"):
            stream = self.api.build(
                path=spec.build_context,
                dockerfile=spec.dockerfile,
                tag=spec.ref,
                buildargs=dict(spec.build_args) or None,
                target=spec.target,
                labels=all_labels,
                rm=True,
                decode=True,
            )
            log = []
            for event in stream:
                if "stream" in event:
                    log.append(event["stream"])
                if "error" in event:
                    tail = "".join(log[-5:]).strip()
                    raise PermanentError(f"build {spec.ref}: {event['error'].strip()}" + (f"\n{tail}" if tail else ""))
