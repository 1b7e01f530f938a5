"""Registry credentials for pulls, found the way docker finds them, and never shown.

Why a module of its own: credentials come from two places with different
rules, and the one thing that must hold everywhere is that a password never
reaches output, logs, labels or error messages. ``Credential`` keeps the secret
out of its repr; every error here names the registry and where we looked,
never a value.

Lookup for the registry host of a reference, first match wins:

1. ``RECONCILER_REGISTRY_AUTH``: a YAML file
   ``registries: {HOST: {username: U, password_env: VAR}}`` (or ``password_file:``);
   an inline ``password:`` is refused.
2. Docker's ``config.json`` in ``$DOCKER_CONFIG`` (else ``~/.docker``):
   ``credHelpers[HOST]``, then ``credsStore``, then ``auths`` (base64 ``auth``
   or ``username``/``password``). Helpers are ``docker-credential-<name> get``.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from reconciler.sdk import PermanentError, SpecError, compose_file, register_secrets

__all__ = ["Credential", "CredentialError", "CredentialStore", "HUB", "config_key", "registry_host"]

HUB = "docker.io"
HUB_KEY = "https://index.docker.io/v1/"
AUTH_FILE_ENV = "RECONCILER_REGISTRY_AUTH"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
_HELPER_TIMEOUT = 30


class CredentialError(PermanentError):
    """Credentials are configured but unusable (bad file, missing variable, missing helper)."""


@dataclass(frozen=True)
class Credential:
    """A username and secret for one registry; ``repr`` and ``str`` never show the secret."""

    registry: str
    username: str
    password: str = field(repr=False)
    source: str = ""
    identity_token: bool = False

    def auth_config(self) -> dict:
        """What docker-py's ``pull(auth_config=…)`` expects."""
        if self.identity_token:
            return {"identitytoken": self.password}
        return {"username": self.username, "password": self.password}

    def __repr__(self) -> str:
        return (f"Credential(registry={self.registry!r}, username={self.username!r}, "
                f"password='***', source={self.source!r})")

    __str__ = __repr__


def registry_host(ref: str) -> str:
    """The registry a reference is pulled from, by docker's rules (``docker.io`` by default)."""
    first, sep, _ = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return HUB if first in _HUB_ALIASES else first
    return HUB


def config_key(host: str) -> str:
    """The server name docker's config and credential helpers use for ``host``."""
    return HUB_KEY if host == HUB else host


def _normalize(key: str) -> str:
    """``https://HOST/v1/`` or ``HOST`` → ``HOST``; every Docker Hub alias → ``docker.io``."""
    key = key.strip()
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme):]
    key = key.split("/", 1)[0]
    return HUB if key in _HUB_ALIASES else key


