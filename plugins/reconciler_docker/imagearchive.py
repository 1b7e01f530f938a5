"""The image id inside an image archive, read without an engine.

An air-gapped host gets its images as files: a ``docker save`` tarball
(optionally gzip-compressed) or an OCI image layout directory. Deciding
whether such an image must be loaded needs no stored state: the image id is
the digest of the image's config, which the archive names, and the engine
reports the same id for the image it holds. This module only reads, for the
archive registry driver (:mod:`.archive`), which reports the id as its
``LiveObject.content`` and loads the archive; the core never opens an archive.
For image automation it also lists what an archive tags (``archive_tags``):
each name with its image's config digest and ``created``.

Formats understood:

- ``docker save``: ``manifest.json`` lists images; each ``Config`` is
  ``<hex>.json`` (engines before 25) or ``blobs/sha256/<hex>`` (25 and later).
- OCI image layout: ``index.json`` → a manifest descriptor (an index is
  followed to its ``linux/amd64``-or-only manifest) → the manifest blob →
  ``config.digest``.
"""
from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["ArchiveFormat", "ArchivedTag", "archive_format", "archive_image_id", "archive_tags"]

_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json")
_REF_NAME = ("io.containerd.image.name", "org.opencontainers.image.ref.name")
_MAX_JSON = 4 * 1024 * 1024  # manifests and indexes are small; refuse to parse a huge one


class ArchiveFormat:
    """The two layouts an archive may hold (a ``docker save`` of engine 25+ holds both)."""

    DOCKER_SAVE = "docker-save"
    OCI_LAYOUT = "oci-layout"


def archive_image_id(path: Path, ref: str) -> str:
    """The id (``sha256:<hex>``) of the image ``ref`` in the archive at ``path``.

    Raises ``ValueError`` naming the file when it is not a readable image
    archive, and ``OSError`` when it cannot be read at all.
    """
    read = _reader(path)
    try:
        if read("manifest.json") is not None:
            return _docker_save_id(read, ref)
        if read("index.json") is not None:
            return _oci_id(read, ref)
    except (KeyError, TypeError, IndexError, json.JSONDecodeError) as exc:
        raise ValueError(f"image archive {path} is corrupt: {exc.__class__.__name__}: {exc}") from None
    raise ValueError(f"{path} is not an image archive: it holds neither manifest.json (docker save) "
                     f"nor index.json (OCI image layout)")


@dataclass(frozen=True)
class ArchivedTag:
    """One name an archive gives an image: as the archive writes it, the config digest (the image id), ``created``."""

    name: str
    config: str
    created: str | None


def archive_tags(path: Path) -> list[ArchivedTag]:
    """Every name the archive at ``path`` tags an image with (``RepoTags``; an OCI index's ref-name annotations).

    Reads only the small JSON members. Raises ``ValueError`` / ``OSError`` as ``archive_image_id``.
    """
    read = _reader(path)
    try:
        if read("manifest.json") is not None:
            entries = json.loads(read("manifest.json") or b"[]")
            return [ArchivedTag(tag, _sha256(str(e["Config"]).rsplit("/", 1)[-1].removesuffix(".json")),
                                _created(read, str(e["Config"])))
                    for e in entries for tag in e.get("RepoTags") or ()]
        if read("index.json") is not None:
            return _oci_tags(read)
    except (KeyError, TypeError, IndexError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"image archive {path} is corrupt: {exc.__class__.__name__}: {exc}") from None
    raise ValueError(f"{path} is not an image archive: it holds neither manifest.json nor index.json")


def _oci_tags(read: Callable[[str], bytes | None]) -> list[ArchivedTag]:
    out = []
    for descriptor in json.loads(read("index.json") or b"{}").get("manifests") or []:
        names = {(descriptor.get("annotations") or {}).get(key) for key in _REF_NAME} - {None, ""}
        if not names:
            continue
        for _ in range(4):  # follow a nested index to its platform's manifest, as _oci_id does
            blob = _blob(read, descriptor["digest"])
            if descriptor.get("mediaType") not in _INDEX_TYPES and "manifests" not in blob:
                break
            descriptor = _pick(blob.get("manifests") or [], "")
        config = str(blob["config"]["digest"])
        out += [ArchivedTag(str(name), _sha256(config.removeprefix("sha256:")),
                            _created(read, "blobs/" + config.replace(":", "/", 1))) for name in sorted(names)]
    return out


def _created(read: Callable[[str], bytes | None], member: str) -> str | None:
    data = read(member)
    config = json.loads(data) if data is not None else {}
    return str(config["created"]) if isinstance(config, dict) and config.get("created") else None


