"""The daemon's doors without a server: tokens, sessions, webhook signatures, their configuration."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from reconciler.daemon.auth import Access, Principal, Sessions, load_tokens
from reconciler.daemon.config import Webhook, load_config
from reconciler.daemon.hooks import HookVerifier, secret_of
from reconciler.errors import SpecError

GOOD = "a" * 24
SECRET = b"0123456789abcdef-secret"


def _tokens(tmp_path, text: str, mode: int = 0o600):
    path = tmp_path / "tokens"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_tokens_are_read_and_checked(tmp_path):
    tokens = load_tokens(str(_tokens(tmp_path, f"# who what token\nci write {GOOD}\n\nviewer read {'b' * 20}  # ro\n")))
    assert tokens.check(GOOD).name == "ci" and tokens.check(GOOD).access is Access.WRITE
    assert tokens.check("b" * 20).can_write is False
    for wrong in ("", None, GOOD[:-1], GOOD + "a", "b" * 20 + " "):
        assert tokens.check(wrong) is None


@pytest.mark.parametrize("text, message", [
    ("ci write\n", "tokens:1: expected NAME ACCESS TOKEN, found 2 field(s)"),
    (f"ci admin {GOOD}\n", "tokens:1: access 'admin' is not one of read, write"),
    ("\nci write short\n", "tokens:2: the token of 'ci' is shorter than 16 characters"),
    (f"ci write {GOOD}\nci read {'c' * 20}\n", "tokens:2: 'ci' is named twice"),
    ("# nothing\n", "no token in the API tokens file"),
])
def test_a_bad_tokens_file_is_refused_at_its_line(tmp_path, text, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_tokens(str(_tokens(tmp_path, text)))


def test_a_tokens_file_others_can_read_is_refused(tmp_path):
    path = _tokens(tmp_path, f"ci write {GOOD}\n", mode=0o640)
    with pytest.raises(SpecError, match=r"can be read by others \(mode 0640\); chmod 600"):
        load_tokens(str(path))


def test_sessions_open_expire_and_close():
    sessions = Sessions(hours=1)
    principal = Principal("ci", Access.READ)
    session_id, csrf = sessions.open(principal)
    assert sessions.get(session_id) == (principal, csrf)
    assert sessions.get("forged") is None and sessions.get(None) is None
    sessions.close(session_id)
    assert sessions.get(session_id) is None
    short = Sessions(hours=-1)  # already expired
    assert short.get(short.open(principal)[0]) is None


def _verifier(provider: str) -> HookVerifier:
    return HookVerifier(Webhook("h", provider, ("repo",), secret_env="X"), SECRET)


def _signed(provider: str, body: bytes, secret: bytes = SECRET) -> dict:
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return {"github": {"x-hub-signature-256": "sha256=" + digest}, "gitea": {"x-gitea-signature": digest},
            "gitlab": {"x-gitlab-token": secret.decode()}, "generic": {"x-signature-256": "sha256=" + digest}}[provider]


@pytest.mark.parametrize("provider", ["github", "gitea", "gitlab", "generic"])
def test_each_provider_signature_is_checked(provider):
    verifier, body = _verifier(provider), b'{"ref": "refs/heads/main"}'
    assert verifier.signed(_signed(provider, body), body)
    assert not verifier.signed(_signed(provider, body, b"another-secret-of-16+"), body)
    assert not verifier.signed({}, body)
    if provider != "gitlab":  # GitLab's token does not cover the body
        assert not verifier.signed(_signed(provider, body), body + b" ")


def test_a_delivery_id_is_honoured_once_and_memory_is_bounded():
    verifier = HookVerifier(Webhook("h", "github", ("repo",), secret_env="X"), SECRET, remember=3)
    first, body = {"x-github-delivery": "1"}, b"{}"
    assert verifier.first_delivery(first, body) and not verifier.first_delivery(first, body)
    for n in "234":
        assert verifier.first_delivery({"x-github-delivery": n}, body)
    assert verifier.first_delivery(first, body)  # forgotten after 3 newer ones


def test_a_delivery_without_an_id_is_known_by_its_body_for_a_short_window():
    now = [1000.0]
    verifier = HookVerifier(Webhook("h", "generic", ("repo",), secret_env="X"), SECRET, window=60,
                            clock=lambda: now[0])
    push, other = b'{"after": "1"}', b'{"after": "2"}'
    assert verifier.first_delivery({}, push)
    assert not verifier.first_delivery({}, push)  # a redelivery, or a replay of the same signed bytes
    assert verifier.first_delivery({}, other)
    now[0] += 61  # the same bytes later: a sender whose body never changes, telling of a new push
    assert verifier.first_delivery({}, push) and not verifier.first_delivery({}, push)
    assert verifier.first_delivery({"x-delivery-id": "a"}, push)  # an id, when there is one, decides


@pytest.mark.parametrize("provider, header", [("github", "X-Hub-Signature-256"), ("gitea", "X-Gitea-Signature"),
                                              ("gitlab", "X-Gitlab-Token"), ("generic", "X-Signature-256")])
def test_a_missing_signature_header_is_named_not_called_a_mismatch(provider, header):
    verifier, body = _verifier(provider), b"{}"
    missing = verifier.refusal({}, body)
    assert missing.startswith(f"the delivery has no {header} header") and "does not match" not in missing
    assert verifier.refusal(_signed(provider, body, b"another-secret-of-16+"), body) == \
        f"the delivery's {header} does not match this webhook's secret"
    assert verifier.refusal(_signed(provider, body), body) is None


def test_a_webhook_secret_must_exist_and_be_long_enough(tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", "short")
    with pytest.raises(SpecError, match="webhook h: its secret is missing or shorter than 16"):
        secret_of(Webhook("h", "github", ("repo",), secret_env="HOOK_SECRET"))
    with pytest.raises(SpecError, match="cannot read its secret file"):
        secret_of(Webhook("h", "github", ("repo",), secret_file=str(tmp_path / "missing")))
    (tmp_path / "s").write_text("x" * 20 + "\n")
    assert secret_of(Webhook("h", "github", ("repo",), secret_file=str(tmp_path / "s"))) == b"x" * 20


def _config(tmp_path, **extra) -> str:
    path = tmp_path / "daemon.yaml"
    path.write_text(json.dumps({"sources": [{"name": "repo", "git": {"url": "file:///srv/repo.git"}},
                                            {"name": "here", "dir": "."}], **extra}, indent=1))
    return str(path)


def test_api_and_webhooks_are_read_from_the_daemon_file(tmp_path):
    config = load_config(_config(tmp_path, api={"tokens_file": "tokens", "listen": "[::1]:9443",
                                                "tls": {"cert": "c.pem", "key": "k.pem"}},
                                 webhooks=[{"name": "gh", "provider": "github", "secret_env": "S",
                                            "sources": ["repo"]}]))
    assert (config.api.host, config.api.port, config.api.max_body) == ("::1", 9443, 1024 * 1024)
    assert config.api.tokens_file == str(tmp_path / "tokens") and config.api.tls_cert == str(tmp_path / "c.pem")
    assert config.webhooks == (Webhook("gh", "github", ("repo",), secret_env="S"),)
    assert load_config(_config(tmp_path)).api is None


@pytest.mark.parametrize("hooks, message", [
    ([{"name": "gh", "provider": "github", "secret_env": "S", "sources": ["nope"]}], "no source is named 'nope'"),
    ([{"name": "gh", "provider": "github", "secret_env": "S", "sources": ["here"]}], "source 'here' is a directory"),
    ([{"name": "gh", "provider": "github", "secret_env": "S", "sources": ["repo"]}] * 2,
     "webhook 'gh' is defined twice"),
    ([{"name": "gh", "provider": "bitbucket", "secret_env": "S", "sources": ["repo"]}], "webhooks"),
    ([{"name": "gh", "provider": "github", "sources": ["repo"]}], "webhooks"),
])
def test_a_bad_webhook_is_refused_at_its_line(tmp_path, hooks, message):
    with pytest.raises(SpecError, match=message) as refused:
        load_config(_config(tmp_path, webhooks=hooks))
    assert "daemon.yaml:" in str(refused.value)
