"""The engine connection's timeouts: connecting is always bounded, reading keeps its own limit."""
from __future__ import annotations

import pytest

from reconciler.cli import main
from reconciler.errors import PermanentError
from reconciler_docker.connection import DEFAULT_CONNECT_TIMEOUT, _bounded, connect_timeout


@pytest.mark.parametrize("given, expected", [
    (None, (5.0, None)),  # builds and pulls: no read limit, but a bounded connect
    (120, (5.0, 120)),  # ordinary calls: the SDK's one number is the read limit
    (2, (2, 2)),
    ((None, 30), (5.0, 30)),
    ((1, 30), (1, 30)),
])
def test_every_request_connects_within_the_connect_timeout(given, expected):
    assert _bounded(given, 5.0) == expected


def test_the_connect_timeout_is_a_few_seconds_unless_configured():
    assert connect_timeout({}) == DEFAULT_CONNECT_TIMEOUT <= 10
    assert connect_timeout({"RECONCILER_CONNECT_TIMEOUT": "0.5"}) == 0.5


@pytest.mark.parametrize("value", ["soon", "0", "-1", "inf", "nan"])
def test_a_connect_timeout_that_is_no_duration_is_refused(value):
    with pytest.raises(PermanentError, match=f"RECONCILER_CONNECT_TIMEOUT must be a positive number of seconds, "
                                             f"got '{value}'"):
        connect_timeout({"RECONCILER_CONNECT_TIMEOUT": value})


def test_a_bad_connect_timeout_is_one_line_from_the_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECONCILER_CONNECT_TIMEOUT", "soon")
    spec = tmp_path / "stack.yaml"
    spec.write_text("name: shop\ncontainers: {web: {image: 'x:1'}}\n")
    assert main(["plan", "-f", str(spec), "--engine", f"unix://{tmp_path}/engine.sock"]) == 1
    assert capsys.readouterr().err == (
        "error: RECONCILER_CONNECT_TIMEOUT must be a positive number of seconds, got 'soon'\n")


def test_a_targets_client_certificates_and_ca_survive_requests_ca_bundle(tmp_path, monkeypatch):
    from reconciler.model import TLSFiles
    from reconciler_docker.connection import EngineClient, _settings

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    files = TLSFiles(ca=str(tmp_path / "ca.pem"), cert=str(tmp_path / "cert.pem"), key=str(tmp_path / "key.pem"))
    for path in (files.ca, files.cert, files.key):
        open(path, "w").close()  # the SDK checks they exist; nothing is read before a connection
    settings = _settings("tcp://10.0.0.2:2376", files)
    client = EngineClient(version="1.41", connect_timeout=1.0, **settings)
    assert client.base_url == "https://10.0.0.2:2376" and client.cert == (files.cert, files.key)
    merged = client.merge_environment_settings(client.base_url, {}, False, None, None)
    assert merged["verify"] == files.ca  # requests alone would answer the environment's bundle
    assert _settings("ssh://deploy@host", None)["use_ssh_client"] is True
