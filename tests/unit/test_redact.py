"""The process-wide redactor: secrets registered when loaded never reach a log line, whoever logs it."""
from __future__ import annotations

import io
import json
import logging
from urllib.parse import quote_plus

import pytest

from reconciler.redact import REDACTED, RedactingFilter, redact, register_secrets, without_credentials
from reconciler.spec import load_desired
from reconciler_docker.credentials import CredentialStore

SECRET = 'p4ss word&"7f3a9c'  # spaces and quotes: its JSON and URL forms differ from it


@pytest.fixture
def log():
    """A handler like the CLI's, on a third-party logger's way to the root."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level, root.level = root.level, logging.DEBUG
    yield stream
    root.removeHandler(handler)
    root.level = old_level


def test_a_request_line_with_url_encoded_build_args_is_redacted(log):
    register_secrets([SECRET])
    query = quote_plus(json.dumps({"TOKEN": SECRET, "PLAIN": "visible"}))
    logging.getLogger("urllib3.connectionpool").debug('"POST /v1.41/build?buildargs=%s HTTP/1.1" 200', query)
    written = log.getvalue()
    assert "7f3a9c" not in written
    assert "buildargs=" in written and REDACTED in written and "visible" in written


def test_exceptions_and_stacks_in_records_are_redacted(log):
    register_secrets([SECRET])
    try:
        raise RuntimeError(f"engine said: bad arg {SECRET}")
    except RuntimeError:
        logging.getLogger("docker.api").exception("failed %s", SECRET, stack_info=True)
    written = log.getvalue()
    assert "7f3a9c" not in written and "RuntimeError: engine said: bad arg (secret)" in written


def test_loading_a_spec_registers_its_secret_env_values_and_build_args(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    spec = tmp_path / "stack.yaml"
    spec.write_text("""
name: shop
images:
  app: {build: {context: ./app, args: {TOKEN: {value: "${TOKEN}", secret: true}, PLAIN: plain-arg}}}
containers:
  web:
    image: app
    env: {API_KEY: {value: "${API_KEY}", secret: true}, MODE: plain-env}
""")
    load_desired([spec], environ={"TOKEN": "build-secret-1", "API_KEY": "env-secret-2"})
    text = "build-secret-1 env-secret-2 plain-arg plain-env"
    assert redact(text) == "(secret) (secret) plain-arg plain-env"


def test_a_registry_password_is_registered_when_the_credentials_are_loaded(tmp_path):
    auth = tmp_path / "auth.yaml"
    auth.write_text("registries: {registry.example: {username: bot, password_env: REG_PASSWORD}}\n")
    store = CredentialStore(environ={"RECONCILER_REGISTRY_AUTH": str(auth), "REG_PASSWORD": "hunter2-registry"})
    assert store.for_ref("registry.example/app:1").username == "bot"
    assert redact("login bot:hunter2-registry") == "login bot:(secret)"


@pytest.mark.parametrize("text, shown", [
    ("fatal: unable to access 'https://x-access-token:ghp_abc@github.com/o/r.git/': 403",
     "fatal: unable to access 'https://github.com/o/r.git/': 403"),
    ("https://ghp_abc@host/a@b and ssh://git@host:22/r.git", "https://host/a@b and ssh://host:22/r.git"),
    ("git@github.com:o/r.git, file:///srv/r.git, https://h/x?y=a@b", "git@github.com:o/r.git, file:///srv/r.git, "
     "https://h/x?y=a@b"),
])
def test_urls_lose_their_user_and_password_and_nothing_else(text, shown):
    assert without_credentials(text) == shown
