"""The real engine's socket, reachable a second way: a relay from 127.0.0.1:PORT to the unix socket.

Lets a test reach one engine through two URLs (``unix://…`` and ``tcp://127.0.0.1:PORT``)
without reconfiguring the engine that other tests share, and lose it for a while
(``down()`` / ``up()``) without stopping the engine. Beside it, ``SilentEngine``: a
TCP address that connects and never answers, as a black-holed engine does.
"""
from __future__ import annotations

import socket
import socketserver
import threading

__all__ = ["SilentEngine", "TcpRelay"]


class TcpRelay:
    """``with TcpRelay() as relay:`` then ``--engine relay.url`` reaches the engine behind ``upstream``.

    ``down()`` cuts every open connection and refuses new ones (accepted, then
    closed at once) until ``up()``: an engine that went away and came back.
    """

    def __init__(self, upstream: str = "/var/run/docker.sock") -> None:
        relay = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as engine:
                    pair = {self.request, engine}
                    with relay.lock:  # down() either sees this pair or refuses it here
                        if not relay.serving:
                            return  # refused: the server closes the connection
                        relay.open |= pair
                    try:
                        engine.connect(relay.upstream)
                    except OSError:  # cut by down() before it was through
                        return
                    back = threading.Thread(target=_pump, args=(engine, self.request), daemon=True)
                    back.start()
                    _pump(self.request, engine)
                    back.join()
                    with relay.lock:
                        relay.open -= pair

        class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.upstream = upstream
        self.serving = True
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.server.server_address[1]}"

    def down(self) -> None:
        """Cut every open connection, both sides, and refuse new ones until ``up()``."""
        with self.lock:
            self.serving = False
            cut, self.open = self.open, set()
        for sock in cut:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def up(self) -> None:
        """Relay new connections again."""
        self.serving = True

    def __enter__(self) -> "TcpRelay":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.down()


def _pump(source: socket.socket, target: socket.socket) -> None:
    """Copy bytes one way until the source closes, then tell the target nothing more comes."""
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    try:
        target.shutdown(socket.SHUT_WR)
    except OSError:
        pass


class SilentEngine:
    """``with SilentEngine() as url:`` a ``tcp://`` address that accepts every connection and never answers.

    What a black-holed engine looks like from the client (a wedged dockerd, a
    proxy whose backend is gone): the connect succeeds at once, then nothing
    comes back. Accepted sockets are held open until the block ends.
    """

    def __enter__(self) -> str:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return "tcp://127.0.0.1:%d" % self.listener.getsockname()[1]

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed: the block ended
                return
            self.accepted.append(connection)

    def __exit__(self, *exc) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() under way
        except OSError:
            pass
        self.listener.close()
        self.thread.join(5)
        for connection in self.accepted:
            connection.close()
