"""``POST /hooks/NAME`` through the daemon's app (no server, no engine): what a sender is told, what fetches."""
from __future__ import annotations

import hashlib
import hmac
import json
from types import SimpleNamespace

from reconciler.daemon.auth import Tokens
from reconciler.daemon.config import ApiConfig, Webhook
from reconciler.daemon.hooks import HookVerifier
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.server import make_app
from reconciler.testing.asgi import asgi_request

SECRET = b"0123456789abcdef-secret"


def _app(provider: str = "generic"):
    fetched: list[list[str]] = []
    daemon = SimpleNamespace(reconciler=SimpleNamespace(state=None), workers=[], fetch=fetched.append)
    hooks = {provider: HookVerifier(Webhook(provider, provider, ("repo",), secret_env="X"), SECRET)}
    metrics = Metrics()
    return make_app(daemon, ApiConfig(tokens_file="/nonexistent"), Tokens([]), hooks, metrics), fetched, metrics


def _post(app, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    status, _, answer = asgi_request(app, "POST", path, body=body, headers=headers.items(), server="127.0.0.1")
    return status, json.loads(answer)


def _signature(body: bytes) -> dict[str, str]:
    return {"X-Signature-256": "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()}


def test_a_delivery_without_its_signature_header_is_told_which_header_is_missing():
    app, fetched, _ = _app()
    status, answer = _post(app, "/hooks/generic", b"{}", {"X-Delivery-Id": "1"})
    assert status == 401 and answer["error"].startswith("the delivery has no X-Signature-256 header")
    status, answer = _post(app, "/hooks/generic", b"{}", {"X-Signature-256": "sha256=00", "X-Delivery-Id": "2"})
    assert status == 401 and answer == {"error": "the delivery's X-Signature-256 does not match this webhook's secret"}
    assert fetched == []


def test_a_delivery_without_an_id_is_deduplicated_by_its_body():
    app, fetched, metrics = _app()
    push = b'{"after": "1"}'
    answers = [_post(app, "/hooks/generic", push, _signature(push)) for _ in range(3)]
    assert answers == [(202, {"fetch": ["repo"], "duplicate": False})] + [(202, {"fetch": [], "duplicate": True})] * 2
    other = b'{"after": "2"}'
    assert _post(app, "/hooks/generic", other, _signature(other)) == (202, {"fetch": ["repo"], "duplicate": False})
    assert fetched == [["repo"], ["repo"]]
    counted = {s.labels["result"]: s.value for s in metrics.webhooks.collect()[0].samples if s.name.endswith("_total")}
    assert counted == {"accepted": 2.0, "duplicate": 2.0}
