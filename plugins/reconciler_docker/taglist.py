"""Which tags a repository has at its registry, and what one names: the docker driver's tag listing.

Why a module of its own: image automation picks the newest allowed tag of an
image, so it must ask the registry which tags exist (``GET
/v2/<name>/tags/list``, every ``Link: <…>; rel="next"`` page) and, for a
cool-down or a digest pin, what a tag names now (its manifest, and its image
config's ``created``). Asked every interval for every automated image, so:

- each page is asked conditionally: its ``ETag`` and its answer are kept, and
  ``If-None-Match`` sent; a ``304`` answers from what was kept (a registry that
  sends no ETag costs one 200 per page instead);
- details are kept by manifest digest (what a digest names never changes):
  a known tag costs one manifest GET;
- auth is ``registryhttp``'s, the same as the manifest HEAD's, with tokens for
  ``repository:<name>:pull`` reused until they expire.

A ``TagLister`` lives as long as what keeps it: the daemon keeps one per
engine (``DriverContext.engine_shared``), so its ETags and tokens outlive a pass.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Callable

from reconciler.sdk import TagDetails

from .credentials import CredentialStore, registry_host
from .registryhttp import RegistryClient, RegistryRefused, repository_path

__all__ = ["PAGE_SIZE", "TagListFailed", "TagLister", "parse_created"]

PAGE_SIZE = 1000
_MAX_PAGES = 1000  # a registry that keeps sending "next" is not followed forever
_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json")
_NEXT = re.compile(r'<([^>]*)>\s*;[^,]*rel="?next"?', re.I)
_GO_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


class TagListFailed(RegistryRefused):
    """The registry would not list a repository's tags or say what one names (not found, denied, bad answer)."""


@dataclass(frozen=True)
class _Page:
    etag: str
    tags: tuple[str, ...]
    next: str | None


def parse_created(text: object) -> datetime | None:
    """An image config's ``created`` (Go's RFC 3339, nanoseconds) as an aware UTC datetime; None when absent or zero."""
    match = _GO_TIME.match(str(text or "").strip())
    if not match:
        return None
    fraction = (match.group(2) or "")[:7]  # Python keeps microseconds
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    try:
        when = datetime.fromisoformat(match.group(1) + fraction + zone).astimezone(timezone.utc)
    except ValueError:
        return None
    return None if when.year <= 1 else when  # Go's zero time: the builder did not say


