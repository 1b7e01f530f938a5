"""Webhook deliveries: checked against their provider's signature before anything else.

A delivery is only ever a hint to fetch: its body is not parsed, so nothing in
it (a branch, a commit id, a URL) is trusted. The signature is computed over
the raw body and compared in constant time; a delivery id seen before (a
replay, or the provider's own redelivery) triggers nothing.
"""
from __future__ import annotations

import collections
import hashlib
import hmac
import os
import threading
from pathlib import Path

from ..errors import SpecError
from ..redact import register_secrets
from .config import Webhook

__all__ = ["HookVerifier", "secret_of"]

#: The header carrying each provider's proof, and the one carrying its delivery id.
SIGNATURE = {"github": "x-hub-signature-256", "gitea": "x-gitea-signature", "gitlab": "x-gitlab-token",
             "generic": "x-signature-256"}
DELIVERY = {"github": "x-github-delivery", "gitea": "x-gitea-delivery", "gitlab": "x-gitlab-event-uuid",
            "generic": "x-delivery-id"}


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

    def __init__(self, hook: Webhook, secret: bytes, *, remember: int = 1024) -> None:
        self.hook = hook
        self._secret = secret
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._remember = remember
        self._lock = threading.Lock()

    def signed(self, headers, body: bytes) -> bool:
        """Whether ``body`` carries a valid proof of the shared secret (constant-time comparisons)."""
        given = headers.get(SIGNATURE[self.hook.provider], "")
        if self.hook.provider == "gitlab":  # GitLab sends the secret itself
            return hmac.compare_digest(given.encode(), self._secret)
        digest = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        if self.hook.provider in ("github", "generic"):
            expected = "sha256=" + digest
        else:
            expected = digest
        return hmac.compare_digest(given.strip().lower().encode(), expected.encode())

    def first_delivery(self, headers) -> bool:
        """False when this delivery id was seen already (deliveries without an id always count)."""
        delivery = headers.get(DELIVERY[self.hook.provider], "")
        if not delivery:
            return True
        with self._lock:
            if delivery in self._seen:
                return False
            self._seen[delivery] = None
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)
        return True
