"""``ssh://`` engines through the system's ``ssh`` client, without paramiko.

The Docker SDK can shell out to ``ssh`` (``use_ssh_client``), but its transport
module imports paramiko first, and without paramiko (a heavy dependency we do
not take: installed, every ``import docker`` would load it) an ``ssh://`` URL
fails with "Install paramiko package". This is that shell-out path on its own,
as the Docker CLI does it: every connection runs ``ssh HOST docker system
dial-stdio`` and speaks HTTP over the process's stdin and stdout. So the
user's ssh setup applies as it is (``~/.ssh/config``, keys, agent, known hosts,
jump hosts); ``RECONCILER_SSH_CONFIG`` names another ssh_config file.

``ssh`` runs with ``BatchMode=yes`` (a daemon cannot answer a password or
host-key prompt: it fails, saying so on stderr) and ``ConnectTimeout`` set to
the run's connect timeout.
"""
from __future__ import annotations

import io
import os
import queue
import socket
import subprocess
from urllib.parse import urlsplit

import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool

__all__ = ["SSH_CONFIG_ENV", "SshAdapter", "ssh_command"]

SSH_CONFIG_ENV = "RECONCILER_SSH_CONFIG"
_ENV_DROPPED = ("LD_LIBRARY_PATH", "SSL_CERT_FILE")  # the SDK's choice too: they belong to this Python, not ssh


def ssh_command(url: str, *, connect_timeout: float) -> list[str]:
    """The ``ssh`` command that opens a connection to the engine at ``url`` (``ssh://[user@]host[:port]``)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"{url}: an ssh:// engine URL needs a host")
    command = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, round(connect_timeout))}"]
    config = os.environ.get(SSH_CONFIG_ENV, "").strip()
    if config:
        command += ["-F", config]
    if parts.username:
        command += ["-l", parts.username]
    if parts.port:
        command += ["-p", str(parts.port)]
    return command + ["--", parts.hostname, "docker", "system", "dial-stdio"]


class _SshSocket(socket.socket):
    """The ``ssh`` process as the socket urllib3 reads and writes (a placeholder socket that is never connected)."""

    def __init__(self, command: list[str]) -> None:
        super().__init__(socket.AF_INET, socket.SOCK_STREAM)
        self.command = command
        self.proc: subprocess.Popen | None = None

    def connect(self, *args) -> None:  # noqa: ARG002  (urllib3 passes nothing; socket's signature takes an address)
        env = {k: v for k, v in os.environ.items() if k not in _ENV_DROPPED}
        # A session of its own: a Ctrl-C meant for the reconciler does not cut its engine connections mid-request.
        self.proc = subprocess.Popen(self.command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)

    def _pipe(self) -> subprocess.Popen:
        if self.proc is None:
            raise OSError("the ssh connection to the engine is not open")
        return self.proc

    def sendall(self, data) -> None:
        pipe = self._pipe().stdin
        pipe.write(data)
        pipe.flush()

    def send(self, data) -> int:
        self.sendall(data)
        return len(data)

    def recv(self, size: int) -> bytes:
        data = os.read(self._pipe().stdout.fileno(), size)
        if not data:
            self._ended()
        return data

    def _ended(self) -> None:
        """The engine's side closed: when ``ssh`` failed, raise what it said (not the HTTP layer's "aborted")."""
        proc = self.proc
        if proc is None:
            return
        try:
            code = proc.wait(5)
        except subprocess.TimeoutExpired:
            return
        if code:
            said = [line.strip() for line in proc.stderr.read().decode(errors="replace").splitlines() if line.strip()]
            raise ConnectionError(f"ssh exited {code}: {said[-1] if said else 'no message'}")

    def makefile(self, *args, **kwargs) -> io.BufferedReader:
        """A reader of one response. Closing it (``http.client`` does at the response's end) leaves the
        process's stdout open for the connection's next request."""
        if self.proc is None:
            self.connect()
        reader = io.BufferedReader(_Borrowed(self.proc.stdout.fileno(), self._ended))
        reader.channel = self  # what the SDK reads as the raw socket of a streamed response (attach, logs)
        return reader

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            for pipe in (proc.stdin, proc.stderr):
                try:
                    pipe.close()
                except OSError:
                    pass
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        super().close()


class _Borrowed(io.RawIOBase):
    """Reads a file descriptor someone else owns: closing this does not close it. At its end, ``ended()``."""

    def __init__(self, fd: int, ended) -> None:
        super().__init__()
        self.fd = fd
        self.ended = ended

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = os.read(self.fd, len(buffer))
        if not data:
            self.ended()
        buffer[: len(data)] = data
        return len(data)


class _SshConnection(urllib3.connection.HTTPConnection):
    def __init__(self, command: list[str]) -> None:
        super().__init__("localhost")
        self.command = command

    def connect(self) -> None:
        sock = _SshSocket(self.command)
        sock.connect()
        self.sock = sock


class _SshPool(urllib3.connectionpool.HTTPConnectionPool):
    scheme = "ssh"

    def __init__(self, command: list[str], timeout: float, maxsize: int) -> None:
        super().__init__("localhost", timeout=timeout, maxsize=maxsize)
        self.command = command

    def _new_conn(self) -> _SshConnection:
        return _SshConnection(self.command)

    def _get_conn(self, timeout=None):
        # A free connection, else a new one: urllib3's own calls ``fileno()`` on it, which the ssh process has not.
        try:
            conn = self.pool.get(block=False) if self.pool is not None else None
        except queue.Empty:
            conn = None
        if self.pool is None:
            raise urllib3.exceptions.ClosedPoolError(self, "Pool is closed.")
        return conn or self._new_conn()


class SshAdapter(requests.adapters.HTTPAdapter):
    """Mounted on ``http+docker://ssh``: every request goes over an ``ssh … docker system dial-stdio`` process."""

    def __init__(self, url: str, *, connect_timeout: float, timeout: float, max_pool_size: int = 10) -> None:
        self.command = ssh_command(url, connect_timeout=connect_timeout)
        self.timeout = timeout
        self.max_pool_size = max_pool_size
        self._pool: _SshPool | None = None
        super().__init__()

    def get_connection(self, url, proxies=None):
        if self._pool is None:
            self._pool = _SshPool(self.command, self.timeout, self.max_pool_size)
        return self._pool

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        return self.get_connection(request.url, proxies)

    def close(self) -> None:
        super().close()
        if self._pool is not None:
            self._pool.close()
            self._pool = None
