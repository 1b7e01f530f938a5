"""The engine connection's timeouts: connecting is always bounded, reading keeps its own limit."""
from __future__ import annotations

import pytest

from reconciler.cli import main
from reconciler.errors import PermanentError
from reconciler.sdk.docker import DEFAULT_CONNECT_TIMEOUT, connect_timeout
from reconciler.sdk.docker._connection import _bounded


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
    from reconciler.sdk.docker import EngineClient
    from reconciler.sdk.docker._connection import _settings

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    files = TLSFiles(ca=str(tmp_path / "ca.pem"), cert=str(tmp_path / "cert.pem"), key=str(tmp_path / "key.pem"))
    for path in (files.ca, files.cert, files.key):
        open(path, "w").close()  # the SDK checks they exist; nothing is read before a connection
    settings = _settings("tcp://10.0.0.2:2376", files)
    client = EngineClient(version="1.41", connect_timeout=1.0, **settings)
    assert client.base_url == "https://10.0.0.2:2376" and client.cert == (files.cert, files.key)
    merged = client.merge_environment_settings(client.base_url, {}, False, None, None)
    assert merged["verify"] == files.ca  # requests alone would answer the environment's bundle
    # ssh:// goes through the system's ssh binary (reconciler.sdk.docker._ssh), never paramiko.
    ssh = EngineClient(version="1.41", connect_timeout=1.0, timeout=120, **_settings("ssh://deploy@host:2222", None))
    assert ssh.base_url == "http+docker://ssh"
    assert ssh.get_adapter("http+docker://ssh/v1.41/info").command[0] == "ssh"


def test_the_ssh_command_runs_dial_stdio_in_batch_mode_with_the_users_or_a_named_config(monkeypatch):
    from reconciler.sdk.docker import ssh_command

    monkeypatch.delenv("RECONCILER_SSH_CONFIG", raising=False)
    assert ssh_command("ssh://deploy@edge:2222", connect_timeout=5) == [
        "ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-l", "deploy", "-p", "2222",
        "--", "edge", "docker", "system", "dial-stdio"]
    monkeypatch.setenv("RECONCILER_SSH_CONFIG", "/etc/reconciler/ssh_config")
    assert ssh_command("ssh://edge", connect_timeout=0.2)[:7] == [
        "ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=1", "-F", "/etc/reconciler/ssh_config"]


def test_an_ordinary_read_is_answered_within_the_engine_timeout_and_streams_keep_theirs(monkeypatch):
    from reconciler.sdk.docker import EngineClient

    client = EngineClient(version="1.41", connect_timeout=5.0, answer_timeout=3.0, timeout=120,
                          base_url="unix:///nowhere.sock")
    asked: list[object] = []
    monkeypatch.setattr(client, "get", lambda url, **kwargs: asked.append(kwargs.get("timeout")))
    client._get("http+docker://localhost/containers/json")  # a list of observe
    client._get("http+docker://localhost/containers/x/logs", stream=True)  # a streamed read
    client._get("http+docker://localhost/events", stream=True, timeout=None)  # the event stream
    assert asked == [3.0, 120, None]
    assert _bounded(3.0, 5.0) == (3.0, 3.0)  # what send makes of it


def test_the_engine_timeout_is_ten_seconds_unless_given_or_configured():
    from reconciler.sdk.docker import DEFAULT_ENGINE_TIMEOUT, engine_timeout

    assert engine_timeout(None, {}) == DEFAULT_ENGINE_TIMEOUT == 10
    assert engine_timeout(None, {"RECONCILER_ENGINE_TIMEOUT": "2.5"}) == 2.5
    assert engine_timeout(1.0, {"RECONCILER_ENGINE_TIMEOUT": "2.5"}) == 1.0  # --engine-timeout wins
    with pytest.raises(PermanentError, match="RECONCILER_ENGINE_TIMEOUT must be a positive number of seconds"):
        engine_timeout(None, {"RECONCILER_ENGINE_TIMEOUT": "0"})


def test_an_engine_timeout_flag_that_is_no_duration_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["plan", "-f", str(tmp_path / "stack.yaml"), "--engine-timeout", "0"])
    assert exited.value.code == 2
    assert "--engine-timeout: invalid seconds value: '0'" in capsys.readouterr().err


def test_a_context_waiting_for_its_engine_never_holds_up_another_contexts_connect(monkeypatch):
    # A fleet's targets are contexts of their own: one whose engine never answers must not block the others.
    import threading

    from reconciler.drivers import DriverContext
    from reconciler.sdk.docker import _client
    from reconciler.testing.fakedocker import FakeDockerAPI

    release = threading.Event()

    def open_engine(url, *, tls=None, timeout=None):
        if url == "tcp://silent:2375":
            release.wait(30)
        return _client.Engine(FakeDockerAPI(), url)

    monkeypatch.setattr(_client, "open_engine", open_engine)
    silent, healthy = DriverContext("s", engine_url="tcp://silent:2375"), DriverContext("s", engine_url="unix:///ok")
    waiting = threading.Thread(target=_client.engine_identity, args=(silent,), daemon=True)
    waiting.start()
    try:
        answered = threading.Thread(target=_client.engine_identity, args=(healthy,), daemon=True)
        answered.start()
        answered.join(5)
        assert not answered.is_alive() and _client.engine_identity(healthy) == "unix:///ok"
    finally:
        release.set()
        waiting.join(5)
    assert _client.engine_identity(silent) == "tcp://silent:2375"
