"""The notify plugin's Apprise messages, through the real ``apprise`` library to local receivers.

``json://`` goes to a threaded ``http.server`` on 127.0.0.1 (``tests/http_receiver.py``), ``mailto://`` to
``aiosmtpd``'s SMTP server on 127.0.0.1; passes run on the in-memory engine. Every test checks what arrived
and that neither an Apprise URL's password nor an env value marked secret is in any message or log record.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time

import pytest
from aiosmtpd.controller import Controller

import reconciler_notify
from reconciler.errors import PermanentError
from reconciler.loop import LoopOptions, StackLoop, Trigger
from reconciler.model import Kind
from reconciler.plan import Action, Change
from reconciler.report import ApplyReport, Outcome, Status
from reconciler.spec import load_desired
from reconciler.testing import make_reconciler
from reconciler_notify.events import Event

from ..http_receiver import Receiver
from ..waiting import wait_until

URL_PASSWORD = "url-pa55word-kept-secret"
ENV_SECRET = "hunter2-env-value-kept-secret"
SPEC = ("name: demo\ncontainers:\n  web:\n    image: 'busybox:1'\n    env:\n"
        f"      DB_PASSWORD: {{value: '{ENV_SECRET}', secret: true}}\n      LOG_LEVEL: info\n")


@pytest.fixture(autouse=True)
def fresh_plugin(monkeypatch):
    """A sender and a suspension memory of this test's own; the webhook's variables unset; Apprise's logger as
    it was."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                 "RECONCILER_NOTIFY_URLS", "RECONCILER_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(reconciler_notify, "_sender", None)
    monkeypatch.setattr(reconciler_notify, "_held", None)
    apprise_log = logging.getLogger("apprise")
    level = apprise_log.level
    yield
    if reconciler_notify._sender is not None:
        reconciler_notify._sender.close(5)
    apprise_log.setLevel(level)


@pytest.fixture
def receiver():
    with Receiver(path="/notify") as running:
        yield running


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content.decode("utf-8", errors="replace"))
        return "250 OK"


@pytest.fixture
def smtp():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    mailbox.port = port
    yield mailbox
    controller.stop()


def notify_file(monkeypatch, tmp_path, targets: str, interval: str = "5m", public_url: str = "") -> None:
    path = tmp_path / "notify.yaml"
    path.write_text(f"interval: {interval}\n" + (f"public_url: {public_url}\n" if public_url else "")
                    + "targets:\n" + targets)
    monkeypatch.setenv("RECONCILER_NOTIFY_APPRISE_FILE", str(path))


def json_url(receiver: Receiver) -> str:
    return f"json://bot:{URL_PASSWORD}@127.0.0.1:{receiver.server.server_address[1]}/notify"


def received(receiver: Receiver) -> list[dict]:
    with receiver.lock:
        return [json.loads(body) for _, _, body in receiver.requests]


def change(name: str) -> Change:
    return Change(Action.REPLACE, Kind.CONTAINER, name, key=name)


FAILED = Outcome(change("shop-web-1"), Status.FAILED, "image pull failed: 404\nsecond line", 1.0,
                 exception=PermanentError("image pull failed"))


def failed_report(stack: str = "shop") -> ApplyReport:
    return ApplyReport(stack, (Outcome(change(f"{stack}-db-1"), Status.OK), FAILED), 1.0, revision="3f2a9c1d0e5b7a8c",
                       trigger="source")


def assert_no_secret(*texts: str, records=()) -> None:
    for text in [*texts, *(r.getMessage() for r in records)]:
        assert URL_PASSWORD not in text and ENV_SECRET not in text, text


def test_a_failed_apply_reaches_a_json_target_as_markdown(monkeypatch, tmp_path, receiver, caplog):
    monkeypatch.setenv("RECONCILER_PUBLIC_URL", "https://ops.example.com")
    notify_file(monkeypatch, tmp_path, f"  - url: '{json_url(receiver)}'\n")
    with caplog.at_level(logging.DEBUG):
        reconciler_notify.reconciler_apply_finished(failed_report())
        assert reconciler_notify.drain(10)
    (message,) = received(receiver)
    assert message["title"] == "shop: failed" and message["type"] == "failure"
    body = message["message"]
    assert "revision `3f2a9c1d0e5b`" in body and "1 ok, 1 failed" in body
    assert "image pull failed: 404" in body and "(https://ops.example.com/stacks/shop)" in body
    assert_no_secret(json.dumps(message), records=caplog.records)


