"""Images from files, for hosts that cannot reach a registry.

The ``archive`` registry driver makes ``ref`` present by loading the archive a
spec names (``images.<key>.archive``) into the engine, then tagging the loaded
image ``ref``. Observing is the docker driver's (one list of local images),
plus the registry contract's ``content``: the image id inside the archive (read
from its manifest by :mod:`.imagearchive`, again only when the file's size or
modification time moved) against the local image's id, so a converged stack
never sends the archive to the engine. The core has no special case for this
driver: it never opens an archive, and acts on ``content`` alone.

Image automation lists the tags the archive gives ``ref``'s repository
(``RepoTags`` of a docker save, the ref-name annotations of an OCI index;
a bare OCI name such as ``1.4.0`` is a tag of any repository) and their
details. An archive holds no manifest digest as a registry serves it: the
image id (``sha256:`` of its config) is all it has, so ``TagDetails.digest``
is that, and ``created`` the config's.

Engines before 25 (this project tests against 20.10) load only the
``docker save`` layout (``manifest.json``); an OCI image layout without it is
refused with a PermanentError rather than half-loaded. Errors::

    PermanentError ── ArchiveUnreadable (missing, corrupt, wrong layout, load refused)

An unreadable archive fails ``observe`` when its image is present (nothing
can say whether it is current) and the load when it is not.
"""
from __future__ import annotations

import tarfile
import tempfile
import threading
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, Callable, Mapping, TypeVar

import docker.errors

from reconciler.sdk import Content, ImageSpec, LiveObject, PermanentError, TagDetails
from reconciler.sdk.docker import engine_errors

from .imagearchive import ArchiveFormat, ArchivedTag, archive_format, archive_image_id, archive_tags
from .images import DockerRegistryDriver, split_ref

__all__ = ["ArchiveRegistryDriver", "ArchiveUnreadable"]


T = TypeVar("T")


class ArchiveUnreadable(PermanentError):
    """The archive is missing, corrupt, of a layout this engine cannot load, or the load failed."""


class ArchiveRegistryDriver(DockerRegistryDriver):
    """Loads ``docker save`` archives through the engine; observes like the docker driver."""

    def observe(self, stack: str, wanted: Mapping[str, ImageSpec]) -> list[LiveObject]:
        """The wanted images, from one list call; none (and no call) when no spec uses this driver."""
        # Every registered driver is observed each pass; images are never pruned, so with
        # nothing wanted there is nothing to report and the list call is saved.
        if not wanted:
            return []
        out = []
        for live in super().observe(stack, wanted):
            spec = wanted.get(live.name)
            if spec is not None and spec.archive:
                source = self._archive_id(spec)
                live = replace(live, content=Content(changed=live.image_id != source, local=live.image_id,
                                                     source=source))
            out.append(live)
        return out

    def _archive_id(self, spec: ImageSpec) -> str:
        """The id of the image ``spec.ref`` inside ``spec.archive`` (raises ArchiveUnreadable)."""
        try:
            return _ARCHIVE_IDS.get(Path(spec.archive), spec.ref, archive_image_id)
        except (ValueError, OSError) as exc:
            raise ArchiveUnreadable(f"image {spec.ref}: {exc}") from None

    def list_tags(self, spec: ImageSpec) -> list[str]:
        """The tags ``spec.archive`` gives ``spec.ref``'s repository, in the archive's order (no engine call)."""
        return list(self._archived(spec))

    def tag_details(self, spec: ImageSpec, tag: str) -> TagDetails:
        """``tag`` of ``spec.ref``'s repository in the archive: the image id as its digest, the config's ``created``."""
        from .taglist import parse_created

        found = self._archived(spec).get(tag)
        if found is None:
            raise ArchiveUnreadable(f"image {spec.ref}: {spec.archive} holds no tag {tag} of its repository")
        return TagDetails(tag=tag, digest=found.config, created=parse_created(found.created))

    def _archived(self, spec: ImageSpec) -> dict[str, ArchivedTag]:
        """Tag → what the archive tags with it, for ``spec.ref``'s repository; none at all is an error."""
        if not spec.archive:
            raise ArchiveUnreadable(f"list tags of {spec.ref}: the archive driver needs images.{spec.key}.archive")
        try:
            named = _ARCHIVE_IDS.get(Path(spec.archive), "<tags>", lambda path, _: archive_tags(path))
        except (ValueError, OSError) as exc:
            raise ArchiveUnreadable(f"list tags of {spec.ref}: {exc}") from None
        repo = _familiar(split_ref(spec.ref.partition("@")[0])[0])  # a pinned ref names its tag's repository
        out: dict[str, ArchivedTag] = {}
        for item in named:
            if ":" not in item.name and "/" not in item.name:  # an OCI ref name that is a tag alone
                out.setdefault(item.name, item)
                continue
            name_repo, tag = split_ref(item.name)
            if tag is not None and _familiar(name_repo) == repo:
                out.setdefault(tag, item)
        if not out:
            raise ArchiveUnreadable(f"list tags of {spec.ref}: {spec.archive} holds no tag of repository {repo}")
        return out

    def pull(self, spec: ImageSpec) -> None:
        """Load ``spec.archive`` and tag the image it holds ``spec.ref``."""
        if not spec.archive:
            raise ArchiveUnreadable(f"load {spec.ref}: the archive driver needs images.{spec.key}.archive")
        path = Path(spec.archive)
        try:
            layout = archive_format(path)
        except (ValueError, OSError) as exc:
            raise ArchiveUnreadable(f"load {spec.ref}: {exc}") from None
        if layout == ArchiveFormat.OCI_LAYOUT:
            raise ArchiveUnreadable(
                f"load {spec.ref}: {path} is an OCI image layout without manifest.json; this engine's "
                f"image load accepts only the docker save layout (engines 25+ load OCI layouts): "
                f"convert it, e.g. skopeo copy oci:{path} docker-archive:app.tar")
        image_id = self._archive_id(spec)
        with _opened(path) as data:
            self._load(spec, path, data)
        self._tag(spec, image_id)

    def build(self, spec: ImageSpec, labels: Mapping[str, str]) -> None:
        raise ArchiveUnreadable(f"build {spec.ref}: the archive driver loads images, it does not build them")

    def _load(self, spec: ImageSpec, path: Path, data: IO[bytes]) -> None:
        with engine_errors(f"load {spec.ref} from {path}"):
            try:
                for event in self.api.load_image(data):
                    if "error" in event:
                        raise ArchiveUnreadable(f"load {spec.ref}: the engine refused {path}: "
                                                f"{str(event['error']).strip()}")
            except docker.errors.APIError as exc:
                # The layout was checked above: a refusal now is the archive's content, not the engine's mood.
                raise ArchiveUnreadable(f"load {spec.ref}: the engine refused {path}: "
                                        f"{exc.explanation or exc}") from None

    def _tag(self, spec: ImageSpec, image_id: str) -> None:
        # The archive may tag the image differently (or not at all): ref is what containers use.
        repo, tag = split_ref(spec.ref)
        with engine_errors(f"tag {image_id[:19]} as {spec.ref}"):
            try:
                self.api.tag(image_id, repo, tag, force=True)
            except docker.errors.NotFound:
                raise ArchiveUnreadable(f"load {spec.ref}: {spec.archive} did not hold image "
                                        f"{image_id} (was it changed while loading?)") from None


