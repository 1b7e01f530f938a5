"""Feedback in git against the real engine and real git (issue 27): each commit the daemon applies gets a note
under ``refs/notes/reconciler`` on the source's own remote, and a failed pass's note says why.

The unit tests (tests/unit/test_git_notes.py) prove the writer on the in-memory engine; this one runs
``reconcile daemon`` as people do, and reads the notes as people do: ``git log --notes=reconciler`` in a fresh
clone. The source's URL carries a token (``url.<file://>.insteadOf`` in git's global config sends it to the
bare repository on disk) and names a token variable; the spec holds a secret env value from the daemon's
environment: none of the three may reach a note, nor the daemon's log.
"""
from __future__ import annotations

import calendar
import json
import re
import secrets
import socket
import subprocess
import time
from pathlib import Path

import pytest

from ..waiting import wait_until
from .conftest import BASE_IMAGE
from .daemons import Repo, RunningDaemon

pytestmark = pytest.mark.engine

NOTES_REF = "refs/notes/reconciler"
SPEC = """name: {name}
containers:
  web:
    image: {image}
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
    env:
      DB_PASSWORD: {{value: "${{NOTESIT_DB_PASSWORD}}", secret: true}}
"""
API = """  api:
    image: {image}
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
    ports: ["127.0.0.1:{port}:80"]
"""


def _spec(name: str, port: int | None = None) -> str:
    """The stack: ``web`` (with a secret env value from the daemon's environment), and ``api`` publishing
    ``port`` when given."""
    return SPEC.format(name=name, image=BASE_IMAGE) + (API.format(image=BASE_IMAGE, port=port) if port else "")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def _note(repo: Repo, commit: str) -> str:
    """The commit's note as the remote has it ("" while it has none)."""
    done = subprocess.run(["git", "notes", f"--ref={NOTES_REF}", "show", commit], cwd=repo.remote,
                          capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""


def _shown(log: str) -> dict[str, list[dict[str, str]]]:
    """``git log --notes=reconciler`` as commit id → the blocks of its note, each as its ``key: value`` lines
    (a ``why`` with its continuation lines)."""
    notes = {}
    for entry in re.split(r"^commit ", log, flags=re.M)[1:]:
        commit, _, rest = entry.partition("\n")
        _, found, note = rest.partition("\nNotes (reconciler):\n")
        blocks, block, key = [], {}, ""
        for line in note.splitlines() if found else ():
            line = line[4:]  # git log indents a note by four spaces
            if not line.strip():
                block, key = {}, ""
            elif line.startswith("  ") and key:
                block[key] += "\n" + line.strip()
            else:
                if not block:
                    blocks.append(block)
                key, _, value = line.partition(": ")
                block[key] = value
        notes[commit.split()[0]] = blocks
    return notes


def _failed_passes(daemon: RunningDaemon, revision: str) -> int:
    """How many passes at ``revision`` failed, as the daemon's log says so far."""
    return sum(1 for line in list(daemon.lines) if line.get("revision") == revision and line.get("ok") is False)


def _time(block: dict[str, str]) -> float:
    return calendar.timegm(time.strptime(block["time"], "%Y-%m-%dT%H:%M:%SZ"))


def test_each_applied_commit_is_noted_a_failed_pass_says_why_and_no_secret_is_written(stack, repo, tmp_path,
                                                                                        monkeypatch):
    token, password = "ghp_" + secrets.token_hex(16), "pw-" + secrets.token_hex(12)
    url = f"https://x-access-token:{token}@git.example.invalid/ops/shop.git"
    gitconfig = tmp_path / "gitconfig"
    _git(tmp_path, "config", "--file", str(gitconfig), f"url.{repo.url}.insteadOf", url)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("NOTESIT_GIT_TOKEN", token)
    monkeypatch.setenv("NOTESIT_DB_PASSWORD", password)
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "resync": 300, "sources": [
        {"name": "repo", "git": {"url": url, "ref": "main", "interval": 0.5, "token_env": "NOTESIT_GIT_TOKEN"},
         "paths": ["app"], "notes": True}]}))
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()  # the port commit 2 publishes: the engine cannot bind it while this test holds it
    taken = held.getsockname()[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    started = time.time()

    first = repo.commit({"app/stack.yaml": _spec(stack.name)}, "web")
    daemon = RunningDaemon(config)
    try:
        wait_until(lambda: _note(repo, first), 30, lambda: "the first commit's note; log:\n" + "".join(daemon.text))
        second = repo.commit({"app/stack.yaml": _spec(stack.name, taken)}, "api: publish a port that is taken")
        wait_until(lambda: _note(repo, second), 30, lambda: "the second commit's note; log:\n" + "".join(daemon.text))
        wait_until(lambda: _failed_passes(daemon, second) >= 2, 30,
                   lambda: "a retry of the failed pass; log:\n" + "".join(daemon.text))
        notes_before = (_note(repo, first), _note(repo, second))  # the retry that failed alike added nothing
        third = repo.commit({"app/stack.yaml": _spec(stack.name, free)}, "api: publish a free port")
        wait_until(lambda: _note(repo, third), 30, lambda: "the third commit's note; log:\n" + "".join(daemon.text))
        assert f"DB_PASSWORD={password}" in stack.engine.inspect_container(f"{stack.name}-web-1")["Config"]["Env"]
        assert stack.engine.inspect_container(f"{stack.name}-api-1")["State"]["Running"]
    finally:
        held.close()
        assert daemon.stop() == 0
    assert (_note(repo, first), _note(repo, second)) == notes_before  # a later commit leaves earlier notes be

    fresh = tmp_path / "fresh"
    _git(tmp_path, "clone", "--quiet", repo.url, str(fresh))
    _git(fresh, "fetch", "--quiet", "origin", "refs/notes/*:refs/notes/*")
    log = _git(fresh, "log", "--notes=reconciler")
    notes = _shown(log)
    assert [len(notes[c]) for c in (first, second, third)] == [1, 1, 1], log
    (applied,), (failed,), (fixed,) = notes[first], notes[second], notes[third]
    for block in (applied, failed, fixed):
        assert block["stack"] == stack.name and block["host"], block
        assert started - 1 <= _time(block) <= time.time() + 1, block
    assert applied["result"] == "converged" and "why" not in applied, applied
    assert f"create container:{stack.name}-web-1" in applied["changes"], applied
    assert failed["result"] == "failed", failed
    assert failed["changes"] == f"1 (create container:{stack.name}-api-1 (failed))", failed
    assert failed["why"].startswith(f"container:{stack.name}-api-1: "), failed
    assert f"host port 127.0.0.1:{taken}/tcp is already in use" in failed["why"], failed
    assert fixed["result"] == "converged" and "why" not in fixed, fixed
    assert fixed["changes"] == f"1 (create container:{stack.name}-api-1)", fixed

    # Nothing secret anywhere in the notes' history (every version of every note, each commit's message)...
    history = _git(fresh, "log", "-p", NOTES_REF)
    for secret in (token, password):
        assert secret not in history and secret not in log
        assert secret not in "".join(daemon.text)  # ... nor in the daemon's log
