"""The notify plugin end to end: a real apply through the CLI posts a signed summary."""
from __future__ import annotations

import hashlib
import hmac
import json
import os

import pytest

from ..http_receiver import Receiver

pytestmark = pytest.mark.engine

SECRET = "notify-KEY-5d1e-never-printed"

SPEC = """
name: STACK
containers:
  web:
    image: BASE
    command: ["sleep", "3600"]
    init: true
"""


def test_apply_posts_a_signed_summary(stack):
    stack.write(SPEC)
    no_proxy = ",".join(filter(None, [os.environ.get("no_proxy"), "127.0.0.1"]))
    with Receiver() as receiver:
        result = stack.apply(env={"RECONCILER_NOTIFY_URLS": receiver.url, "RECONCILER_NOTIFY_SECRET": SECRET,
                                  "no_proxy": no_proxy, "NO_PROXY": no_proxy})
    assert result.code == 0, result.err
    assert f"{stack.name}-web-1" in stack.containers()

    [(_, headers, body)] = receiver.requests
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, headers["X-Reconciler-Signature"])
    assert headers["X-Reconciler-Event"] == "apply"
    payload = json.loads(body)
    assert payload["stack"] == stack.name and payload["ok"] is True
    # web names no network: the stack's default network is created first.
    assert [(c["id"], c["status"]) for c in payload["changes"]] == [(f"network:{stack.name}_default", "ok"),
                                                                    (f"container:{stack.name}-web-1", "ok")]
    assert payload["counts"] == {"ok": 2, "failed": 0, "skipped": 0} and payload["failures"] == []
    assert SECRET not in result.out + result.err
    assert headers["X-Reconciler-Signature"] not in result.out + result.err


def test_an_unreachable_receiver_does_not_fail_the_apply(stack):
    stack.write(SPEC)
    result = stack.apply(env={"RECONCILER_NOTIFY_URLS": "http://127.0.0.1:9/nobody-listens",
                              "RECONCILER_NOTIFY_SECRET": SECRET, "RECONCILER_NOTIFY_TIMEOUT": "1"})
    assert result.code == 0, result.err
    assert f"{stack.name}-web-1" in stack.containers()
    assert SECRET not in result.out + result.err
