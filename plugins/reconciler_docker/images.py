"""Images through the engine: pull by reference, build with the engine's layer cache.

Pulls carry the registry's credentials (see :mod:`.credentials`) and turn the
engine's registry failures into distinct errors::

    PermanentError ── ImageNotFound, AuthenticationFailed
    TemporaryError ── RegistryUnreachable, RateLimited (retried by the core with backoff)

The engine reports registry trouble as a 404 or 500 APIError whose text comes
from the registry, or as an ``{"error": …}`` event in the pull stream; both go
through :func:`pull_error`. Messages name the reference and the registry,
never a secret.
"""
from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Iterable, Mapping

import docker.errors

from reconciler.sdk import (
    Content, DriverError, ImageSpec, LiveObject, PermanentError, RegistryDriver, TagDetails, TemporaryError,
    fresh_read, redact as redact_values,
)
from reconciler.sdk.docker import EngineDriver, engine_errors
from reconciler.sdk.labels import BUILD_CACHE, BUILD_HASH

if TYPE_CHECKING:
    from .credentials import Credential, CredentialStore
    from .layers import CacheSteps
    from .taglist import TagLister

# Credentials and the registry's manifest API are needed for a pull, a push or a followed tag only:
# they are imported then (a converged pass of pinned images never pays for them).

__all__ = ["AuthenticationFailed", "DockerRegistryDriver", "ImageNotFound", "LocalImages", "RateLimited",
           "RegistryUnreachable", "pull_error", "redact", "split_ref"]

log = logging.getLogger(__name__)
_STORE_KEY = "reconciler_docker.credentials"
_IMAGES_KEY = "reconciler_docker.images"  # fresh_read: the engine's image list, indexed
_TAGS_KEY = "reconciler_docker.tags"  # engine_shared (or the driver): the TagLister, its ETags, tokens and details
RATE_LIMIT_DELAY = 10.0  # the engine drops the registry's Retry-After: a hint, capped by the core
_PLURAL = {"push": "es"}
SHORT_SECRET = 4  # a secret shorter than this is still redacted, but may also blank ordinary text


class ImageNotFound(PermanentError):
    """The registry has no such repository, tag or digest."""


class AuthenticationFailed(PermanentError):
    """The registry refused the credentials, or asked for some and none were configured."""


class RegistryUnreachable(TemporaryError):
    """The registry did not answer (refused, timed out) or answered with a 5xx."""


class RateLimited(TemporaryError):
    """The registry asked us to slow down (429 / toomanyrequests)."""


_RATE = re.compile(r"toomanyrequests|too many requests|\b429\b|rate limit", re.I)
_AUTH = re.compile(r"unauthorized|no basic auth credentials|authentication required|\b401\b"
                   r"|incorrect username or password|denied: requested access", re.I)
_DENIED_OR_MISSING = re.compile(r"pull access denied|repository does not exist", re.I)
_NOT_FOUND = re.compile(r"manifest unknown|not found|name unknown|\b404\b", re.I)
_UNREACHABLE = re.compile(r"connection refused|dial tcp|i/o timeout|timeout|deadline exceeded|no such host"
                          r"|connection reset|\bEOF\b|unexpected HTTP status: 5\d\d|\b50[234]\b"
                          r"|no route to host|network is unreachable", re.I)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret value replaced by ``(secret)``.

    The process-wide redactor's rule (``reconciler.redact``), applied to the
    secrets of one image: a secret that contains another is replaced whole,
    empty values are skipped.
    """
    return redact_values(text, secrets)


def pull_error(ref: str, detail: str, status: int, credential: Credential | None,
               *, action: str = "pull") -> DriverError:
    """The error for a failed pull (or ``action="push"``) of ``ref``, from the engine's ``detail`` text and HTTP ``status``."""
    from .credentials import registry_host

    host = registry_host(ref)
    if credential is not None and credential.password:
        detail = detail.replace(credential.password, "***")  # never trust a message with a secret
    detail = detail.strip()
    if _RATE.search(detail):
        return RateLimited(f"{action} {ref}: registry {host} is rate limiting {action}{_PLURAL.get(action, 's')} ({detail})",
                           delay=RATE_LIMIT_DELAY)
    if _AUTH.search(detail):
        if credential is None:
            return AuthenticationFailed(
                f"{action} {ref}: authentication failed for registry {host}: it requires credentials and none "
                f"are configured for it (RECONCILER_REGISTRY_AUTH or docker's config.json) ({detail})")
        return AuthenticationFailed(f"{action} {ref}: authentication failed for registry {host} as user "
                                    f"{credential.username!r} (credentials from {credential.source}) ({detail})")
    if _DENIED_OR_MISSING.search(detail):
        return ImageNotFound(f"{action} {ref}: image not found on registry {host}, or access to it was denied "
                             f"(check the reference and the credentials) ({detail})")
    if status == 404 or _NOT_FOUND.search(detail):
        return ImageNotFound(f"{action} {ref}: image not found on registry {host} ({detail})")
    if _UNREACHABLE.search(detail):
        return RegistryUnreachable(f"{action} {ref}: registry {host} is unreachable ({detail})")
    if status >= 500:
        return TemporaryError(f"{action} {ref}: registry {host}: {detail}")
    return PermanentError(f"{action} {ref}: registry {host}: {detail}")


