"""Sending Apprise notifications: one bounded queue and one thread, so a pass never waits on a chat service.

Hooks only ``submit`` (it never blocks: a full queue drops the notice with a
warning); the sender thread passes each notice through the storm windows
(``storm.Storms``), sends what goes out now, and wakes when a window ends to
send its summary. At exit (``reconcile apply`` is a short process) the queue is
drained and held summaries are sent, within ``DRAIN_SECONDS``.

Apprise logs the URLs it posts to (at debug level, and in some warnings), and
an Apprise URL is a credential. Its logger is set to warnings unless someone
chose a level for it, and a filter rewrites each of its records with every
part of every configured URL replaced by ``***`` (tracebacks dropped: their
text can hold a URL too). Our own lines name a target by ``display`` only.
"""
from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from typing import Callable

from .events import Event
from .message import Notice, render
from .storm import Storms
from .targets import AppriseConfig, AppriseTarget

__all__ = ["APPRISE_LOGGER", "DRAIN_SECONDS", "MAX_QUEUE", "Sender", "quiet_apprise", "send_apprise"]

APPRISE_LOGGER = "apprise"
#: Notices waiting to be sent at most; more are dropped (a storm is summarised anyway).
MAX_QUEUE = 200
#: How long the process waits at exit for the notices still queued.
DRAIN_SECONDS = 15.0
#: Seconds one service may take (Apprise's ``service_timeout``).
SERVICE_TIMEOUT = 10.0
#: Apprise's notification type per event (a colour or an icon in most chats); the rest are "info".
KINDS = {Event.APPLIED: "success", Event.DRIFT_REPAIRED: "success", Event.FAILED: "failure",
         Event.ROLLED_BACK: "failure", Event.CRASH_LOOPING: "failure", Event.IMAGE_QUARANTINED: "warning",
         Event.SUSPENDED: "warning", Event.PREVIEW_UP: "success"}
log = logging.getLogger("reconciler.notify")

Deliver = Callable[[Notice, AppriseConfig], None]
_STOP = object()  # ends the thread (``close``)


class _Redact(logging.Filter):
    """Rewrites Apprise's records with every configured URL's parts replaced by ``***``."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: tuple[str, ...] = ()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        for secret in self.secrets:
            text = text.replace(secret, "***")
        record.msg, record.args = text, ()
        record.exc_info = record.exc_text = record.stack_info = None
        return True


_REDACT = _Redact()


def quiet_apprise(secrets: tuple[str, ...]) -> None:
    """Make Apprise's logger safe: warnings and up (unless a level was chosen), ``secrets`` redacted."""
    logger = logging.getLogger(APPRISE_LOGGER)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
    _REDACT.secrets = tuple(sorted(set(_REDACT.secrets) | set(secrets), key=len, reverse=True))
    if _REDACT not in logger.filters:
        logger.addFilter(_REDACT)


def send_apprise(notice: Notice, config: AppriseConfig) -> None:
    """Send ``notice`` to each target of ``config`` that subscribes to its event; failures are logged."""
    targets = [t for t in config.targets if notice.event in t.events]
    if not targets:
        return
    import apprise

    quiet_apprise(config.secrets())
    title, body = render(notice, public_url=config.public_url)
    # in memory only (Apprise may keep state per URL on disk), bounded in time, its own URL masking on
    asset = apprise.AppriseAsset(app_id="reconciler", app_desc="reconciler", storage_mode="memory",
                                 service_timeout=SERVICE_TIMEOUT, secure_logging=True)
    kind = apprise.NotifyType(KINDS.get(notice.event, "info"))
    for target in targets:
        _send_one(apprise, asset, target, title, body, kind)


def _send_one(apprise, asset, target: AppriseTarget, title: str, body: str, kind) -> None:
    started = time.monotonic()
    try:
        client = apprise.Apprise(asset=asset)
        if not client.add(target.url):
            log.warning("Apprise target %s: its URL is not one Apprise understands", target.display)
            return
        ok = client.notify(body=body, title=title, notify_type=kind, body_format=apprise.NotifyFormat.MARKDOWN)
    except Exception as exc:  # a plugin of Apprise's may raise anything; its text may hold the URL
        log.warning("Apprise target %s: %s", target.display, type(exc).__name__)
        return
    if ok:
        log.info("notified Apprise target %s (%.1f s)", target.display, time.monotonic() - started)
    else:
        log.warning("could not notify Apprise target %s (Apprise's log says why)", target.display)


class Sender:
    """The process's one Apprise queue and thread (started on the first ``submit``)."""

    def __init__(self, deliver: Deliver = send_apprise, *, clock: Callable[[], float] = time.monotonic,
                 maxsize: int = MAX_QUEUE, at_exit: bool = True) -> None:
        self.deliver = deliver
        self.storms = Storms(clock)
        self.clock = clock
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._configs: dict[tuple[str, str], AppriseConfig] = {}  # the config in force for a held notice
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._pending = 0
        self._at_exit = at_exit

    def submit(self, notice: Notice, config: AppriseConfig) -> bool:
        """Queue ``notice`` for ``config``'s targets; never blocks; False when the queue was full."""
        self._start()
        with self._idle:
            self._pending += 1
        try:
            self._queue.put_nowait((notice, config))
        except queue.Full:
            self._done()
            log.warning("the Apprise queue is full (%d notices): %s: %s dropped", self._queue.maxsize,
                        notice.stack, notice.event.value)
            return False
        return True

    def drain(self, timeout: float = DRAIN_SECONDS) -> bool:
        """Send what is queued and every held summary; True when all went within ``timeout`` seconds."""
        if self._thread is None or not self._thread.is_alive():  # never started, or closed
            return True
        deadline = time.monotonic() + timeout
        with self._idle:
            self._pending += 1
        try:
            self._queue.put(None, timeout=timeout)  # the thread flushes the storm windows when it gets here
        except queue.Full:
            self._done()
            return False
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float = DRAIN_SECONDS) -> bool:
        """``drain``, then end the thread (a test's sender; the process's runs until exit)."""
        drained = self.drain(timeout)
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)
        return drained

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="reconciler-notify-apprise", daemon=True)
            self._thread.start()
            if self._at_exit:
                atexit.register(self.drain)

    def _run(self) -> None:
        while True:  # no exception ends this thread (only ``close``): a lost notice is logged, the next one goes
            try:
                if self._step() is _STOP:
                    return
            except Exception as exc:
                log.error("Apprise sender: unexpected %s", type(exc).__name__)

    def _step(self) -> object:
        due = self.storms.next_due()
        timeout = None if due is None else max(0.0, due - self.clock())
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            item = ()
        if item is _STOP:
            return _STOP
        try:
            if item is None:
                self._send_all(self.storms.flush())
            elif item:
                notice, config = item
                self._configs[(notice.stack, notice.event.value)] = config
                now = self.storms.offer(notice, config.interval)
                if now is not None:
                    self._send(now)
            self._send_all(self.storms.due())
        finally:
            if item != ():
                self._done()
        return item

    def _send_all(self, notices: list[Notice]) -> None:
        for notice in notices:
            self._send(notice)

    def _send(self, notice: Notice) -> None:
        config = self._configs.get((notice.stack, notice.event.value))
        if config is None:
            return
        try:
            self.deliver(notice, config)
        except Exception as exc:
            log.warning("Apprise notification for %s failed: %s", notice.stack, type(exc).__name__)

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()
