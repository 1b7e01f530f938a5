"""The notify plugin tells preview stacks coming up and going away: ``preview.up`` and ``preview.down``.

Through the ``reconciler_preview_changed`` hook (called through pluggy, as the daemon calls it), to Apprise's
``json://`` on a local receiver (``tests/http_receiver.py``) and to the signed JSON webhook; the messages are
pure functions, checked on their own too. A preview's change is never a storm: each is one message.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging

import pytest

import reconciler_notify
from reconciler.model import Preview
from reconciler.plugins import call_hook, make_plugin_manager
from reconciler_notify.events import Event, parse_events
from reconciler_notify.message import preview_notice, render
from reconciler_notify.storm import Storms

from ..http_receiver import Receiver
from ..waiting import wait_until

URL_PASSWORD = "url-pa55word-kept-secret"
SECRET = "s3cr3t-notify-key-do-not-leak"
UP = Preview("repo", "feature/login", "app", stack="shop-feature-login", base="shop",
             revision="3f2a9c1d0e5b7a8c" + "0" * 24, created=1.0, pushed=2.0, state="up",
             urls=("http://203.0.113.7:30001", "http://203.0.113.7:30002"))
DOWN = Preview("repo", "feature/login", "app", stack="shop-feature-login", base="shop", revision=UP.revision,
               created=1.0, pushed=2.0, state="up", urls=UP.urls, reason="branch merged")


@pytest.fixture(autouse=True)
def fresh_plugin(monkeypatch):
    """A sender of this test's own; no proxy, no variable of the plugin's from outside; Apprise's logger kept."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                 "RECONCILER_NOTIFY_URLS", "RECONCILER_NOTIFY_SECRET", "RECONCILER_NOTIFY_SECRET_FILE",
                 "RECONCILER_NOTIFY_APPRISE_FILE", "RECONCILER_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(reconciler_notify, "_sender", None)
    level = logging.getLogger("apprise").level
    yield
    if reconciler_notify._sender is not None:
        reconciler_notify._sender.close(5)
    logging.getLogger("apprise").setLevel(level)


def _notify_file(monkeypatch, tmp_path, receiver: Receiver, events: str = "[preview]") -> None:
    url = f"json://bot:{URL_PASSWORD}@127.0.0.1:{receiver.server.server_address[1]}/notify"
    path = tmp_path / "notify.yaml"
    path.write_text(f"interval: 5m\ntargets:\n  - {{name: chat, url: '{url}', events: {events}}}\n")
    monkeypatch.setenv("RECONCILER_NOTIFY_APPRISE_FILE", str(path))


def _received(receiver: Receiver) -> list[dict]:
    with receiver.lock:
        return [json.loads(body) for _, _, body in receiver.requests]


def _tell(preview: Preview, event: str) -> None:
    call_hook(make_plugin_manager(), "reconciler_preview_changed", preview=preview, event=event)


# -- the messages ------------------------------------------------------------------------------------------------

def test_up_says_stack_branch_short_revision_and_links_each_url_and_the_stacks_page():
    title, body = render(preview_notice(UP, "up"), public_url="https://ops.example.com/reconciler/")
    assert title == "shop-feature-login: preview up"
    assert body.splitlines() == [
        "revision `3f2a9c1d0e5b`",
        "preview of shop at branch `feature/login` of source repo",
        "- <http://203.0.113.7:30001>",
        "- <http://203.0.113.7:30002>",
        "",
        "[Status page](https://ops.example.com/reconciler/stacks/shop-feature-login)"]


def test_down_says_why_and_links_the_overview_for_its_stack_is_gone():
    title, body = render(preview_notice(DOWN, "down"), public_url="https://ops.example.com")
    assert title == "shop-feature-login: preview down"
    assert "removed with its volumes: branch merged" in body and "30001" not in body
    assert body.endswith("[Status page](https://ops.example.com/)")
    assert "Status page" not in render(preview_notice(DOWN, "down"))[1]  # no public URL known: no link
    unnamed = Preview("repo", "feature/slow", "app", base="shop", state="waiting", reason="branch deleted")
    assert render(preview_notice(unnamed, "down"))[0] == "shop: preview down"  # its spec never loaded


