"""A private sshd on 127.0.0.1 in front of one engine, for ``ssh://`` engine URLs.

Its own host key, client key, authorized_keys and pid file live in a temporary
folder; ``SetEnv DOCKER_HOST`` points the remote ``docker system dial-stdio``
at the engine. Clients get an ssh_config (``RECONCILER_SSH_CONFIG``) that
knows the host key and names the client key, so nothing under ~/.ssh is read
or written. Skips, saying why, without root or sshd.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..waiting import seconds_until
from .registry import free_port

__all__ = ["SshEngine", "ssh_engine"]


@dataclass
class SshEngine:
    url: str  # ssh://root@127.0.0.1:PORT
    env: dict[str, str]  # RECONCILER_SSH_CONFIG for a client
    folder: Path


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def start_sshd(folder: Path, docker_host: str) -> tuple[SshEngine, subprocess.Popen]:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key)], check=True)
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    port = free_port()
    (folder / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {folder}/host_key\n"
        f"AuthorizedKeysFile {folder}/authorized_keys\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n"
        f"PidFile {folder}/sshd.pid\nSetEnv DOCKER_HOST={docker_host}\n")
    host_key = (folder / "host_key.pub").read_text().strip()
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key}\n")
    (folder / "ssh_config").write_text(
        f"Host 127.0.0.1\n  IdentityFile {folder}/client_key\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {folder}/known_hosts\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", str(folder / "sshd_config"), "-E", str(folder / "sshd.log")])
    if seconds_until(lambda: _listening(port), 10) is None:
        proc.kill()
        raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port}: {(folder / 'sshd.log').read_text()}")
    return SshEngine(f"ssh://root@127.0.0.1:{port}", {"RECONCILER_SSH_CONFIG": str(folder / "ssh_config")},
                     folder), proc


@pytest.fixture(scope="module")
def ssh_engine(engine, tmp_path_factory) -> SshEngine:
    """An sshd in front of the main engine, for this module's tests."""
    if os.geteuid() != 0:
        pytest.skip("the private sshd logs in as root")
    if not Path("/usr/sbin/sshd").exists() or shutil.which("ssh") is None:
        pytest.skip("ssh:// engine tests need openssh-server and the ssh client (scripts/engine.sh installs them)")
    found, proc = start_sshd(tmp_path_factory.mktemp("sshd"), "unix:///var/run/docker.sock")
    try:
        yield found
    finally:
        proc.terminate()
        proc.wait(10)
