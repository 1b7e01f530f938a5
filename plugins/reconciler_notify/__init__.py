"""Built-in notify plugin: a signed JSON summary of each apply, and chat or mail messages through Apprise.

It uses only the ``reconciler_apply_finished``, ``reconciler_pass_finished``, ``reconciler_image_event`` and
``reconciler_preview_changed`` hooks, exactly as a third-party plugin would, and is declared in the ``reconciler``
entry-point group. It is configured from the environment at hook time (see ``docs/notify.md``):

- ``RECONCILER_NOTIFY_URLS``: comma-separated http(s) URLs for the signed JSON; unset, none is sent;
- ``RECONCILER_NOTIFY_SECRET`` or ``RECONCILER_NOTIFY_SECRET_FILE``: HMAC key for
  the ``X-Reconciler-Signature`` header;
- ``RECONCILER_NOTIFY_TIMEOUT``: seconds per attempt (default 5);
- ``RECONCILER_NOTIFY_APPRISE_FILE``: the notify file of Apprise targets, each with the events it
  subscribes to (``targets.py``); messages go through one queue and one thread (``sender.py``), a storm
  summarised per stack and event (``storm.py``).

A notification is a side effect nobody waits on: whatever goes wrong is logged
on the ``reconciler.notify`` logger and never fails the apply. The work lives
in small private modules imported only when there is something to send, so a
run without URLs pays nothing beyond this module.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Mapping

from reconciler.sdk import hookimpl

if TYPE_CHECKING:
    from reconciler.sdk import ApplyReport, ImageEvent, Plan, Preview

    from .delivery import Delivery
    from .events import HeldDrift
    from .message import Notice
    from .sender import Sender

__all__ = ["LOGGER_NAME", "RECONCILER_API_VERSION", "announce", "drain", "notify", "notify_preview",
           "reconciler_apply_finished", "reconciler_image_event", "reconciler_pass_finished",
           "reconciler_preview_changed"]

RECONCILER_API_VERSION = 2
LOGGER_NAME = "reconciler.notify"
#: The variable that turns notifications on; read here, so a run without it never imports the config module.
URLS_ENV = "RECONCILER_NOTIFY_URLS"
#: The variable that turns Apprise messages on (its notify file); without it the Apprise modules are not imported.
APPRISE_ENV = "RECONCILER_NOTIFY_APPRISE_FILE"
log = logging.getLogger(LOGGER_NAME)
_sender: Sender | None = None
_held: HeldDrift | None = None
_sender_lock = threading.Lock()


@hookimpl
def reconciler_apply_finished(report: ApplyReport) -> None:
    """Send the report's summary to every configured URL; never raise."""
    try:
        notify(report, os.environ)
    except Exception as exc:  # a notifier's bug must not turn a good apply into a failed one
        log.error("apply notification failed: %s", type(exc).__name__)
    if os.environ.get(APPRISE_ENV, "").strip():
        try:
            from .events import classify_report
            from .message import report_notice

            event = classify_report(report)
            if event is not None:
                announce(report_notice(report, event), os.environ)
        except Exception as exc:
            log.error("Apprise notification failed: %s", type(exc).__name__)


@hookimpl
def reconciler_pass_finished(stack: str, report: ApplyReport | None, error: str, crash_looping: Mapping[str, int],
                             held: Plan | None) -> None:
    """Tell Apprise targets what only the loop knows: a crash loop, drift held by a suspension, a pass that
    failed before applying anything (an apply's own report went through ``reconciler_apply_finished``)."""
    if not os.environ.get(APPRISE_ENV, "").strip():
        return
    try:
        from .events import Event
        from .message import pass_notice

        revision = report.revision if report is not None else ""
        if crash_looping:
            announce(pass_notice(stack, Event.CRASH_LOOPING, crash_looping=crash_looping, revision=revision),
                     os.environ)
        if _held_drift().news(stack, held):
            announce(pass_notice(stack, Event.SUSPENDED, held=held), os.environ)
        elif report is None and error:
            announce(pass_notice(stack, Event.FAILED, error=error), os.environ)
    except Exception as exc:
        log.error("Apprise notification failed: %s", type(exc).__name__)