def test_preview_events_are_subscribed_by_name_or_group_and_never_a_storm():
    assert parse_events(["preview"]) == parse_events(["preview.up", "preview.down"])
    assert not Event.PREVIEW_UP.throttled and not Event.PREVIEW_DOWN.throttled and Event.FAILED.throttled
    storms, notice = Storms(clock=lambda: 0.0), preview_notice(UP, "up")
    assert [storms.offer(notice, 300) for _ in range(3)] == [notice] * 3  # at once, each time
    assert storms.next_due() is None and storms.flush() == []


# -- through the hook --------------------------------------------------------------------------------------------

def test_up_and_down_reach_a_json_target_one_message_each(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("RECONCILER_PUBLIC_URL", "https://ops.example.com")
    with Receiver(path="/notify") as receiver:
        _notify_file(monkeypatch, tmp_path, receiver)
        with caplog.at_level(logging.DEBUG):
            for event in ("up", "down", "up", "down"):  # a flapping branch: still one message per change
                _tell(UP if event == "up" else DOWN, event)
            assert reconciler_notify.drain(10)
        wait_until(lambda: len(_received(receiver)) == 4, timeout=10)
        messages = _received(receiver)
    assert [m["title"] for m in messages] == ["shop-feature-login: preview up", "shop-feature-login: preview down"] * 2
    assert [m["type"] for m in messages[:2]] == ["success", "info"]
    assert "http://203.0.113.7:30001" in messages[0]["message"] and "branch merged" in messages[1]["message"]
    assert "(https://ops.example.com/stacks/shop-feature-login)" in messages[0]["message"]
    for text in [json.dumps(messages), caplog.text]:
        assert URL_PASSWORD not in text


def test_a_target_that_does_not_subscribe_hears_nothing(monkeypatch, tmp_path):
    with Receiver(path="/notify") as receiver:
        _notify_file(monkeypatch, tmp_path, receiver, events="[failed, image]")
        _tell(UP, "up")
        assert reconciler_notify.drain(5)
        assert _received(receiver) == []


def test_the_signed_webhook_gets_the_same_event(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="reconciler.notify")
    with Receiver() as receiver:
        monkeypatch.setenv("RECONCILER_NOTIFY_URLS", receiver.url)
        monkeypatch.setenv("RECONCILER_NOTIFY_SECRET", SECRET)
        _tell(UP, "up")
        _tell(DOWN, "down")
    (_, up_headers, up_body), (_, down_headers, down_body) = receiver.requests
    for headers, body in ((up_headers, up_body), (down_headers, down_body)):
        assert headers["X-Reconciler-Event"] == "preview"
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Reconciler-Signature"], expected)
    up, down = json.loads(up_body), json.loads(down_body)
    assert {k: v for k, v in up.items() if k != "sent_at"} == {
        "event": "preview.up", "stack": "shop-feature-login", "base": "shop", "source": "repo",
        "branch": "feature/login", "path": "app", "revision": UP.revision, "state": "up",
        "urls": ["http://203.0.113.7:30001", "http://203.0.113.7:30002"], "reason": None}
    assert down["event"] == "preview.down" and down["reason"] == "branch merged"
    assert SECRET not in caplog.text


def test_an_unknown_event_is_logged_and_changes_nothing(monkeypatch, tmp_path, caplog):
    with Receiver(path="/notify") as receiver:
        _notify_file(monkeypatch, tmp_path, receiver)
        _tell(UP, "sideways")  # never raises into the daemon
        assert reconciler_notify.drain(5)
        assert _received(receiver) == []
    assert "Apprise preview notification failed: ValueError" in caplog.text
