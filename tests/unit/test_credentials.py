"""Registry credentials: where they are found, in which order, and that secrets never show."""
from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from reconciler_docker.credentials import (
    HUB,
    Credential,
    CredentialError,
    CredentialStore,
    config_key,
    registry_host,
)
from reconciler_docker.images import (
    AuthenticationFailed,
    ImageNotFound,
    RateLimited,
    RegistryUnreachable,
    pull_error,
)

HOST = "127.0.0.1:5000"


@pytest.mark.parametrize("ref, host", [
    ("busybox", HUB),
    ("library/busybox:1", HUB),
    ("docker.io/library/busybox", HUB),
    ("index.docker.io/x/y", HUB),
    ("127.0.0.1:5000/test/busybox:1", HOST),
    ("localhost/app", "localhost"),
    ("ghcr.io/org/app@sha256:abc", "ghcr.io"),
    ("myuser/app:latest", HUB),
])
def test_registry_host_follows_docker_rules(ref, host):
    assert registry_host(ref) == host


def test_config_key_of_docker_hub_is_the_v1_index():
    assert config_key(HUB) == "https://index.docker.io/v1/"
    assert config_key(HOST) == HOST


def _store(tmp_path, **environ) -> CredentialStore:
    environ.setdefault("DOCKER_CONFIG", str(tmp_path / "docker"))
    environ.setdefault("PATH", os.environ["PATH"])
    return CredentialStore(environ)


def _docker_config(tmp_path, config: dict) -> None:
    folder = tmp_path / "docker"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))


def _auth_file(tmp_path, text: str) -> str:
    path = tmp_path / "registries.yaml"
    path.write_text(text)
    return str(path)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_nothing_configured_gives_none(tmp_path):
    assert _store(tmp_path).for_ref(f"{HOST}/a:1") is None


def test_own_file_with_password_from_env(tmp_path):
    path = _auth_file(tmp_path, f'registries:\n  "{HOST}": {{username: bob, password_env: REG_PW}}\n')
    found = _store(tmp_path, RECONCILER_REGISTRY_AUTH=path, REG_PW="s3cret").for_ref(f"{HOST}/a:1")
    assert found.auth_config() == {"username": "bob", "password": "s3cret"}
    assert found.registry == HOST


def test_own_file_with_password_from_file(tmp_path):
    (tmp_path / "pw").write_text("from-file\n")
    path = _auth_file(tmp_path, f'registries:\n  "https://{HOST}/v2/": {{username: bob, password_file: {tmp_path / "pw"}}}\n')
    found = _store(tmp_path, RECONCILER_REGISTRY_AUTH=path).for_ref(f"{HOST}/a:1")
    assert found.password == "from-file"


def test_own_file_wins_over_docker_config(tmp_path):
    _docker_config(tmp_path, {"auths": {HOST: {"auth": _b64("alice:docker-pw")}}})
    path = _auth_file(tmp_path, f'registries:\n  "{HOST}": {{username: bob, password_env: REG_PW}}\n')
    found = _store(tmp_path, RECONCILER_REGISTRY_AUTH=path, REG_PW="own").for_ref(f"{HOST}/a:1")
    assert (found.username, found.password) == ("bob", "own")


def test_own_file_without_this_registry_falls_back_to_docker_config(tmp_path):
    _docker_config(tmp_path, {"auths": {HOST: {"auth": _b64("alice:docker-pw")}}})
    path = _auth_file(tmp_path, 'registries:\n  "other.example:5000": {username: bob, password_env: REG_PW}\n')
    found = _store(tmp_path, RECONCILER_REGISTRY_AUTH=path, REG_PW="own").for_ref(f"{HOST}/a:1")
    assert (found.username, found.password) == ("alice", "docker-pw")


def test_inline_password_is_refused_without_echoing_it(tmp_path):
    path = _auth_file(tmp_path, f'registries:\n  "{HOST}": {{username: bob, password: hunter2}}\n')
    with pytest.raises(CredentialError, match="inline 'password' is refused") as caught:
        _store(tmp_path, RECONCILER_REGISTRY_AUTH=path).for_ref(f"{HOST}/a:1")
    assert "hunter2" not in str(caught.value)


def test_missing_password_variable_is_named(tmp_path):
    path = _auth_file(tmp_path, f'registries:\n  "{HOST}": {{username: bob, password_env: NOT_SET_PW}}\n')
    with pytest.raises(CredentialError, match="NOT_SET_PW is not set"):
        _store(tmp_path, RECONCILER_REGISTRY_AUTH=path).for_ref(f"{HOST}/a:1")