def test_mail_goes_to_an_smtp_server(monkeypatch, tmp_path, smtp):
    notify_file(monkeypatch, tmp_path, f"  - url: 'mailto://127.0.0.1:{smtp.port}?from=reconciler@example.com"
                                       f"&to=ops@example.com'\n    events: [failed]\n")
    reconciler_notify.reconciler_apply_finished(failed_report())
    assert reconciler_notify.drain(10)
    (mail,) = smtp.messages
    assert "Subject: shop: failed" in mail and "To: ops@example.com" in mail
    assert "image pull failed: 404" in mail and "<strong>Why:</strong>" in mail  # Markdown, as HTML
    assert_no_secret(mail)


def test_targets_get_only_the_events_they_subscribe_to(monkeypatch, tmp_path):
    with Receiver(path="/notify") as failures, Receiver(path="/notify") as applied:
        notify_file(monkeypatch, tmp_path, f"  - {{url: '{json_url(failures)}', events: [failed, rolled-back]}}\n"
                                           f"  - {{url: '{json_url(applied)}', events: [applied]}}\n")
        reconciler_notify.reconciler_apply_finished(failed_report())
        ok = ApplyReport("shop", (Outcome(change("shop-web-1"), Status.OK),), 1.0, trigger="source")
        reconciler_notify.reconciler_apply_finished(ok)
        drifted = ApplyReport("shop", (Outcome(change("shop-web-1"), Status.OK),), 1.0, trigger="engine")
        reconciler_notify.reconciler_apply_finished(drifted)  # drift-repaired: nobody subscribes
        reconciler_notify.reconciler_apply_finished(ApplyReport("shop", (), 0.1))  # converged: nothing
        assert reconciler_notify.drain(10)
        assert [m["title"] for m in received(failures)] == ["shop: failed"]
        assert [m["title"] for m in received(applied)] == ["shop: applied"]


def test_a_storm_of_twenty_failed_passes_is_two_messages_with_counts(monkeypatch, tmp_path, receiver):
    notify_file(monkeypatch, tmp_path, f"  - url: '{json_url(receiver)}'\n", interval="1s")
    for _ in range(20):
        reconciler_notify.reconciler_apply_finished(failed_report())
    wait_until(lambda: len(received(receiver)) == 2, timeout=10)  # the summary goes when the window ends
    first, summary = received(receiver)
    assert first["title"] == "shop: failed"
    assert summary["title"] == "shop: failed (20 times in 1 s)"
    assert summary["message"].startswith("**failed 20 times in 1 s**; the last time:")
    assert reconciler_notify.drain(5) and len(received(receiver)) == 2


def test_no_secret_reaches_a_log_even_when_apprise_logs_at_debug_and_fails(monkeypatch, tmp_path, caplog):
    logging.getLogger("apprise").setLevel(logging.DEBUG)  # someone asked for Apprise's debug lines
    with Receiver([500, 500, 500], path="/notify") as failing:
        port = socket.socket()
        port.bind(("127.0.0.1", 0))
        closed = port.getsockname()[1]
        port.close()
        notify_file(monkeypatch, tmp_path,
                    f"  - {{name: chat, url: '{json_url(failing)}?token={URL_PASSWORD}'}}\n"
                    f"  - {{name: mail, url: 'mailtos://ops:{URL_PASSWORD}@127.0.0.1:{closed}?to=o@example.com'}}\n")
        with caplog.at_level(logging.DEBUG):
            reconciler_notify.reconciler_apply_finished(failed_report())
            assert reconciler_notify.drain(30)
    apprise_lines = [r for r in caplog.records if r.name.startswith("apprise")]
    assert apprise_lines, "Apprise logged nothing: the filter was not exercised"
    ours = [r.getMessage() for r in caplog.records if r.name == "reconciler.notify"]
    assert any("could not notify Apprise target chat (json)" in line for line in ours), ours
    assert any("mail (mailtos)" in line for line in ours), ours
    assert_no_secret(caplog.text, records=caplog.records)


def test_a_pass_on_the_memory_engine_is_told_without_its_secret_env_value(monkeypatch, tmp_path, receiver,
                                                                         memory_engine):
    notify_file(monkeypatch, tmp_path, f"  - url: '{json_url(receiver)}'\n")
    (tmp_path / "stack.yaml").write_text(SPEC)
    reconciler = make_reconciler(memory_engine, plugins={"notify": reconciler_notify})
    desired = load_desired([tmp_path / "stack.yaml"], drivers=reconciler.driver_catalog())
    assert reconciler.apply(desired).trigger == "manual"  # the CLI's: an applied commit, not a drift repair
    assert reconciler_notify.drain(10)
    (message,) = received(receiver)
    assert message["title"] == "demo: applied" and "create container demo-web-1" in message["message"]
    assert_no_secret(json.dumps(message))


