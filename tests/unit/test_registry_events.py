"""A registry's push notifications: the envelope read, the bearer secret checked, redeliveries dropped, the route."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from reconciler.daemon import hooks
from reconciler.daemon.auth import Tokens
from reconciler.daemon.config import ApiConfig, Webhook, load_config
from reconciler.daemon.hooks import HookVerifier
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.registryevents import ENVELOPE_TYPE, RegistryPush, push_events, pushes
from reconciler.daemon.server import make_app
from reconciler.errors import SpecError
from reconciler.testing.asgi import asgi_request

SECRET = b"0123456789abcdef-registry"
DIGEST = "sha256:" + "ab" * 32
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def event(action: str = "push", *, tag: str | None = "1.4.1", media: str = MANIFEST, id: str = "e1",
          url: str | None = None, repository: str = "team/app") -> dict:
    """One event as distribution 2.8 writes it (what a real one holds, trimmed)."""
    kind = "manifests" if media == MANIFEST else "blobs"
    target = {"mediaType": media, "size": 528, "digest": DIGEST, "length": 528, "repository": repository,
              "url": url or f"http://127.0.0.1:5000/v2/{repository}/{kind}/{DIGEST}"}
    if tag is not None:
        target["tag"] = tag
    return {"id": id, "timestamp": "2026-12-07T15:43:13.123456789Z", "action": action, "target": target,
            "request": {"id": "r1", "addr": "127.0.0.1:40000", "host": "127.0.0.1:5000", "method": "PUT",
                        "useragent": "docker/20.10"},
            "actor": {"name": "tester"}, "source": {"addr": "host:5000", "instanceID": "i1"}}


def envelope(*events: dict) -> bytes:
    return json.dumps({"events": list(events)}).encode()


AT = datetime(2026, 12, 7, 15, 43, 13, 123456, tzinfo=timezone.utc)


# -- the envelope ----------------------------------------------------------------------------


def test_a_manifest_pushed_with_a_tag_names_host_repository_tag_digest_and_time():
    assert pushes(envelope(event())) == [RegistryPush("127.0.0.1:5000", "team/app", "1.4.1", DIGEST, AT)]
    assert pushes(envelope(event()))[0].at.tzinfo is not None


def test_a_push_by_digest_has_no_tag():
    assert pushes(envelope(event(tag=None))) == [RegistryPush("127.0.0.1:5000", "team/app", "", DIGEST, AT)]


def test_an_oci_index_or_a_manifest_type_not_known_yet_counts_by_its_url():
    index = event(media="application/vnd.oci.image.index.v1+json",
                  url=f"http://127.0.0.1:5000/v2/team/app/manifests/{DIGEST}")
    unknown = event(media="application/vnd.example.manifest+json", id="e2",
                    url=f"http://127.0.0.1:5000/v2/team/app/manifests/{DIGEST}")
    assert [p.tag for p in pushes(envelope(index, unknown))] == ["1.4.1", "1.4.1"]


def test_blob_pushes_pulls_and_deletes_are_ignored():
    blob = event(media="application/octet-stream", tag=None, id="b")
    layer = event(media="application/vnd.docker.image.rootfs.diff.tar.gzip", tag=None, id="l")
    body = envelope(blob, layer, event("pull", id="p"), event("delete", id="d"), event(id="m"))
    assert push_events(body) == [("m", RegistryPush("127.0.0.1:5000", "team/app", "1.4.1", DIGEST, AT))]


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe", b"[]", b'{"events": {}}', b'{"events": [1, null]}',
                                  b'{"other": []}', json.dumps({"events": [{"action": "push"}]}).encode()])
def test_a_malformed_body_names_no_push(body):
    assert pushes(body) == []


def test_an_event_missing_what_names_an_image_is_dropped():
    no_host, no_time = event(id="h"), event(id="t")
    no_host["request"] = {}
    no_time["timestamp"] = "yesterday"
    assert pushes(envelope(no_host, no_time, event(repository=""))) == []


# -- the bearer secret -----------------------------------------------------------------------


def _verifier(**options) -> HookVerifier:
    return HookVerifier(Webhook("registry", "registry", (), secret_env="X"), SECRET, **options)


def test_the_bearer_secret_is_checked_wrong_missing_and_right():
    verifier, body = _verifier(), envelope(event())
    assert verifier.refusal({"authorization": "Bearer " + SECRET.decode()}, body) is None
    missing = verifier.refusal({}, body)
    assert missing.startswith("the delivery has no Authorization header") and "Bearer <secret>" in missing
    for wrong in ("Bearer another-secret-of-16+", SECRET.decode(), "Basic " + SECRET.decode(), "Bearer "):
        assert verifier.refusal({"authorization": wrong}, body) == \
            "the delivery's Authorization does not match this webhook's secret"


def test_the_bearer_secret_is_compared_in_constant_time(monkeypatch):
    compared = []

    def compare(a, b):
        compared.append((a, b))
        return a == b

    monkeypatch.setattr(hooks.hmac, "compare_digest", compare)
    assert _verifier().signed({"authorization": "Bearer " + SECRET.decode()}, b"{}")
    assert compared == [(b"Bearer " + SECRET, b"Bearer " + SECRET)]


def test_an_event_id_seen_before_is_dropped_and_memory_is_bounded():
    verifier = _verifier(remember=3)
    assert verifier.first_events(["a", "b"], b"1") == [True, True]
    assert verifier.first_events(["a", "c"], b"2") == [False, True]
    assert verifier.first_events(["d", "e", "f"], b"3") == [True, True, True]
    assert verifier.first_events(["a"], b"4") == [True]  # forgotten after 3 newer ones


def test_an_event_without_an_id_is_known_by_its_envelope():
    verifier = _verifier()
    assert verifier.first_events(["", ""], b"same") == [True, True]
    assert verifier.first_events(["", ""], b"same") == [False, False]
    assert verifier.first_events([""], b"other") == [True]


# -- the route -------------------------------------------------------------------------------


def _app():
    told: list[list[RegistryPush]] = []
    fetched: list[list[str]] = []
    daemon = SimpleNamespace(reconciler=SimpleNamespace(state=None), workers=[], fetch=fetched.append,
                             registry_pushed=told.append)
    metrics = Metrics()
    app = make_app(daemon, ApiConfig(tokens_file="/nonexistent", max_body=4096), Tokens([]),
                   {"registry": _verifier()}, metrics)
    return app, told, fetched, metrics


def _post(app, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    """(status, JSON answer) of one POST through the app's ASGI interface, no server."""
    status, _, answer = asgi_request(app, "POST", path, body=body, headers=headers.items(), server="127.0.0.1")
    return status, json.loads(answer)