@hookimpl
def reconciler_image_event(event: ImageEvent) -> None:
    """Send an image automation event (an update committed, a version quarantined or released); never raise."""
    try:
        notify(event, os.environ)
    except Exception as exc:
        log.error("image notification failed: %s", type(exc).__name__)
    if os.environ.get(APPRISE_ENV, "").strip():
        try:
            from .message import image_notice

            announce(image_notice(event), os.environ)
        except Exception as exc:
            log.error("Apprise image notification failed: %s", type(exc).__name__)


@hookimpl
def reconciler_preview_changed(preview: Preview, event: str) -> None:
    """Tell a preview stack that came up (``up``) or went away (``down``), one message each (never a storm's
    summary), to the signed JSON's URLs and the Apprise targets subscribed to ``preview.*``; never raise."""
    try:
        notify_preview(preview, event, os.environ)
    except Exception as exc:
        log.error("preview notification failed: %s", type(exc).__name__)
    if os.environ.get(APPRISE_ENV, "").strip():
        try:
            from .message import preview_notice

            announce(preview_notice(preview, event), os.environ)
        except Exception as exc:
            log.error("Apprise preview notification failed: %s", type(exc).__name__)


def _held_drift() -> HeldDrift:
    """The process's one memory of the drift each suspended stack held (made on first use)."""
    global _held
    from .events import HeldDrift

    with _sender_lock:
        if _held is None:
            _held = HeldDrift()
        return _held


def announce(notice: Notice, environ: Mapping[str, str]) -> bool:
    """Queue ``notice`` for the Apprise targets ``environ`` configures (never blocks); False when none takes it.

    The notify file is read on each call (a rotated URL file is picked up); its problems are logged, not raised.
    """
    from .sender import Sender
    from .targets import AppriseConfigError, load_apprise

    global _sender
    try:
        config = load_apprise(environ, log)
    except AppriseConfigError as exc:
        log.error("Apprise notifications disabled: %s", exc)
        return False
    if config is None or not any(notice.event in target.events for target in config.targets):
        return False
    with _sender_lock:
        if _sender is None:
            _sender = Sender()
    return _sender.submit(notice, config)


def drain(timeout: float = 15.0) -> bool:
    """Send the Apprise notices queued and every storm summary held, now; True when all went within ``timeout``
    (also run at exit)."""
    sender = _sender
    return True if sender is None else sender.drain(timeout)


def notify(report: ApplyReport | ImageEvent, environ: Mapping[str, str]) -> list[Delivery]:
    """Deliver ``report`` (or an image event) as configured by ``environ``; one result per URL, empty if none.

    Configuration errors and failed deliveries are logged, not raised.
    """
    def payload() -> tuple[dict, str]:
        from .payload import build_payload, image_payload

        from reconciler.sdk import ImageEvent

        if isinstance(report, ImageEvent):
            return image_payload(report), "image"
        return build_payload(report), "apply"

    return _post(payload, environ)


def notify_preview(preview: Preview, event: str, environ: Mapping[str, str]) -> list[Delivery]:
    """Deliver a preview's ``up`` or ``down`` (``X-Reconciler-Event: preview``) as ``notify`` does a report."""
    def payload() -> tuple[dict, str]:
        from .payload import preview_payload

        return preview_payload(preview, event), "preview"

    return _post(payload, environ)


def _post(payload, environ: Mapping[str, str]) -> list[Delivery]:
    """POST ``payload()``'s (body, event) signed to every URL ``environ`` configures; one result per URL."""
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
    from .payload import encode_payload, request_headers

    data, event = payload()
    body = encode_payload(data)
    headers = request_headers(body, config.secret, event=event)
    results = deliver_all(body, headers, config.urls, timeout=config.timeout)
    for result in results:
        if result.ok:
            log.info("notified %s (HTTP %s, %d attempt(s))", result.target, result.status, result.attempts)
        else:
            log.warning("could not notify %s after %d attempt(s): %s", result.target, result.attempts, result.error)
    return results