def _from_registry(ref: str, image: Mapping) -> bool:
    """Whether the local image under tag ``ref`` came from (or went to) its registry.

    Only those have an upstream to follow: a digest reference never moves, and
    an image built or loaded here (a build-hash label, or no repository digest
    for the tag's repository, like a locally made base image) was never pulled.
    """
    if "@" in ref or BUILD_HASH in (image.get("Labels") or {}):
        return False
    repo = split_ref(ref)[0]
    return any(d.partition("@")[0] == repo for d in image.get("RepoDigests") or ())


def _local_ref(ref: str) -> str:
    """How the engine lists the image ``ref`` names: ``name:tag@digest`` (what ``pin: digest`` writes) as
    ``name@digest``, since a pull by digest leaves the image under its repository digest only."""
    name, at, digest = ref.partition("@")
    if not at:
        return ref
    repo, sep, tag = name.rpartition(":")
    return f"{repo}@{digest}" if sep and "/" not in tag else ref


def split_ref(ref: str) -> tuple[str, str | None]:
    """``repo:tag`` → (repo, tag); a digest reference keeps its digest in the repo part."""
    if "@" in ref:
        return ref, None
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return repo, tag


class LocalImages:
    """The engine's image list, indexed once: each image by its tags and digests, each repository's digests by image.

    A pass then costs O(its images), not O(the engine's), when a daemon's passes share one list.
    """

    def __init__(self, images: Iterable[dict]) -> None:
        self.by_ref: dict[str, dict] = {}
        self.digests: dict[str, dict[str, str]] = {}  # repository → local image id → digest
        for image in images:
            for ref in (image.get("RepoTags") or []) + (image.get("RepoDigests") or []):
                self.by_ref[ref] = image
            for digest in image.get("RepoDigests") or ():
                repo, _, value = digest.partition("@")
                self.digests.setdefault(repo, {})[image["Id"]] = value


