"""A registry's push notifications, read into the few facts the daemon acts on.

Docker's registry (distribution) posts an envelope of events
(``application/vnd.docker.distribution.events.v1+json``, ``{"events": [...]}``)
for every blob and manifest pushed or pulled. Only a manifest pushed says a
new version of an image may be there; everything else is noise here. What an
event says is a hint of *which* image to look at, never trusted further: the
automation lists the repository's tags itself. The envelope is read only
after the webhook's secret is verified, and only within the API's body cap.

Each event carries an ``id`` the registry keeps across its retries; the
webhook drops an id it has seen (``HookVerifier.first_events``), which is why
``push_events`` hands back the ids beside the pushes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

__all__ = ["ENVELOPE_TYPE", "MANIFEST_TYPES", "RegistryPush", "push_events", "pushes"]

#: The Content-Type of the registry's envelopes.
ENVELOPE_TYPE = "application/vnd.docker.distribution.events.v1+json"
#: Media types of a manifest (an image, or an index of them); a blob's event names none of these.
MANIFEST_TYPES = frozenset({
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
})


@dataclass(frozen=True)
class RegistryPush:
    """One manifest pushed to a registry, as its notification tells it."""

    #: The registry as clients name it (``127.0.0.1:5000``): the Host of the push request (``event.request.host``).
    host: str
    #: The repository inside the registry (``team/app``).
    repository: str
    #: The tag pushed; ``""`` for a push by digest.
    tag: str
    #: The manifest's digest (``target.digest``).
    digest: str
    #: When the registry saw the push (``event.timestamp``), timezone-aware.
    at: datetime


def pushes(body: bytes) -> list[RegistryPush]:
    """The manifests pushed that an envelope tells of, in its order; a body that is not an envelope: ``[]``."""
    return [push for _, push in push_events(body)]


def push_events(body: bytes) -> list[tuple[str, RegistryPush]]:
    """(event id, push) for each manifest pushed in the envelope ``body`` (id ``""`` when the event has none).

    Blob pushes, pulls, deletes, mounts and events missing a repository or digest are left out;
    malformed JSON, or JSON that is not ``{"events": [...]}``, gives ``[]``.
    """
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    events = envelope.get("events") if isinstance(envelope, dict) else None
    if not isinstance(events, list):
        return []
    found = []
    for event in events:
        push = _push(event) if isinstance(event, dict) else None
        if push is not None:
            found.append((_text(event.get("id")), push))
    return found


def _push(event: dict) -> RegistryPush | None:
    """The push ``event`` tells of, or None when it is not a manifest pushed (or lacks what names one)."""
    target, request = event.get("target"), event.get("request")
    if event.get("action") != "push" or not isinstance(target, dict):
        return None
    if not _is_manifest(target):
        return None
    repository, digest = _text(target.get("repository")), _text(target.get("digest"))
    host = _text(request.get("host")) if isinstance(request, dict) else ""
    at = _timestamp(event.get("timestamp"))
    if not (repository and digest and host) or at is None:
        return None
    return RegistryPush(host=host, repository=repository, tag=_text(target.get("tag")), digest=digest, at=at)


def _is_manifest(target: dict) -> bool:
    """A manifest's media type, or (a type this module does not know yet) a URL under ``/manifests/``."""
    if _text(target.get("mediaType")) in MANIFEST_TYPES:
        return True
    return "/manifests/" in _text(target.get("url"))


def _timestamp(value) -> datetime | None:
    """An RFC 3339 time as the registry writes it (nanoseconds, ``Z`` or an offset), aware; None when it is not."""
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


def _text(value) -> str:
    return value if isinstance(value, str) else ""
