"""The notify plugin: payload, signature, configuration, and delivery to a real local HTTP server.

Delivery tests talk to an ``http.server`` on 127.0.0.1 with an ephemeral
port, started by each test: real sockets, real status codes, no engine.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from ..http_receiver import Receiver

import reconciler_notify
from reconciler.model import Kind
from reconciler.plan import Action, Change
from reconciler.plugins import make_plugin_manager
from reconciler.report import ApplyReport, Outcome, Status
from reconciler_notify.config import NotifyConfigError, load_config
from reconciler_notify.delivery import deliver_all, time_budget
from reconciler_notify.payload import build_payload, encode_payload, request_headers, sign

SECRET = "s3cr3t-notify-key-do-not-leak"


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch):
    # Only loopback may be contacted: a proxy from the environment must not intercept.
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("RECONCILER_NOTIFY_URLS", "RECONCILER_NOTIFY_SECRET", "RECONCILER_NOTIFY_SECRET_FILE",
                 "RECONCILER_NOTIFY_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- reports -----------------------------------------------------------------

def change(kind: Kind, name: str, action: Action) -> Change:
    return Change(action, kind, name, key=name)


def make_report(**kw) -> ApplyReport:
    outcomes = (
        Outcome(change(Kind.NETWORK, "shop-back", Action.CREATE), Status.OK, seconds=0.1234),
        Outcome(change(Kind.CONTAINER, "shop-web-1", Action.REPLACE), Status.FAILED, "image pull failed: 404", 1.2),
        Outcome(change(Kind.CONTAINER, "shop-worker-1", Action.CREATE), Status.SKIPPED, "container:shop-web-1 failed", 0.0),
    )
    return ApplyReport(kw.pop("stack", "shop"), kw.pop("outcomes", outcomes), kw.pop("seconds", 2.3149))


@dataclass(frozen=True)
class RevisedReport(ApplyReport):
    """The report as it will be once the core adds ``revision``."""

    revision: str = ""


def verify(body: bytes, header: str, secret: str = SECRET) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


# --- payload -----------------------------------------------------------------

def test_payload_summarises_the_report():
    now = datetime(2026, 11, 28, 0, 0, 0, tzinfo=timezone.utc)
    payload = build_payload(make_report(), now=now)
    assert payload == {
        "stack": "shop",
        "revision": None,
        "ok": False,
        "duration_seconds": 2.315,
        "counts": {"ok": 1, "failed": 1, "skipped": 1},
        "changes": [
            {"id": "network:shop-back", "action": "create", "reason": "new", "status": "ok", "error": None,
             "seconds": 0.123},
            {"id": "container:shop-web-1", "action": "replace", "reason": "new", "status": "failed",
             "error": "image pull failed: 404", "seconds": 1.2},
            {"id": "container:shop-worker-1", "action": "create", "reason": "new", "status": "skipped",
             "error": "container:shop-web-1 failed", "seconds": 0.0},
        ],
        "failures": [{"id": "container:shop-web-1", "error": "image pull failed: 404", "temporary": False}],
        "sent_at": "2026-11-28T00:00:00Z",
    }
    assert json.loads(encode_payload(payload)) == payload


def test_payload_of_a_converged_apply_and_a_revision():
    report = RevisedReport("shop", (), 0.0, revision="0123abcd")
    payload = build_payload(report)
    assert payload["ok"] is True and payload["revision"] == "0123abcd"
    assert payload["changes"] == [] and payload["failures"] == []
    assert payload["counts"] == {"ok": 0, "failed": 0, "skipped": 0}
    assert payload["sent_at"].endswith("Z")


def test_signature_is_hmac_sha256_of_the_exact_body():
    body = encode_payload(build_payload(make_report()))
    header = sign(body, SECRET.encode())
    assert verify(body, header)
    assert not verify(body + b" ", header)
    headers = request_headers(body, SECRET.encode())
    assert headers["X-Reconciler-Signature"] == header
    assert headers["X-Reconciler-Event"] == "apply"
    assert headers["Content-Type"] == "application/json"
    assert "X-Reconciler-Signature" not in request_headers(body, None)


# --- configuration -----------------------------------------------------------

def test_config_parses_urls_and_skips_unusable_ones(caplog):
    config = load_config({"RECONCILER_NOTIFY_URLS": " http://127.0.0.1:1/a , ,https://example.test/b,"
                                                    "file:///etc/passwd,http://u:pw@127.0.0.1/,http://127.0.0.1:1/a"})
    assert config.urls == ("http://127.0.0.1:1/a", "https://example.test/b")
    assert config.secret is None and config.timeout == 5.0
    assert "pw" not in caplog.text


def test_config_secret_from_variable_or_file_never_both(tmp_path):
    key = tmp_path / "key"
    key.write_text(SECRET + "\n")
    assert load_config({"RECONCILER_NOTIFY_SECRET": SECRET}).secret == SECRET.encode()
    config = load_config({"RECONCILER_NOTIFY_SECRET_FILE": str(key)})
    assert config.secret == SECRET.encode()
    assert SECRET not in repr(config)
    with pytest.raises(NotifyConfigError, match="not both") as both:
        load_config({"RECONCILER_NOTIFY_SECRET": SECRET, "RECONCILER_NOTIFY_SECRET_FILE": str(key)})
    assert SECRET not in str(both.value)
    with pytest.raises(NotifyConfigError, match="cannot read"):
        load_config({"RECONCILER_NOTIFY_SECRET_FILE": str(tmp_path / "missing")})


@pytest.mark.parametrize("raw, expected", [("", 5.0), ("2.5", 2.5), ("0", 5.0), ("-1", 5.0), ("nan", 5.0),
                                           ("soon", 5.0), ("3600", 60.0)])
def test_config_timeout(raw, expected):
    assert load_config({"RECONCILER_NOTIFY_TIMEOUT": raw}).timeout == expected


def test_no_urls_means_no_request(monkeypatch):
    def forbidden(*args, **kw):
        raise AssertionError("a request was attempted")

    monkeypatch.setattr("reconciler_notify.delivery.deliver_all", forbidden)
    assert reconciler_notify.notify(make_report(), {}) == []
    assert reconciler_notify.notify(make_report(), {"RECONCILER_NOTIFY_URLS": " , "}) == []
    reconciler_notify.reconciler_apply_finished(make_report())


# --- delivery to a real server -----------------------------------------------

def test_delivers_a_signed_body(caplog):
    caplog.set_level(logging.DEBUG, logger="reconciler.notify")
    report = make_report()
    with Receiver() as receiver:
        results = reconciler_notify.notify(report, {"RECONCILER_NOTIFY_URLS": receiver.url,
                                                    "RECONCILER_NOTIFY_SECRET": SECRET})
    assert [(r.ok, r.status, r.attempts) for r in results] == [(True, 200, 1)]
    [(path, headers, body)] = receiver.requests
    assert path == "/hook"
    assert verify(body, headers["X-Reconciler-Signature"])
    assert headers["X-Reconciler-Event"] == "apply" and headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    assert payload["stack"] == "shop" and payload["failures"][0]["id"] == "container:shop-web-1"
    assert_no_secret(caplog, headers["X-Reconciler-Signature"])


def test_server_error_is_retried_then_delivered():
    with Receiver([500]) as receiver:
        [result] = deliver_all(b"{}", request_headers(b"{}", None), [receiver.url], timeout=2)
    assert (result.ok, result.attempts, result.status) == (True, 2, 200)
    assert len(receiver.requests) == 2
    # a retry resends the same delivery: receivers may deduplicate on its id
    first, second = (headers["X-Reconciler-Delivery"] for _, headers, _ in receiver.requests)
    assert first == second


def test_client_error_is_not_retried():
    with Receiver([400]) as receiver:
        [result] = deliver_all(b"{}", request_headers(b"{}", None), [receiver.url], timeout=2)
    assert (result.ok, result.attempts, result.status) == (False, 1, 400)
    assert len(receiver.requests) == 1


def test_redirect_is_not_followed():
    with Receiver() as elsewhere:
        with Receiver([("redirect", elsewhere.url)]) as receiver:
            [result] = deliver_all(b"{}", request_headers(b"{}", SECRET.encode()), [receiver.url], timeout=2)
    assert not result.ok and result.status == 302 and "redirect" in result.error
    assert len(receiver.requests) == 1
    assert elsewhere.requests == []


def test_unreachable_receiver_returns_quickly_without_raising(caplog):
    url = f"http://127.0.0.1:{free_port()}/hook"
    started = time.monotonic()
    results = reconciler_notify.notify(make_report(), {"RECONCILER_NOTIFY_URLS": url,
                                                       "RECONCILER_NOTIFY_SECRET": SECRET})
    assert time.monotonic() - started < 3
    assert [(r.ok, r.attempts) for r in results] == [(False, 3)]
    assert "could not notify http://127.0.0.1" in caplog.text
    assert_no_secret(caplog)


def test_a_slow_receiver_is_bounded_by_the_time_budget():
    with Receiver([("sleep", 5)] * 3) as receiver:
        started = time.monotonic()
        [result] = deliver_all(b"{}", request_headers(b"{}", None), [receiver.url], timeout=0.3)
        elapsed = time.monotonic() - started
    assert not result.ok and result.attempts == 3
    assert elapsed < time_budget(0.3) + 0.5


def test_urls_are_notified_concurrently():
    with Receiver([("sleep", 0.6)]) as one, Receiver([("sleep", 0.6)]) as two:
        started = time.monotonic()
        results = deliver_all(b"{}", request_headers(b"{}", None), [one.url, two.url], timeout=3)
        elapsed = time.monotonic() - started
    assert [r.ok for r in results] == [True, True]
    assert elapsed < 1.1


def test_tokens_in_url_paths_stay_out_of_logs(caplog):
    caplog.set_level(logging.DEBUG, logger="reconciler.notify")
    with Receiver([400]) as receiver:
        reconciler_notify.notify(make_report(), {"RECONCILER_NOTIFY_URLS": receiver.url + "/T0KEN-in-path"})
    assert "could not notify" in caplog.text and "T0KEN" not in caplog.text


# --- the hook ----------------------------------------------------------------

def test_hook_never_raises(monkeypatch, caplog):
    def broken(report, environ):
        raise RuntimeError(SECRET)

    monkeypatch.setattr(reconciler_notify, "notify", broken)
    reconciler_notify.reconciler_apply_finished(make_report())
    assert "apply notification failed" in caplog.text
    assert_no_secret(caplog)


def test_hook_is_registered_through_the_entry_point():
    pm = make_plugin_manager(disabled=())
    plugins = {impl.plugin for impl in pm.hook.reconciler_apply_finished.get_hookimpls()}
    assert reconciler_notify in plugins


def test_hook_reads_the_environment(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="reconciler.notify")
    with Receiver() as receiver:
        monkeypatch.setenv("RECONCILER_NOTIFY_URLS", receiver.url)
        monkeypatch.setenv("RECONCILER_NOTIFY_SECRET", SECRET)
        reconciler_notify.reconciler_apply_finished(make_report())
    [(_, headers, body)] = receiver.requests
    assert verify(body, headers["X-Reconciler-Signature"])
    assert_no_secret(caplog, headers["X-Reconciler-Signature"])


def assert_no_secret(caplog, *also: str) -> None:
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + str(record.exc_text or "")
        for value in (SECRET, *also):
            assert value not in text


def test_an_image_event_is_delivered_signed_through_the_hook():
    from reconciler.model import ImageEvent, ImageEventKind
    from reconciler.plugins import call_hook

    event = ImageEvent(ImageEventKind.QUARANTINED, "shop", "app", "reg.example/app:1.4.2", version="1.4.2",
                       commit="9" * 40, reason="container shop-web-1 exited with code 3")
    with Receiver() as receiver:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("RECONCILER_NOTIFY_URLS", receiver.url)
            patch.setenv("RECONCILER_NOTIFY_SECRET", SECRET)
            call_hook(make_plugin_manager(), "reconciler_image_event", event=event)
    [(path, headers, body)] = receiver.requests
    assert headers["X-Reconciler-Event"] == "image"
    assert headers["X-Reconciler-Signature"] == sign(body, SECRET.encode())
    sent = json.loads(body)
    assert sent["event"] == "image.quarantined" and sent["stack"] == "shop" and sent["image"] == "app"
    assert sent["version"] == "1.4.2" and sent["after"] is None and sent["reason"].endswith("code 3")
