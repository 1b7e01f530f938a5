"""Webhook deliveries: checked against their provider's signature before anything else.

A delivery is only ever a hint to fetch: its body is not parsed, so nothing in
it (a branch, a commit id, a URL) is trusted. The signature is computed over
the raw body and compared in constant time; a delivery id seen before (a
replay, or the provider's own redelivery) triggers nothing.

A delivery without an id (a generic sender that sends none) is known by the
hash of its verified body instead, for a short window only: the same bytes
again within a minute are a redelivery or a replay, but a sender whose body
never changes (``{}`` on every push) may send them again for a real push
later, and that one must still fetch. Within the window a missed push costs
at most one poll interval, as a lost delivery would.

A registry (``provider: registry``, Docker's distribution) proves itself with
the header its ``notifications`` endpoint is configured to send,
``Authorization: Bearer <secret>``, and sends no delivery id: each event in
its envelope has one instead, kept across its retries, and an event id seen
before is dropped (``first_events``).
"""
from __future__ import annotations

import collections
import hashlib
import hmac
import os
import threading
import time
from pathlib import Path

from ..errors import SpecError
from ..redact import register_secrets
from .config import Webhook

__all__ = ["HookVerifier", "secret_of"]

#: The header carrying each provider's proof, and the one carrying its delivery id (names as providers spell them).
SIGNATURE = {"github": "X-Hub-Signature-256", "gitea": "X-Gitea-Signature", "gitlab": "X-Gitlab-Token",
             "generic": "X-Signature-256", "registry": "Authorization"}
DELIVERY = {"github": "X-GitHub-Delivery", "gitea": "X-Gitea-Delivery", "gitlab": "X-Gitlab-Event-UUID",
            "generic": "X-Delivery-Id", "registry": ""}  # a registry's ids are its events' own
#: How long the same body without a delivery id counts as the same delivery (seconds).
BODY_WINDOW = 60.0


def secret_of(hook: Webhook) -> bytes:
    """The hook's shared secret, from its file or its environment variable."""
    if hook.secret_file:
        try:
            secret = Path(hook.secret_file).read_bytes().strip()
        except OSError as exc:
            raise SpecError(f"webhook {hook.name}: cannot read its secret file {hook.secret_file}: "
                            f"{exc.strerror or exc}") from exc
    else:
        secret = os.environ.get(hook.secret_env or "", "").encode()
    if len(secret) < 16:
        raise SpecError(f"webhook {hook.name}: its secret is missing or shorter than 16 characters")
    register_secrets([secret.decode(errors="replace")])
    return secret


class HookVerifier:
    """One webhook's checks: its signature, and deliveries already seen."""

    def __init__(self, hook: Webhook, secret: bytes, *, remember: int = 1024, window: float = BODY_WINDOW,
                 clock=time.monotonic) -> None:
        """``remember`` delivery ids (and bodies) at most; a body without an id for ``window`` seconds."""
        self.hook = hook
        self._secret = secret
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._bodies: collections.OrderedDict[str, float] = collections.OrderedDict()  # digest: when seen
        self._remember = remember
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()

    def signed(self, headers, body: bytes) -> bool:
        """Whether ``body`` carries a valid proof of the shared secret (constant-time comparisons)."""
        return self.refusal(headers, body) is None

    def refusal(self, headers, body: bytes) -> str | None:
        """Why the delivery is not signed with the shared secret (its header missing, or not matching), or None."""
        header = SIGNATURE[self.hook.provider]
        given = _header(headers, header)
        if not given.strip():
            if self.hook.provider == "registry":
                return (f"the delivery has no {header} header: set headers: {{Authorization: [Bearer <secret>]}} "
                        "on the registry's notifications endpoint")
            what = "the webhook's secret" if self.hook.provider == "gitlab" else "the HMAC-SHA256 of its body"
            return f"the delivery has no {header} header: set the webhook's secret at the sender ({what} goes there)"
        if not self._matches(given, body):
            return f"the delivery's {header} does not match this webhook's secret"
        return None

    def _matches(self, given: str, body: bytes) -> bool:
        if self.hook.provider == "gitlab":  # GitLab sends the secret itself
            return hmac.compare_digest(given.encode(), self._secret)
        if self.hook.provider == "registry":  # the header the registry's endpoint is configured with
            return hmac.compare_digest(given.strip().encode(), b"Bearer " + self._secret)
        digest = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        if self.hook.provider in ("github", "generic"):
            expected = "sha256=" + digest
        else:
            expected = digest
        return hmac.compare_digest(given.strip().lower().encode(), expected.encode())

    def first_delivery(self, headers, body: bytes) -> bool:
        """False when this delivery was seen already: by its id, or without one by its body within the window.

        Call it after the signature is checked: only verified deliveries take room in what is remembered.
        """
        delivery = _header(headers, DELIVERY[self.hook.provider])
        with self._lock:
            if delivery:
                return self._first(self._seen, delivery, None)
            now = self._clock()
            while self._bodies and next(iter(self._bodies.values())) <= now - self._window:
                self._bodies.popitem(last=False)
            return self._first(self._bodies, hashlib.sha256(body).hexdigest(), now)

    def first_events(self, ids: list[str], body: bytes) -> list[bool]:
        """For each event id of a verified envelope, whether it is new; every one is remembered from now on.

        An event without an id (``""``) is known by the envelope's SHA-256 and its place in it: a registry's
        envelope names the time of each event, so the same bytes again are a redelivery.
        """
        envelope = hashlib.sha256(body).hexdigest()
        with self._lock:
            return [self._first(self._seen, f"event:{event}" if event else f"body:{envelope}:{at}", None)
                    for at, event in enumerate(ids)]

    def _first(self, seen: collections.OrderedDict, key: str, value) -> bool:
        if key in seen:
            return False
        seen[key] = value
        while len(seen) > self._remember:
            seen.popitem(last=False)
        return True


def _header(headers, name: str) -> str:
    """The header ``name`` of a request (Starlette's headers ignore case) or of a plain dict (lower case)."""
    return headers.get(name) or headers.get(name.lower()) or ""