class TagLister(RegistryClient):
    """Lists a repository's tags and reads what a tag names, remembering what lets the next ask be cheap."""

    refused = TagListFailed

    def __init__(self, credentials: CredentialStore | None = None, *, page_size: int = PAGE_SIZE,
                 timeout: float = 10.0, connect: Callable[..., object] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(credentials, timeout=timeout, connect=connect, clock=clock)
        self.page_size = page_size
        self._pages: dict[tuple[str, str], _Page] = {}  # (host, page path) → what it answered last
        self._details: dict[tuple[str, str, str], TagDetails] = {}  # (host, name, digest) → details
        self._memo = threading.Lock()

    def list_tags(self, ref: str, *, count: Callable[[], None] | None = None) -> list[str]:
        """Every tag of ``ref``'s repository, in the registry's order, following every page."""
        host, name, _ = repository_path(ref)
        action = f"list tags of {ref}"
        path: str | None = f"/v2/{name}/tags/list?n={self.page_size}"
        tags: list[str] = []
        seen: set[str] = set()
        while path is not None:
            if path in seen or len(seen) >= _MAX_PAGES:
                raise TagListFailed(f"{action}: registry {host} sent pages without end")
            seen.add(path)
            page = self._page(ref, host, name, path, action, count)
            tags.extend(page.tags)
            path = page.next
        return tags

    def _page(self, ref: str, host: str, name: str, path: str, action: str,
              count: Callable[[], None] | None) -> _Page:
        with self._memo:
            kept = self._pages.get((host, path))
        extra = {"If-None-Match": kept.etag} if kept is not None else {}
        status, headers, body = self.fetch("GET", ref, path, scopes=(f"repository:{name}:pull",), action=action,
                                           headers=extra, count=count)
        if status == 304 and kept is not None:
            return kept
        if status != 200:
            raise self.error(status, action, host, self.credentials.for_host(registry_host(ref)), what="tags")
        try:
            answer = json.loads(body)
            tags = tuple(str(tag) for tag in answer.get("tags") or ())
        except (ValueError, AttributeError, TypeError):
            raise TagListFailed(f"{action}: registry {host} sent an unreadable tag list") from None
        page = _Page(headers.get("ETag", ""), tags, _next_page(headers.get("Link", ""), host, path, action))
        if page.etag:
            with self._memo:
                self._pages[(host, path)] = page
        return page

    def tag_details(self, ref: str, tag: str, *, count: Callable[[], None] | None = None) -> TagDetails:
        """What ``tag`` of ``ref``'s repository names now: its manifest digest and its image's ``created``.

        One manifest GET; for a digest not seen before, also its platform
        manifest (of an index: linux/amd64, else the first) and its config blob.
        """
        host, name, _ = repository_path(ref)
        action = f"read tag {tag} of {ref}"
        credential = self.credentials.for_host(registry_host(ref))
        scopes = (f"repository:{name}:pull",)
        status, headers, body = self.fetch("GET", ref, f"/v2/{name}/manifests/{tag}", scopes=scopes, action=action,
                                           count=count)
        if status != 200:
            raise self.error(status, action, host, credential)
        digest = headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()
        with self._memo:
            known = self._details.get((host, name, digest))
        if known is not None:
            return replace(known, tag=tag)
        manifest = _json(body, action, host)
        for _ in range(3):  # an index names a manifest; never loop on a malformed one
            if manifest.get("mediaType") not in _INDEX_TYPES and "manifests" not in manifest:
                break
            child = _platform(manifest.get("manifests") or [], action, host)
            status, _, body = self.fetch("GET", ref, f"/v2/{name}/manifests/{child}", scopes=scopes, action=action,
                                         count=count)
            if status != 200:
                raise self.error(status, action, host, credential)
            manifest = _json(body, action, host)
        config = (manifest.get("config") or {}).get("digest")
        if not isinstance(config, str) or not config.startswith("sha256:"):
            raise TagListFailed(f"{action}: registry {host} sent a manifest without an image config")
        status, _, body = self.fetch("GET", ref, f"/v2/{name}/blobs/{config}", scopes=scopes, action=action,
                                     count=count)
        if status != 200:
            raise self.error(status, action, host, credential, what="config")
        details = TagDetails(tag=tag, digest=digest, created=parse_created(_json(body, action, host).get("created")))
        with self._memo:
            self._details[(host, name, digest)] = details
        return details


def _next_page(link: str, host: str, path: str, action: str) -> str | None:
    """The path of the next page a ``Link`` header names, on this registry; None on the last page."""
    match = _NEXT.search(link or "")
    if not match:
        return None
    target = urllib.parse.urlsplit(urllib.parse.urljoin(f"http://{host}{path}", match.group(1)))
    if target.netloc != host:
        raise TagListFailed(f"{action}: registry {host} names a next page on another host ({target.netloc})")
    return target.path + (f"?{target.query}" if target.query else "")


def _json(body: bytes, action: str, host: str) -> dict:
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise TagListFailed(f"{action}: registry {host} sent an answer that is not a JSON object")
    return answer


def _platform(descriptors: list, action: str, host: str) -> str:
    """The digest of an index's linux/amd64 manifest, else of its first."""
    if not descriptors:
        raise TagListFailed(f"{action}: registry {host} sent an index that lists no manifest")
    for descriptor in descriptors:
        platform = descriptor.get("platform") or {}
        if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
            return str(descriptor["digest"])
    return str(descriptors[0].get("digest"))