class DockerRegistryDriver(EngineDriver, RegistryDriver):
    """Pulls and builds through the engine; one instance per run."""

    #: Trusted, with one gap: the daemon follows no image events, so a tag pulled or removed by hand on the engine
    #: is found by the next resync that looks (``trust.TRUSTED_IN_A_ROW`` resyncs at most). A tag that follows its
    #: registry (``track: tag``) never lets a resync trust events: the registry tells none.
    changes_reported = True

    def observe(self, stack: str, wanted: Mapping[str, ImageSpec]) -> list[LiveObject]:
        """One list of all local images, matched against the wanted tags and digests.

        ``details`` carries the image's ``repo_digests`` and, for its repository,
        ``digests_by_id`` (local image id → digest, so status can name what an
        older container runs). Tags that follow upstream (``ImageSpec.tracks_tag``)
        are asked where they point with a manifest HEAD: ``content`` says whether
        the local image is still that digest. A failed check never fails the
        observe: ``content`` stays None and ``details["upstream_error"]`` says why.
        """
        with engine_errors("list images"):
            if self.context.engine_shared is None:
                images = LocalImages(self.api.images())
            else:  # a daemon: one list for every stack's pass of this moment
                images = fresh_read(self.context, _IMAGES_KEY, lambda: LocalImages(self.api.images()))
        found = {ref: images.by_ref[local] for ref in wanted if (local := _local_ref(ref)) in images.by_ref}
        upstream = self._upstream(ref for ref, image in found.items()
                                  if _tracks(wanted, ref) and _from_registry(ref, image))
        out = []
        for ref, image in found.items():
            labels = image.get("Labels") or {}
            repo = split_ref(ref)[0].partition("@")[0]
            details: dict[str, object] = {
                "repo_digests": tuple(image.get("RepoDigests") or ()),
                "digests_by_id": dict(images.digests.get(repo, {})),
            }
            content = None
            if isinstance(upstream.get(ref), Exception):
                details["upstream_error"] = str(upstream[ref])
            elif ref in upstream:
                local = [d.partition("@")[2] for d in image.get("RepoDigests") or () if d.partition("@")[0] == repo]
                source = str(upstream[ref])
                content = Content(changed=source not in local, local=local[0] if local else "", source=source)
            out.append(self.live(ref, image["Id"], labels, image_id=image["Id"], details=details, content=content))
        return out

    def _upstream(self, refs: Iterable[str]) -> dict[str, str | Exception]:
        """Where each tag points now at its registry (concurrently, one HEAD per tag)."""
        refs = sorted(refs)
        if not refs:
            return {}
        from .distribution import ManifestChecker

        answers = ManifestChecker(self.credentials).digests(refs)
        for ref, answer in answers.items():
            if isinstance(answer, Exception):
                log.warning("cannot tell where %s points upstream: %s", ref, answer)
        return answers

    def list_tags(self, spec: ImageSpec) -> list[str]:
        """Every tag of ``spec.ref``'s repository at its registry (``taglist``: conditional, every page)."""
        return self._tags().list_tags(spec.ref, count=self._count_read)

    def tag_details(self, spec: ImageSpec, tag: str) -> TagDetails:
        """What ``tag`` of ``spec.ref``'s repository names now at its registry (manifest digest, ``created``)."""
        return self._tags().tag_details(spec.ref, tag, count=self._count_read)

    def _count_read(self) -> None:
        self.context.stats["read"] += 1

    def _tags(self) -> TagLister:
        """The tag lister: the daemon's for this engine (its ETags and tokens outlive a pass), else this driver's."""
        from .taglist import TagLister

        home = self.context.engine_shared if self.context.engine_shared is not None else self.__dict__
        lister = home.get(_TAGS_KEY)
        return lister if lister is not None else home.setdefault(_TAGS_KEY, TagLister(self.credentials))

    @property
    def credentials(self) -> CredentialStore:
        """One store per run, shared by this plugin's drivers, so each registry is looked up once."""
        from .credentials import CredentialStore

        store = self.context.shared.get(_STORE_KEY)
        return store if store is not None else self.context.shared.setdefault(_STORE_KEY, CredentialStore())

    def _credential(self, action: str, ref: str):
        """The credential for ``ref``'s registry (None without one); a broken setup names the action."""
        from .credentials import CredentialError

        try:
            return self.credentials.for_ref(ref)
        except CredentialError as exc:
            raise CredentialError(f"{action} {ref}: no usable credentials: {exc}") from None

    def pull(self, spec: ImageSpec) -> None:
        """Pull ``spec.ref`` with its registry's credentials, if any; failures become distinct errors."""
        self._transfer("pull", spec)

    def _transfer(self, action: str, spec: ImageSpec, secrets: Iterable[str] = ()) -> None:
        """The client's ``action`` (``pull`` or ``push``) of ``spec.ref``, streaming its status lines as progress.

        Both carry the credentials of the reference's registry and turn the
        engine's registry failures, in the stream or as an APIError, into
        ``pull_error``'s distinct errors, named by ``action``.
        """
        credential = self._credential(action, spec.ref)
        auth = credential.auth_config() if credential else None
        repo, tag = split_ref(spec.ref)
        statuses = _StatusLines()
        with engine_errors(f"{action} {spec.ref}"):
            try:
                for event in getattr(self.api, action)(repo, tag=tag, stream=True, decode=True, auth_config=auth):
                    if "error" in event:
                        raise pull_error(spec.ref, str(event["error"]), 0, credential, action=action)
                    self._report(spec.ref, statuses.line(event), secrets)
            except docker.errors.APIError as exc:
                raise pull_error(spec.ref, str(exc.explanation or exc), exc.status_code or 0, credential,
                                 action=action) from None

    def _report(self, name: str, line: str | None, secrets: Iterable[str] = ()) -> None:
        """Hand one progress line (redacted) to the context's ``progress`` callback, if any."""
        if line and self.context.progress is not None:
            self.context.progress(name, redact(line, secrets))

    def build(self, spec: ImageSpec, labels: Mapping[str, str]) -> None:
        """Build ``spec.ref`` with the engine's layer cache, streaming each output line as progress.

        Secret build args reach the engine, but their values are replaced by
        ``(secret)`` in every progress line and in any error raised from here.
        """
        secrets = spec.secret_values
        short = sorted(k for k, v in spec.build_args if k in spec.secret_args and 0 < len(v) < SHORT_SECRET)
        if short:
            log.warning("build %s: secret build args %s are shorter than %d characters; they are redacted, "
                        "which may also blank unrelated text in the output", spec.ref, ", ".join(short), SHORT_SECRET)
        try:
            self._build(spec, labels, secrets)
        except DriverError as exc:
            exc.args = tuple(redact(str(a), secrets) for a in exc.args) or exc.args
            exc.__cause__ = None  # the engine's exception may quote the build args
            raise

    def _build(self, spec: ImageSpec, labels: Mapping[str, str], secrets: tuple[str, ...]) -> None:
        """The user's build, unlabelled and shown; then our labels, silently (see ``layers``)."""
        from .layers import CacheSteps, label_context

        cache = CacheSteps()
        with engine_errors(f"build {spec.ref}"):
            stream = self.api.build(
                path=spec.build_context,
                dockerfile=spec.dockerfile,
                buildargs=dict(spec.build_args) or None,
                target=spec.target,
                rm=True,
                forcerm=True,  # a failed step's container would keep the build args, secrets included
                decode=True,
            )
            built = self._follow(spec, stream, secrets, cache)
            labelled = self.api.build(fileobj=label_context(built), custom_context=True, tag=spec.ref,
                                      labels={**labels, BUILD_CACHE: cache.label}, rm=True, forcerm=True,
                                      decode=True)
            self._follow(spec, labelled, secrets, None)

    def _follow(self, spec: ImageSpec, stream: Iterable[Mapping], secrets: tuple[str, ...],
                cache: CacheSteps | None) -> str:
        """Drain a build's stream (shown as progress when ``cache`` reads it); the id of the image it made."""
        output, image_id = [], ""
        statuses = _StatusLines()  # a FROM of a missing base image pulls it
        for event in stream:
            if "stream" in event:
                output.append(event["stream"])
                for line in str(event["stream"]).splitlines():
                    if cache is not None:
                        cache.line(line.strip())
                        self._report(spec.ref, line.strip(), secrets)
            elif "status" in event and cache is not None:
                self._report(spec.ref, statuses.line(event), secrets)
            elif "aux" in event:
                image_id = str((event["aux"] or {}).get("ID") or image_id)
            if "error" in event:
                tail = redact("".join(output[-5:]).strip(), secrets)
                error = redact(str(event["error"]).strip(), secrets)
                raise PermanentError(f"build {spec.ref}: {error}" + (f"\n{tail}" if tail else ""))
        if not image_id:
            raise PermanentError(f"build {spec.ref}: the engine named no image")
        return image_id

    def layers(self, ref: str) -> list[dict] | None:
        """The image's layers from the engine's history, newest first (``layers.history_items``).

        One ``history`` call: which steps the last build reused is read from the
        history too (the step that set ``BUILD_CACHE``).
        """
        from .layers import history_items

        with engine_errors(f"history {ref}"):
            try:
                return history_items(self.api.history(ref))
            except docker.errors.NotFound:
                return None

    def equivalent(self, ref: str, image_id: str) -> str:
        """The id of ``ref`` when it has ``image_id``'s layers and config, labels aside (see ``same_content``)."""
        with engine_errors(f"inspect images {ref} and {image_id[:19]}"):
            try:
                built, other = self.api.inspect_image(ref), self.api.inspect_image(image_id)
            except docker.errors.NotFound:
                return ""
        return built["Id"] if same_content(built, other) else ""

    def push(self, spec: ImageSpec) -> None:
        """Push ``spec.ref`` with its registry's credentials (as for pulls); failures become distinct errors."""
        self._transfer("push", spec, spec.secret_values)