def test_a_crash_loop_is_told_by_the_loop_hook(monkeypatch, tmp_path, receiver):
    notify_file(monkeypatch, tmp_path, f"  - {{url: '{json_url(receiver)}', events: [crash-looping]}}\n")
    reconciler_notify.reconciler_pass_finished(stack="shop", report=None, error="", held=None,
                                               crash_looping={"shop-web-1": 4})
    assert reconciler_notify.drain(10)
    (message,) = received(receiver)
    assert message["title"] == "shop: crash looping" and "shop-web-1 (4 times in a row)" in message["message"]


def test_a_loop_tells_a_suspension_once_and_a_pass_that_failed_before_applying(monkeypatch, tmp_path, receiver,
                                                                               memory_engine):
    notify_file(monkeypatch, tmp_path, f"  - url: '{json_url(receiver)}'\n")
    (tmp_path / "stack.yaml").write_text(SPEC)
    reconciler = make_reconciler(memory_engine, plugins={"notify": reconciler_notify})
    desired = load_desired([tmp_path / "stack.yaml"], drivers=reconciler.driver_catalog())
    suspended = threading.Event()
    suspended.set()
    loop = StackLoop(reconciler, lambda: desired, is_suspended=lambda stack: suspended.is_set(),
                     options=LoopOptions(debounce=0.0))
    assert loop.step().suspended is not None  # the start pass: held, told
    for _ in range(2):  # held again at each resync: not told again
        loop.trigger(Trigger.RESYNC)
        assert loop.step().suspended is not None
    suspended.clear()
    memory_engine.fail("observe", PermanentError("the engine is gone"), times=None)
    loop.trigger(Trigger.RESYNC)
    assert "the engine is gone" in loop.step().error
    assert reconciler_notify.drain(10)
    titles = [m["title"] for m in received(receiver)]
    assert titles == ["demo: suspended", "demo: failed"], titles
    suspended_body, failed_body = (m["message"] for m in received(receiver))
    assert "3 change(s) held" in suspended_body and "- create container demo-web-1" in suspended_body
    assert "the engine is gone" in failed_body
    assert_no_secret(suspended_body, failed_body)


def test_the_events_a_target_lists_are_the_documented_names():
    assert {e.value for e in Event} >= {"applied", "failed", "rolled-back", "drift-repaired", "crash-looping",
                                        "suspended", "image.updated", "image.quarantined", "image.released",
                                        "preview.up", "preview.down"}


def test_the_daemon_knows_its_public_url_from_its_api_section(tmp_path):
    from reconciler.daemon.config import load_config
    from reconciler.errors import SpecError

    path = tmp_path / "daemon.yaml"
    base = "sources:\n  - {name: local, dir: ./stacks}\napi:\n  tokens_file: tokens\n"
    path.write_text(base + "  public_url: https://ops.example.com/reconciler\n")
    assert load_config(path).api.public_url == "https://ops.example.com/reconciler"
    path.write_text(base)
    assert load_config(path).api.public_url is None
    path.write_text(base + "  public_url: ops.example.com\n")
    with pytest.raises(SpecError, match="public_url"):
        load_config(path)


def test_a_slow_service_never_holds_up_a_pass_and_one_thread_sends_for_every_stack(monkeypatch, tmp_path):
    with Receiver([("sleep", 1.5)], path="/notify") as slow:
        notify_file(monkeypatch, tmp_path, f"  - url: '{json_url(slow)}'\n")
        before = set(threading.enumerate())
        started = time.monotonic()
        for stack in ("shop", "blog", "wiki", "docs"):
            reconciler_notify.reconciler_apply_finished(failed_report(stack))
        assert time.monotonic() - started < 0.5  # the hook only queued them
        senders = [t for t in threading.enumerate() if t.name.startswith("reconciler-notify-apprise")]
        assert len(senders) == 1 and senders[0] not in before
        assert reconciler_notify.drain(20)
        assert sorted(m["title"] for m in received(slow)) == ["blog: failed", "docs: failed", "shop: failed",
                                                               "wiki: failed"]


def test_a_full_queue_drops_with_a_warning_and_never_blocks(caplog):
    from reconciler_notify.message import Notice
    from reconciler_notify.sender import Sender
    from reconciler_notify.targets import AppriseConfig

    release = threading.Event()
    sent: list[Notice] = []
    sender = Sender(lambda notice, config: (release.wait(5), sent.append(notice)), maxsize=2, at_exit=False)
    config = AppriseConfig(targets=(), interval=0.0)
    results = [sender.submit(Notice(f"s{n}", Event.FAILED), config) for n in range(6)]
    assert results[:2] == [True, True] and results[-1] is False  # one in hand, two queued, the rest dropped
    assert "the Apprise queue is full (2 notices): s5: failed dropped" in caplog.text
    release.set()
    assert sender.close(5) and len(sent) == results.count(True)
