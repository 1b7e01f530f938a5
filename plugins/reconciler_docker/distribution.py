"""Where a tag points now, asked of the registry without pulling: the manifest HEAD.

Why a module of its own: ``plan`` must notice that a tag moved upstream, and the
engine offers no way to ask a registry without pulling. The distribution API
does: ``HEAD /v2/<name>/manifests/<tag>`` answers with ``Docker-Content-Digest``.
How requests are made and authenticated is ``registryhttp``'s (shared with the
tag lister); this module asks just that one question, for many tags at once.

Cost: the first image of each registry goes alone (sending Basic credentials
up front when some are configured); its answer tells how the rest authenticate,
and they go concurrently, one HEAD each. A registry that wants a token costs at
most one extra HEAD (the challenge) and one token fetch, for every repository
of the batch at once.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

from .credentials import CredentialStore, registry_host
from .registryhttp import RegistryClient, RegistryRefused, repository_path

__all__ = ["DigestCheckFailed", "ManifestChecker"]


class DigestCheckFailed(RegistryRefused):
    """The registry would not say where a tag points (not found, denied, bad answer)."""


class ManifestChecker(RegistryClient):
    """Asks registries for the digest of many tags at once; one instance per run.

    ``requests`` counts every HTTP request made (HEADs, token fetches), so a
    test or a benchmark can hold the cost to its promise.
    """

    refused = DigestCheckFailed

    def __init__(self, credentials: CredentialStore | None = None, *, timeout: float = 10.0,
                 max_workers: int = 32, connect: Callable[..., object] | None = None) -> None:
        super().__init__(credentials, timeout=timeout, connect=connect)
        self.max_workers = max_workers

    def digests(self, refs: Iterable[str]) -> dict[str, str | Exception]:
        """``ref`` → its manifest digest upstream, or the error that kept us from knowing it."""
        refs = sorted(set(refs))
        by_host: dict[str, list[str]] = {}
        for ref in refs:
            by_host.setdefault(repository_path(ref)[0], []).append(ref)
        out: dict[str, str | Exception] = {}
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(refs) or 1),
                                thread_name_prefix="digest") as pool:
            # The first ref of each registry learns how it authenticates; the rest follow it.
            firsts = {host: pool.submit(self._safe, group[0], group) for host, group in by_host.items()}
            rest = {}
            for host, group in by_host.items():
                out[group[0]] = firsts[host].result()
                rest.update({ref: pool.submit(self._safe, ref, group) for ref in group[1:]})
            out.update({ref: future.result() for ref, future in rest.items()})
        return out

    def digest(self, ref: str) -> str:
        """The manifest digest ``ref``'s tag points to now, at its registry."""
        return self._head(ref, [ref])

    def _safe(self, ref: str, batch: list[str]) -> str | Exception:
        try:
            return self._head(ref, batch)
        except Exception as exc:  # one image's failure is that image's answer, never the batch's
            return exc

    def _head(self, ref: str, batch: list[str]) -> str:
        host, name, tag = repository_path(ref)
        # One token for every repository of the batch on this registry (several ``scope`` params).
        scopes = tuple(sorted({f"repository:{repository_path(r)[1]}:pull" for r in batch}))
        status, headers, _ = self.fetch("HEAD", ref, f"/v2/{name}/manifests/{tag}", scopes=scopes,
                                        action=f"check {ref}")
        if status == 200 and headers.get("Docker-Content-Digest", "").startswith("sha256:"):
            return headers["Docker-Content-Digest"]
        if status == 200:
            raise DigestCheckFailed(f"check {ref}: registry {host} sent no Docker-Content-Digest")
        raise self.error(status, f"check {ref}", host, self.credentials.for_host(registry_host(ref)))

