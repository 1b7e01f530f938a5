"""A fault-injecting proxy in front of the real engine's socket.

It forwards every request to the real engine unchanged, except that it can
answer chosen requests itself with an error first, the way an overloaded
engine or a flaky TCP link would. Tests point ``--engine`` at its socket.
Only for non-streaming calls (list, create, start, remove): it buffers bodies.
"""
from __future__ import annotations

import http.client
import re
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

__all__ = ["FaultyEngine"]


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


class FaultyEngine:
    """``faults`` maps (method, path regex) to a list of statuses to answer before forwarding."""

    def __init__(self, socket_path: Path, upstream: str = "/var/run/docker.sock") -> None:
        self.socket_path = socket_path
        self.upstream = upstream
        self.faults: list[tuple[str, re.Pattern, list[int]]] = []
        self.lost: list[tuple[str, re.Pattern, list[int]]] = []
        self.stalled: list[tuple[str, re.Pattern, list[int]]] = []
        self.injected: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()
        self.server = self._server()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def fail(self, method: str, path_pattern: str, *statuses: int) -> None:
        """Answer matching requests with these statuses, without forwarding them."""
        self.faults.append((method, re.compile(path_pattern), list(statuses)))

    def lose_answer(self, method: str, path_pattern: str, *statuses: int) -> None:
        """Forward matching requests (the engine acts), then answer with these statuses instead."""
        self.lost.append((method, re.compile(path_pattern), list(statuses)))

    def stall(self, method: str, path_pattern: str, *seconds: int) -> None:
        """Hold matching requests this long each, saying nothing, before forwarding them (a wedged engine)."""
        self.stalled.append((method, re.compile(path_pattern), list(seconds)))

    def _take_fault(self, method: str, path: str, table=None) -> int | None:
        with self.lock:
            for want, pattern, statuses in (self.faults if table is None else table):
                if want == method and pattern.search(path) and statuses:
                    status = statuses.pop(0)
                    self.injected.append((method, path, status))
                    return status
        return None

    def _server(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _error(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                time.sleep(proxy._take_fault(self.command, self.path, proxy.stalled) or 0)
                status = proxy._take_fault(self.command, self.path)
                if status is not None:
                    return self._error(status, b'{"message":"injected fault"}')
                upstream = _UnixHTTPConnection(proxy.upstream)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                upstream.close()
                lost = proxy._take_fault(self.command, self.path, proxy.lost)
                if lost is not None:
                    return self._error(lost, b'{"message":"injected fault after the engine acted"}')
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = _handle

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        return Server(str(self.socket_path), Handler)

    def __enter__(self) -> "FaultyEngine":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.socket_path.unlink(missing_ok=True)
