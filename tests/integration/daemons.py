"""Real git repositories (file://) and ``reconcile daemon`` in a subprocess, for the daemon's tests."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


class Repo:
    """A bare repository (the remote the daemon follows) and a clone to commit from."""

    def __init__(self, root: Path) -> None:
        self.remote = root / "origin.git"
        self.work = root / "work"
        root.mkdir(parents=True, exist_ok=True)
        self._git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(self.remote))
        self._git(root, "clone", "--quiet", str(self.remote), str(self.work))
        self._git(self.work, "checkout", "--quiet", "-B", "main")

    @property
    def url(self) -> str:
        return f"file://{self.remote}"

    def commit(self, files: dict[str, str], message: str = "change", *, amend_from: str | None = None) -> str:
        if amend_from:
            self._git(self.work, "reset", "--quiet", "--hard", amend_from)
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        self._git(self.work, "add", "-A")
        self._git(self.work, "-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "--quiet",
                  "-m", message)
        self._git(self.work, "push", "--quiet", "--force", "origin", "main")
        return self._git(self.work, "rev-parse", "HEAD").strip()

    @staticmethod
    def _git(cwd: Path, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


class RunningDaemon:
    """``reconcile daemon`` in a subprocess, its JSON log lines collected as they come."""

    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "reconciler", "daemon", "--config", str(config),
                                      "--log-format", "json"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONFAULTHANDLER": "1"},
                                     text=True)
        self.lines: list[dict] = []
        self.text: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.text.append(line)
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                pass

    def mark(self) -> int:
        """Where the log is now: ``wait_for(..., after=mark)`` looks only at what comes later."""
        return len(self.lines)

    def wait_for(self, predicate, timeout: float = 30, *, after: int = 0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines)[after:]:
                if predicate(line):
                    return line
            time.sleep(0.1)
        raise AssertionError("no such log line; log:\n" + "".join(self.text))

    def api(self, timeout: float = 30) -> str:
        """The URL of the daemon's API, from its first log line."""
        return self.wait_for(lambda line: "api" in line, timeout)["api"]

    def stop(self) -> int:
        self.proc.terminate()
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:  # hung: have faulthandler print every thread's stack, then show it
            self.proc.send_signal(signal.SIGABRT)
            self.proc.wait(timeout=10)
            self._reader.join(timeout=5)
            raise AssertionError("the daemon did not stop within 60 s:\n" + "".join(self.text[-300:])) from None
        self._reader.join(timeout=5)
        return code