class _StatusLines:
    """Turns the engine's pull/push status events into progress lines worth showing.

    The engine repeats a layer's status with every progress tick; a line is
    shown only when a layer's status changes, or for a status without a layer
    (the final ``Digest: …`` / ``Status: …`` lines).
    """

    def __init__(self) -> None:
        self._last: dict[str, str] = {}

    def line(self, event: Mapping) -> str | None:
        status = str(event.get("status") or "").strip()
        if not status:
            return None
        layer = str(event.get("id") or "")
        if not layer:
            return status
        if self._last.get(layer) == status:
            return None
        self._last[layer] = status
        return f"{layer}: {status}"


#: Image config keys that say nothing about what a container runs: labels (ours on a build, none on
#: Compose's), the parent image and the builder's own bookkeeping.
_BOOKKEEPING = frozenset({"Labels", "Image", "Hostname", "Domainname"})


def same_content(one: Mapping, other: Mapping) -> bool:
    """Whether two ``inspect_image`` answers hold the same file system layers and run the same way.

    The same Dockerfile and context built twice with the engine's layer cache
    gives the same layers (the cached ones); the build the reconciler makes
    then differs only in its labels, which add no layer.
    """
    def config(image: Mapping) -> dict:
        return {k: v for k, v in (image.get("Config") or {}).items() if k not in _BOOKKEEPING}

    layers = (one.get("RootFS") or {}).get("Layers")
    return bool(layers) and layers == (other.get("RootFS") or {}).get("Layers") and config(one) == config(other)


def _tracks(wanted: Mapping[str, ImageSpec], ref: str) -> bool:
    """Whether the image wanted under ``ref`` follows its tag upstream (``ImageSpec.tracks_tag``)."""
    return wanted[ref].tracks_tag