def _familiar(repo: str) -> str:
    """A repository as docker shows it: ``docker.io/library/app`` and ``library/app`` are ``app``."""
    return repo.removeprefix("docker.io/").removeprefix("library/")


class _ArchiveIds:
    """What was read from archives (ids, tags), read again only when a file's size or modification time moved.

    A no-op apply of a long-running loop then costs a few ``stat`` calls, not
    a read of each archive's manifest (a gzip tarball is read to its end).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[tuple[Path, str], tuple[tuple, Any]] = {}

    def get(self, path: Path, ref: str, read: Callable[[Path, str], T]) -> T:
        """``read(path, ref)``, or what it gave last for this archive as it is now."""
        stamp = _stamp(path)
        with self._lock:
            known = self._known.get((path, ref))
        if known is not None and known[0] == stamp:
            return known[1]
        answer = read(path, ref)
        with self._lock:
            self._known[(path, ref)] = (stamp, answer)
        return answer


def _stamp(path: Path) -> tuple:
    """Size and modification time of the archive (of a layout: of its index files too)."""
    files = [path, path / "index.json", path / "manifest.json"] if path.is_dir() else [path]
    stamps = []
    for file in files:
        try:
            stat = file.stat()
        except FileNotFoundError:
            stamps.append(None)
        else:
            stamps.append((stat.st_size, stat.st_mtime_ns, stat.st_ino))
    return tuple(stamps)


_ARCHIVE_IDS = _ArchiveIds()


class _opened:
    """The bytes to send: the tarball itself, or a tar of a layout directory (spooled to disk)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes]:
        try:
            if self.path.is_dir():
                self.handle = tempfile.TemporaryFile()
                with tarfile.open(fileobj=self.handle, mode="w") as tar:
                    for child in sorted(self.path.iterdir()):
                        tar.add(child, arcname=child.name)
                self.handle.seek(0)
            else:
                self.handle = self.path.open("rb")  # the engine detects gzip itself
        except OSError as exc:
            raise ArchiveUnreadable(f"cannot read image archive {self.path}: {exc}") from None
        return self.handle

    def __exit__(self, *exc_info) -> None:
        if self.handle is not None:
            self.handle.close()