def archive_format(path: Path) -> str:
    """Which layout the archive holds, preferring ``docker save`` when it holds both."""
    read = _reader(path)
    if read("manifest.json") is not None:
        return ArchiveFormat.DOCKER_SAVE
    if read("index.json") is not None:
        return ArchiveFormat.OCI_LAYOUT
    raise ValueError(f"{path} is not an image archive: it holds neither manifest.json nor index.json")


def _reader(path: Path) -> Callable[[str], bytes | None]:
    """A function reading one member (None when absent) of a directory or a tarball."""
    if not path.exists():
        raise ValueError(f"image archive {path} does not exist")
    if path.is_dir():
        def read_dir(name: str) -> bytes | None:
            member = path / name
            return _bounded(member.read_bytes(), path, name) if member.is_file() else None
        return read_dir
    try:
        members = _tar_members(path)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ValueError(f"image archive {path} is not a readable tar archive: {exc}") from None

    def read_tar(name: str) -> bytes | None:
        return members.get(name)
    return read_tar


def _tar_members(path: Path) -> dict[str, bytes]:
    # Only the JSON members are kept: layers are skipped (seeked over in a plain tar).
    out: dict[str, bytes] = {}
    with tarfile.open(path, mode="r:*") as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            if not member.isfile() or member.size > _MAX_JSON:
                continue
            if name in ("manifest.json", "index.json") or name.startswith("blobs/") or name.endswith(".json"):
                handle = tar.extractfile(member)
                if handle is not None:
                    out[name] = handle.read()
    return out


def _bounded(data: bytes, path: Path, name: str) -> bytes:
    if len(data) > _MAX_JSON:
        raise ValueError(f"image archive {path}: {name} is larger than {_MAX_JSON} bytes")
    return data


def _docker_save_id(read: Callable[[str], bytes | None], ref: str) -> str:
    entries = json.loads(read("manifest.json") or b"[]")
    if not isinstance(entries, list) or not entries:
        raise ValueError("manifest.json lists no image")
    chosen = [e for e in entries if ref in (e.get("RepoTags") or [])]
    if not chosen and len(entries) == 1:
        chosen = entries
    if len(chosen) != 1:
        tags = sorted(t for e in entries for t in e.get("RepoTags") or [])
        raise ValueError(f"the archive holds {len(entries)} images and none is tagged {ref} "
                         f"(tags: {', '.join(tags) or 'none'})")
    config = str(chosen[0]["Config"])
    digest = config.rsplit("/", 1)[-1].removesuffix(".json")
    return _sha256(digest)


def _oci_id(read: Callable[[str], bytes | None], ref: str) -> str:
    index = json.loads(read("index.json") or b"{}")
    descriptor = _pick(index.get("manifests") or [], ref)
    for _ in range(4):  # an index may nest an index; never loop on a malformed one
        blob = _blob(read, descriptor["digest"])
        if descriptor.get("mediaType") in _INDEX_TYPES or "manifests" in blob:
            descriptor = _pick(blob.get("manifests") or [], ref)
            continue
        return _sha256(str(blob["config"]["digest"]).removeprefix("sha256:"))
    raise ValueError("index.json nests indexes too deeply")


def _blob(read: Callable[[str], bytes | None], digest: str) -> dict:
    algorithm, _, hexpart = str(digest).partition(":")
    data = read(f"blobs/{algorithm}/{hexpart}")
    if data is None:
        raise ValueError(f"blob {digest} is missing from the layout")
    return json.loads(data)


def _pick(descriptors: list, ref: str) -> dict:
    """The descriptor for ``ref`` (by annotation), else this host's platform, else the only one."""
    if not descriptors:
        raise ValueError("index lists no manifest")
    named = [d for d in descriptors if ref in {(d.get("annotations") or {}).get(k) for k in _REF_NAME}]
    if len(named) == 1:
        return named[0]
    import platform  # only when an archive is read: a pass with none never pays for it

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    native = [d for d in descriptors
              if (d.get("platform") or {}).get("os") == "linux" and (d.get("platform") or {}).get("architecture") == arch]
    if native:
        return native[0]
    if len(descriptors) == 1:
        return descriptors[0]
    raise ValueError(f"index lists {len(descriptors)} manifests and none is named {ref} or is for linux/{arch}")


def _sha256(hexpart: str) -> str:
    if len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise ValueError(f"config digest {hexpart!r} is not a sha256 hex digest")
    return f"sha256:{hexpart}"