def test_auth_file_without_registries_is_an_error(tmp_path):
    path = _auth_file(tmp_path, "hosts: {}\n")
    with pytest.raises(CredentialError, match="'registries'"):
        _store(tmp_path, RECONCILER_REGISTRY_AUTH=path).for_ref(f"{HOST}/a:1")


def test_docker_config_auths_base64_and_hub_key(tmp_path):
    _docker_config(tmp_path, {"auths": {"https://index.docker.io/v1/": {"auth": _b64("hubby:pa:ss")}}})
    found = _store(tmp_path).for_ref("library/busybox")
    assert (found.registry, found.username, found.password) == (HUB, "hubby", "pa:ss")


def test_docker_config_auths_username_password(tmp_path):
    _docker_config(tmp_path, {"auths": {f"http://{HOST}": {"username": "u", "password": "p"}}})
    assert _store(tmp_path).for_ref(f"{HOST}/a").auth_config() == {"username": "u", "password": "p"}


def _helper(tmp_path, name: str, username: str, secret: str) -> str:
    """A fake docker-credential-<name> that records the server it was asked for."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    answer = json.dumps({"ServerURL": "x", "Username": username, "Secret": secret})
    script.write_text(f"#!/bin/sh\n[ \"$1\" = get ] || exit 3\ncat > {tmp_path}/asked-{name}\n"
                      f"echo '{answer}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return f"{bin_dir}:{os.environ['PATH']}"


def test_cred_helper_per_registry_wins_over_auths(tmp_path):
    path = _helper(tmp_path, "fake", "helped", "helper-secret")
    _docker_config(tmp_path, {"credHelpers": {HOST: "fake"}, "auths": {HOST: {"auth": _b64("a:b")}}})
    found = _store(tmp_path, PATH=path).for_ref(f"{HOST}/a:1")
    assert (found.username, found.password) == ("helped", "helper-secret")
    assert (tmp_path / "asked-fake").read_text() == HOST
    assert "docker-credential-fake" in found.source


def test_creds_store_asked_with_the_hub_url(tmp_path):
    path = _helper(tmp_path, "store", "hubuser", "hub-secret")
    _docker_config(tmp_path, {"credsStore": "store"})
    found = _store(tmp_path, PATH=path).for_ref("busybox:latest")
    assert found.password == "hub-secret"
    assert (tmp_path / "asked-store").read_text() == "https://index.docker.io/v1/"


def test_missing_helper_binary_is_named(tmp_path):
    _docker_config(tmp_path, {"credHelpers": {HOST: "absent"}})
    with pytest.raises(CredentialError, match="docker-credential-absent is not on PATH"):
        _store(tmp_path).for_ref(f"{HOST}/a:1")


def test_lookups_are_cached_per_run(tmp_path):
    path = _helper(tmp_path, "fake", "helped", "helper-secret")
    _docker_config(tmp_path, {"credHelpers": {HOST: "fake"}})
    store = _store(tmp_path, PATH=path)
    first = store.for_ref(f"{HOST}/a:1")
    (tmp_path / "asked-fake").unlink()
    assert store.for_ref(f"{HOST}/b:2") is first
    assert not (tmp_path / "asked-fake").exists()


def test_repr_and_str_never_show_the_password():
    cred = Credential(HOST, "bob", "hunter2", source="test")
    assert "hunter2" not in repr(cred) and "hunter2" not in str(cred) and "hunter2" not in f"{cred}"
    assert "bob" in repr(cred)


@pytest.mark.parametrize("detail, status, kind", [
    ("manifest for h/a:1 not found: manifest unknown: manifest unknown", 404, ImageNotFound),
    ("unauthorized: authentication required", 500, AuthenticationFailed),
    ('Head "http://h/v2/a/manifests/1": no basic auth credentials', 500, AuthenticationFailed),
    ('Get "http://h/v2/": dial tcp 127.0.0.1:1: connect: connection refused', 500, RegistryUnreachable),
    ("received unexpected HTTP status: 503 Service Unavailable", 500, RegistryUnreachable),
    ("toomanyrequests: slow down", 500, RateLimited),
])
def test_pull_errors_are_distinct_and_hide_the_password(detail, status, kind):
    cred = Credential(HOST, "bob", "hunter2")
    error = pull_error(f"{HOST}/a:1", detail + " hunter2", status, cred)
    assert type(error) is kind
    assert f"{HOST}/a:1" in str(error) and HOST in str(error)
    assert "hunter2" not in str(error)
