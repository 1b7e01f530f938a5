"""A real HTTP receiver on 127.0.0.1 for tests of outgoing webhooks (ephemeral port, scripted answers)."""
from __future__ import annotations

import http.server
import threading
import time

__all__ = ["Receiver"]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a test that abandons a slow request must not wait for it


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers from a script.

    ``answers`` are consumed one per request; then every request gets 200.
    An answer is a status code, or ``("redirect", url)``, or ``("sleep", seconds)``.
    """

    def __init__(self, answers=(), *, path: str = "/hook"):
        self.answers = list(answers)
        self.path = path
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append((self.path, dict(self.headers), body))
                    answer = receiver.answers.pop(0) if receiver.answers else 200
                if isinstance(answer, tuple) and answer[0] == "sleep":
                    time.sleep(answer[1])
                    answer = 200
                if isinstance(answer, tuple) and answer[0] == "redirect":
                    self.send_response(302)
                    self.send_header("Location", answer[1])
                else:
                    self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
