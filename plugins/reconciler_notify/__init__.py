"""Built-in notify plugin: POST a signed JSON summary of each apply to configured URLs.

It uses only the ``reconciler_apply_finished`` and ``reconciler_image_event``
hooks, exactly as a third-party plugin would, and is declared in the ``reconciler`` entry-point group. It is
configured from the environment at hook time (see ``docs/notify.md``):

- ``RECONCILER_NOTIFY_URLS``: comma-separated http(s) URLs; unset, nothing is sent;
- ``RECONCILER_NOTIFY_SECRET`` or ``RECONCILER_NOTIFY_SECRET_FILE``: HMAC key for
  the ``X-Reconciler-Signature`` header;
- ``RECONCILER_NOTIFY_TIMEOUT``: seconds per attempt (default 5).

A notification is a side effect nobody waits on: whatever goes wrong is logged
on the ``reconciler.notify`` logger and never fails the apply. The work lives
in small private modules imported only when there is something to send, so a
run without URLs pays nothing beyond this module.
"""
from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Mapping

from reconciler.sdk import hookimpl

if TYPE_CHECKING:
    from reconciler.sdk import ApplyReport, ImageEvent

    from .delivery import Delivery

__all__ = ["LOGGER_NAME", "RECONCILER_API_VERSION", "notify", "reconciler_apply_finished", "reconciler_image_event"]

RECONCILER_API_VERSION = 2
LOGGER_NAME = "reconciler.notify"
#: The variable that turns notifications on; read here, so a run without it never imports the config module.
URLS_ENV = "RECONCILER_NOTIFY_URLS"
log = logging.getLogger(LOGGER_NAME)


@hookimpl
def reconciler_apply_finished(report: ApplyReport) -> None:
    """Send the report's summary to every configured URL; never raise."""
    try:
        notify(report, os.environ)
    except Exception as exc:  # a notifier's bug must not turn a good apply into a failed one
        log.error("apply notification failed: %s", type(exc).__name__)


@hookimpl
def reconciler_image_event(event: ImageEvent) -> None:
    """Send an image automation event (an update committed, a version quarantined or released); never raise."""
    try:
        notify(event, os.environ)
    except Exception as exc:
        log.error("image notification failed: %s", type(exc).__name__)


def notify(report: ApplyReport | ImageEvent, environ: Mapping[str, str]) -> list[Delivery]:
    """Deliver ``report`` (or an image event) as configured by ``environ``; one result per URL, empty if none.

    Configuration errors and failed deliveries are logged, not raised.
    """
    if not environ.get(URLS_ENV, "").strip():  # nothing to send: the config module is not even imported
        return []
    from .config import NotifyConfigError, load_config

    try:
        config = load_config(environ)
    except NotifyConfigError as exc:
        log.error("notifications disabled: %s", exc)
        return []
    if not config.urls:
        return []

    from .delivery import deliver_all
    from .payload import build_payload, encode_payload, image_payload, request_headers

    from reconciler.sdk import ImageEvent

    image = isinstance(report, ImageEvent)
    body = encode_payload(image_payload(report) if image else build_payload(report))
    headers = request_headers(body, config.secret, event="image" if image else "apply")
    results = deliver_all(body, headers, config.urls, timeout=config.timeout)
    for result in results:
        if result.ok:
            log.info("notified %s (HTTP %s, %d attempt(s))", result.target, result.status, result.attempts)
        else:
            log.warning("could not notify %s after %d attempt(s): %s", result.target, result.attempts, result.error)
    return results
