"""The notification body and its signature: pure functions of a report.

The signature follows GitHub's webhook convention so receivers can reuse
their verification code: ``X-Reconciler-Signature: sha256=<hex>``, an
HMAC-SHA256 of the exact body bytes. Errors in the report are passed as the
core produced them: it has already redacted secret values.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from reconciler.sdk import Status, __version__

if TYPE_CHECKING:
    from reconciler.sdk import ApplyReport, ImageEvent, Outcome, Preview

__all__ = ["EVENT", "SIGNATURE_HEADER", "build_payload", "encode_payload", "image_payload", "preview_payload",
           "request_headers", "sign"]

EVENT = "apply"
SIGNATURE_HEADER = "X-Reconciler-Signature"
EVENT_HEADER = "X-Reconciler-Event"
DELIVERY_HEADER = "X-Reconciler-Delivery"


def build_payload(report: ApplyReport, *, now: datetime | None = None) -> dict[str, Any]:
    """The JSON-ready summary of one apply."""
    sent_at = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return {
        "stack": report.stack,
        "revision": getattr(report, "revision", "") or None,
        "ok": report.ok,
        "duration_seconds": round(report.seconds, 3),
        "counts": {status.value: report.count(status) for status in Status},
        "changes": [_change(outcome) for outcome in report.outcomes],
        "failures": [{"id": o.change.id, "error": o.error or None, "temporary": o.temporary}
                     for o in report.outcomes if o.status == Status.FAILED],
        "sent_at": sent_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def image_payload(event: ImageEvent, *, now: datetime | None = None) -> dict[str, Any]:
    """The JSON-ready summary of one image automation event (sent with ``X-Reconciler-Event: image``)."""
    sent_at = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return {
        "event": f"image.{event.kind.value}",
        "stack": event.stack,
        "image": event.image,
        "before": event.before,
        "after": event.after or None,
        "version": event.version or None,
        "policy": event.policy or None,
        "commit": event.commit or None,
        "branch": event.branch or None,
        "reason": event.reason or None,
        "sent_at": sent_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def preview_payload(preview: Preview, event: str, *, now: datetime | None = None) -> dict[str, Any]:
    """The JSON-ready summary of a preview stack that came up or went away (sent with ``X-Reconciler-Event:
    preview``): ``event`` is ``up`` or ``down``."""
    sent_at = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return {
        "event": f"preview.{event}",
        "stack": preview.stack or None,
        "base": preview.base or None,
        "source": preview.source,
        "branch": preview.branch,
        "path": preview.path,
        "revision": preview.revision or None,
        "state": preview.state,
        "urls": list(preview.urls),
        "reason": preview.reason or None,
        "sent_at": sent_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _change(outcome: Outcome) -> dict[str, Any]:
    return {
        "id": outcome.change.id,
        "action": outcome.change.action.value,
        "reason": outcome.change.reason.value,
        "status": outcome.status.value,
        "error": outcome.error or None,
        "seconds": round(outcome.seconds, 3),
    }


def encode_payload(payload: dict[str, Any]) -> bytes:
    """Compact, ASCII-only JSON: the bytes that are sent and signed."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sign(body: bytes, secret: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``, the value of the signature header."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def request_headers(body: bytes, secret: bytes | None, *, event: str = EVENT) -> dict[str, str]:
    """Headers for every attempt of one notification (same delivery id on retries)."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"reconciler-notify/{__version__}",
        EVENT_HEADER: event,
        DELIVERY_HEADER: str(uuid.uuid4()),
    }
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    return headers