def _deliver(app, body: bytes, secret: bytes = SECRET):
    return _post(app, "/hooks/registry", body, {"Authorization": "Bearer " + secret.decode(),
                                                "Content-Type": ENVELOPE_TYPE})


def test_a_verified_envelope_tells_the_daemon_of_each_new_push_once():
    app, told, fetched, metrics = _app()
    body = envelope(event(id="m1"), event(media="application/octet-stream", tag=None, id="b1"))
    assert _deliver(app, body) == (202, {"pushes": 1, "duplicate": False})
    assert _deliver(app, body) == (202, {"pushes": 0, "duplicate": True})  # the registry's retry
    assert _deliver(app, envelope(event("pull", id="p1"))) == (202, {"pushes": 0, "duplicate": False})
    assert told == [[RegistryPush("127.0.0.1:5000", "team/app", "1.4.1", DIGEST, AT)]] and fetched == []
    counted = {s.labels["result"]: s.value for s in metrics.webhooks.collect()[0].samples if s.name.endswith("_total")}
    assert counted == {"accepted": 2.0, "duplicate": 1.0}


def test_a_wrong_secret_or_an_oversized_body_reaches_nothing_and_its_events_stay_unseen():
    app, told, _, metrics = _app()
    body = envelope(event(id="m1"))
    status, answer = _deliver(app, body, b"another-secret-of-16+")
    assert status == 401 and SECRET.decode() not in json.dumps(answer)
    status, _ = _deliver(app, envelope(event(id="m2", repository="x" * 5000)))
    assert status == 413 and told == []
    assert _deliver(app, body) == (202, {"pushes": 1, "duplicate": False})  # not remembered from the refused one


# -- the configuration -----------------------------------------------------------------------


def _config(tmp_path, *hooks_: dict) -> str:
    path = tmp_path / "daemon.yaml"
    path.write_text(json.dumps({"sources": [{"name": "repo", "git": {"url": "file:///srv/repo.git"}}],
                                "webhooks": list(hooks_)}, indent=1))
    return str(path)


def test_a_registry_webhook_names_no_sources_and_the_others_still_need_them(tmp_path):
    config = load_config(_config(tmp_path, {"name": "reg", "provider": "registry", "secret_env": "S"}))
    assert config.webhooks == (Webhook("reg", "registry", (), secret_env="S"),)
    with pytest.raises(SpecError, match="a registry webhook names no sources"):
        load_config(_config(tmp_path, {"name": "reg", "provider": "registry", "secret_env": "S",
                                       "sources": ["repo"]}))
    with pytest.raises(SpecError, match="a github webhook needs sources"):
        load_config(_config(tmp_path, {"name": "gh", "provider": "github", "secret_env": "S"}))