class CredentialStore:
    """Looks up and caches credentials per registry host for one run (thread-safe)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        self._cache: dict[str, Credential | None] = {}
        self._lock = threading.Lock()

    def for_ref(self, ref: str) -> Credential | None:
        """Credentials for the registry of ``ref``, or None when none are configured."""
        return self.for_host(registry_host(ref))

    def for_host(self, host: str) -> Credential | None:
        """Credentials for ``host``; a secret found is registered with ``reconciler.redact`` for the logs."""
        with self._lock:
            if host not in self._cache:
                found = self._own_file(host) or self._docker_config(host)
                if found is not None:
                    register_secrets([found.password])
                self._cache[host] = found
            return self._cache[host]

    # -- the reconciler's own file -------------------------------------------------
    def _own_file(self, host: str) -> Credential | None:
        path = self.environ.get(AUTH_FILE_ENV)
        if not path:
            return None
        registries = _read_auth_file(Path(path))
        for key, entry in registries.items():
            if _normalize(str(key)) == host:
                return self._from_entry(host, entry, f"{AUTH_FILE_ENV} ({path}), registry {key!r}")
        return None

    def _from_entry(self, host: str, entry: object, where: str) -> Credential:
        if not isinstance(entry, dict):
            raise CredentialError(f"{where}: expected a mapping with username and password_env or password_file")
        if "password" in entry:
            raise CredentialError(f"{where}: an inline 'password' is refused; reference the secret with "
                                  f"'password_env: VARIABLE' or 'password_file: /path' instead")
        unknown = set(entry) - {"username", "password_env", "password_file"}
        if unknown:
            raise CredentialError(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")
        username = entry.get("username")
        if not isinstance(username, str) or not username:
            raise CredentialError(f"{where}: 'username' is required")
        if ("password_env" in entry) == ("password_file" in entry):
            raise CredentialError(f"{where}: give exactly one of 'password_env' or 'password_file'")
        if "password_env" in entry:
            name = str(entry["password_env"])
            secret = self.environ.get(name)
            if not secret:
                raise CredentialError(f"{where}: environment variable {name} is not set or empty")
        else:
            file = Path(str(entry["password_file"])).expanduser()
            try:
                secret = file.read_text().rstrip("\r\n")
            except OSError as exc:
                raise CredentialError(f"{where}: cannot read password_file {file}: {exc.strerror}") from None
            if not secret:
                raise CredentialError(f"{where}: password_file {file} is empty")
        return Credential(host, username, secret, source=where)

    # -- docker's config.json ------------------------------------------------------
    def _docker_config(self, host: str) -> Credential | None:
        folder = self.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
        path = Path(folder) / "config.json"
        if not path.is_file():
            return None
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CredentialError(f"cannot read docker config {path}: {exc}") from None
        if not isinstance(config, dict):
            raise CredentialError(f"docker config {path}: expected a JSON object")
        helpers = config.get("credHelpers") or {}
        helper = next((name for key, name in helpers.items() if _normalize(key) == host), None)
        if helper:
            return self._helper(helper, host, f"{path} credHelpers")
        if config.get("credsStore"):
            found = self._helper(config["credsStore"], host, f"{path} credsStore")
            if found:
                return found
        return _from_auths(config.get("auths") or {}, host, path)

    def _helper(self, name: str, host: str, where: str) -> Credential | None:
        binary = f"docker-credential-{name}"
        executable = shutil.which(binary, path=self.environ.get("PATH"))
        if not executable:
            raise CredentialError(f"{where} names credential helper {name!r} for {host}, "
                                  f"but {binary} is not on PATH")
        try:
            proc = subprocess.run([executable, "get"], input=config_key(host), capture_output=True,
                                  text=True, timeout=_HELPER_TIMEOUT, env=dict(self.environ))
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CredentialError(f"credential helper {binary} failed for {host}: {type(exc).__name__}") from None
        if proc.returncode != 0:
            if "credentials not found" in (proc.stdout + proc.stderr).lower():
                return None
            # The helper's own output may echo secrets: say only that it failed.
            raise CredentialError(f"credential helper {binary} failed for {host} (exit {proc.returncode})")
        try:
            answer = json.loads(proc.stdout)
            username, secret = answer["Username"], answer["Secret"]
        except (ValueError, KeyError, TypeError):
            raise CredentialError(f"credential helper {binary} gave an unreadable answer for {host}") from None
        if not secret:
            return None
        return Credential(host, username, secret, source=f"credential helper {binary}",
                          identity_token=username == "<token>")


def _read_auth_file(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as exc:
        raise CredentialError(f"cannot read {AUTH_FILE_ENV} file {path}: {exc.strerror}") from None
    try:
        data = compose_file(text, str(path)).data
    except SpecError as exc:
        raise CredentialError(f"{AUTH_FILE_ENV} file {path} is not valid YAML: {exc}") from None
    registries = data.get("registries") if isinstance(data, dict) else None
    if not isinstance(registries, dict):
        raise CredentialError(f"{AUTH_FILE_ENV} file {path}: expected a top-level 'registries' mapping")
    return registries


def _from_auths(auths: dict, host: str, path: Path) -> Credential | None:
    for key, entry in auths.items():
        if _normalize(key) != host or not isinstance(entry, dict):
            continue
        where = f"{path} auths[{key!r}]"
        if entry.get("identitytoken"):
            return Credential(host, "<token>", entry["identitytoken"], source=where, identity_token=True)
        if entry.get("auth"):
            try:
                username, sep, secret = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise CredentialError(f"{where}: 'auth' is not base64 of username:password") from None
            if not sep:
                raise CredentialError(f"{where}: 'auth' is not base64 of username:password")
            return Credential(host, username, secret, source=where)
        if entry.get("username") and entry.get("password"):
            return Credential(host, entry["username"], entry["password"], source=where)
    return None
