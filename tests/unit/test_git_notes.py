"""Feedback in git (issue 27): each pass that applies a commit appends its result to the commit's git note
(``refs/notes/reconciler``), pushed to the source's remote; ``git log --notes=reconciler`` on a fresh clone shows
what was deployed where. Real git over file://, the daemon on the in-memory engine."""
from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from reconciler.daemon import Daemon, load_config
from reconciler.daemon.config import GitSource, Source
from reconciler.daemon.feedback import Deployed, Feedback, Result, deployed, worth_telling
from reconciler.daemon.gitnotes import NOTES_REF, NoteWriter, NotesRejected
from reconciler.daemon.metrics import Metrics
from reconciler.errors import PermanentError, RolledBack, SpecError
from reconciler.loop import Pass, Trigger
from reconciler.model import Kind
from reconciler.plan import Action, Change, Plan
from reconciler.report import ApplyReport, Outcome, Status
from reconciler.testing import make_reconciler

from ..waiting import wait_until

SPEC = "name: {name}\ncontainers:\n  web: {{image: 'busybox:1', env: {{V: '{version}'}}}}\n"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


class Origin:
    """A bare remote and a clone that commits to it."""

    def __init__(self, root: Path) -> None:
        self.remote, self.work = root / "origin.git", root / "work"
        root.mkdir(parents=True)
        _git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(self.remote))
        _git(root, "clone", "--quiet", str(self.remote), str(self.work))
        _git(self.work, "checkout", "--quiet", "-B", "main")

    @property
    def url(self) -> str:
        return f"file://{self.remote}"

    def commit(self, files: dict[str, str]) -> str:
        for name, text in files.items():
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            (self.work / name).write_text(text)
        _git(self.work, "add", "-A")
        _git(self.work, "-c", "user.email=t@e.invalid", "-c", "user.name=t", "commit", "--quiet", "-m", "c")
        _git(self.work, "push", "--quiet", "origin", "main")
        return _git(self.work, "rev-parse", "HEAD").strip()

    def note(self, commit: str) -> str:
        """The commit's note as the remote has it ("" when none)."""
        done = subprocess.run(["git", "notes", f"--ref={NOTES_REF}", "show", commit], cwd=self.remote,
                              capture_output=True, text=True)
        return done.stdout if done.returncode == 0 else ""


@pytest.fixture
def origin(tmp_path) -> Origin:
    return Origin(tmp_path / "git")


def _blocks(note: str) -> list[dict[str, str]]:
    """A note's blocks, each as its ``key: value`` lines (a ``why`` with its continuation lines)."""
    blocks = []
    for text in note.strip().split("\n\n"):
        block: dict[str, str] = {}
        key = ""
        for line in text.splitlines():
            if line.startswith("  ") and key:
                block[key] += "\n" + line.strip()
            else:
                key, _, value = line.partition(": ")
                block[key] = value
        blocks.append(block)
    return blocks


def _daemon(tmp_path: Path, origin: Origin, memory_engine, metrics: Metrics | None = None) -> Daemon:
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "resync": 300, "sources": [
        {"name": "repo", "git": {"url": origin.url, "interval": 0.05}, "paths": ["a", "b"], "notes": True}]}))
    return Daemon(load_config(str(config)), reconciler=make_reconciler(memory_engine), metrics=metrics)


def test_each_applied_commit_gets_a_block_per_stack_that_a_fresh_clone_shows(origin, tmp_path, memory_engine):
    first = origin.commit({"a/stack.yaml": SPEC.format(name="sa", version=1),
                           "b/stack.yaml": SPEC.format(name="sb", version=1)})
    daemon = _daemon(tmp_path, origin, memory_engine)
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    runner.start()
    try:
        wait_until(lambda: len(_blocks(origin.note(first))) == 2, 15, lambda: f"two blocks: {origin.note(first)!r}")
        blocks = sorted(_blocks(origin.note(first)), key=lambda b: b["stack"])
        assert [b["stack"] for b in blocks] == ["sa", "sb"]
        for block, name in zip(blocks, ["sa", "sb"]):
            assert block["result"] == "converged"
            assert f"create container:{name}-web-1" in block["changes"]
            assert f"create network:{name}_default" in block["changes"]
            assert block["host"] and block["time"].endswith("Z") and "why" not in block
        # Nothing more for a commit that converged: a resync, a repaired drift say nothing to the commit.
        memory_engine.remove("sa-web-1")
        wait_until(lambda: "sa-web-1" in memory_engine.containers and daemon.workers[0].last.ok, 10, "the repair")
    finally:
        stop.set()
        runner.join(timeout=30)
    assert len(_blocks(origin.note(first))) == 2  # the repair wrote no note (the queue is drained by now)

    fresh = tmp_path / "fresh"
    _git(tmp_path, "clone", "--quiet", origin.url, str(fresh))
    _git(fresh, "fetch", "--quiet", "origin", f"{NOTES_REF}:{NOTES_REF}")
    shown = _git(fresh, "log", "--notes=reconciler", "-1")
    assert "Notes (reconciler):" in shown and "stack: sa" in shown and "stack: sb" in shown


def test_a_failed_pass_says_why_and_its_retry_that_converged_follows(origin, tmp_path, memory_engine):
    first = origin.commit({"a/stack.yaml": SPEC.format(name="sa", version=1),
                           "b/stack.yaml": SPEC.format(name="sb", version=1)})
    daemon = _daemon(tmp_path, origin, memory_engine)
    a, b = daemon.workers
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    runner.start()
    try:
        wait_until(lambda: len(_blocks(origin.note(first))) == 2, 15, "the first commit's notes")
        memory_engine.fail(("create", "sb-web-1"), PermanentError("no space left on device"))
        second = origin.commit({"b/stack.yaml": SPEC.format(name="sb", version=2)})
        wait_until(lambda: len(_blocks(origin.note(second))) == 2, 15, lambda: f"two blocks: {origin.note(second)!r}")
        failed, converged = _blocks(origin.note(second))
        assert (failed["stack"], failed["result"]) == ("sb", "failed")
        assert "container:sb-web-1: no space left on device" in failed["why"]
        assert "replace container:sb-web-1 (failed)" in failed["changes"]
        assert (converged["stack"], converged["result"]) == ("sb", "converged") and "why" not in converged
        # A spec that does not load is a failed pass too: nothing applied, and the note says why.
        third = origin.commit({"a/stack.yaml": "name: sa\ncontainers: [\n"})
        wait_until(lambda: origin.note(third), 15, "the broken commit's note")
        (broken,) = _blocks(origin.note(third))
        assert (broken["stack"], broken["result"], broken["changes"]) == ("sa", "failed", "0")
        assert broken["why"].startswith("the spec does not load, nothing was changed:")
        assert f"repo@{third[:12]}:a/stack.yaml" in broken["why"]
    finally:
        stop.set()
        runner.join(timeout=30)


def test_a_push_that_loses_the_race_fetches_and_appends_again(origin, tmp_path):
    commit = origin.commit({"README": "x\n"})
    source = Source("repo", git=GitSource(url=origin.url), notes=True)
    writer, other = NoteWriter(source, tmp_path / "mine"), NoteWriter(source, tmp_path / "theirs")
    other.append([(commit, "stack: first")])
    starts = []
    start = writer._start

    def racing() -> None:  # someone else pushes a note between our fetch and our push, once
        start()
        starts.append(1)
        if len(starts) == 1:
            other.append([(commit, "stack: theirs")])

    writer._start = racing
    writer.append([(commit, "stack: mine")])
    assert len(starts) == 2
    assert origin.note(commit) == "stack: first\n\nstack: theirs\n\nstack: mine\n"


def test_a_remote_that_refuses_is_an_error_counted_and_the_token_is_never_written(origin, tmp_path, monkeypatch):
    commit = origin.commit({"README": "x\n"})
    monkeypatch.setenv("NOTES_TOKEN", "s3cr3t-t0ken-value")
    source = Source("repo", git=GitSource(url=origin.url, token_env="NOTES_TOKEN"), notes=True)
    NoteWriter(source, tmp_path / "state").append(
        [(commit, "why: https://deploy:s3cr3t-t0ken-value@git.example.com/x failed with s3cr3t-t0ken-value")])
    assert "s3cr3t-t0ken-value" not in origin.note(commit) and "(secret)" in origin.note(commit)

    hook = origin.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'notes are protected here' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(NotesRejected, match="was refused:(.|\n)*notes are protected here") as refused:
        NoteWriter(source, tmp_path / "state").append([(commit, "stack: x")])
    assert "s3cr3t" not in str(refused.value)
    failures = []
    feedback = Feedback([source], tmp_path / "state", on_failure=failures.append)
    worker = SimpleNamespace(id="repo:.", source=source, stack="sa", path=".", revision=commit)
    feedback.passed(worker, Pass(Trigger.SOURCE, error="the engine is unreachable"))  # a failed pass: told
    feedback.close()
    feedback.run()  # what was queued, then the end: here, on this thread
    assert failures == ["note"]


def _told(revision: str, result: Result, changes: tuple[str, ...] = ()) -> Deployed:
    return Deployed("s", revision, result, changes, "", "", 0.0, "h")


@pytest.mark.parametrize("known, now, told", [
    (None, _told("r1", Result.CONVERGED), False),  # a restart on a converged host
    (None, _told("r1", Result.CONVERGED, ("start container:s-web-1",)), True),  # a restart that repaired
    (None, _told("r1", Result.FAILED), True),
    (("r1", Result.CONVERGED), _told("r2", Result.CONVERGED), True),  # a new commit, even one that changed nothing
    (("r1", Result.CONVERGED), _told("r1", Result.CONVERGED, ("start container:s-web-1",)), False),  # drift
    (("r1", Result.CONVERGED), _told("r1", Result.FAILED), False),  # trouble after it converged: the history's
    (("r1", Result.FAILED), _told("r1", Result.FAILED), False),  # a retry that failed the same way
    (("r1", Result.FAILED), _told("r1", Result.CONVERGED), True),  # the retry that converged
    (("r1", Result.FAILED), _told("r1", Result.ROLLED_BACK), True),
])
def test_which_passes_are_told(known, now, told):
    assert worth_telling(known, now) is told


def test_a_directory_source_has_no_notes(tmp_path):
    config = tmp_path / "daemon.yaml"
    os.makedirs(tmp_path / "stacks")
    config.write_text("sources:\n  - name: local\n    dir: ./stacks\n    notes: true\n")
    with pytest.raises(SpecError, match=r"daemon.yaml:4:\d+.*notes: is for git sources only"):
        load_config(str(config))


def test_a_rollout_put_back_is_rolled_back_and_its_note_and_status_say_why():
    change = Change(action=Action.REPLACE, kind=Kind.CONTAINER, name="s-web-1", key="web")
    put_back = Outcome(change, Status.FAILED, error="not healthy after 30s; the old container was put back",
                       exception=RolledBack("not healthy"))
    pulled = Outcome(Change(action=Action.UPDATE, kind=Kind.IMAGE, name="web:2", key="web"), Status.OK)
    result = Pass(Trigger.SOURCE, report=ApplyReport(stack="s", outcomes=(pulled, put_back), seconds=31.0))
    told = deployed("s", "ab" * 20, result, host="web1", at=0.0)
    assert told.result is Result.ROLLED_BACK
    assert told.note() == ("stack: s\nresult: rolled back\n"
                           "changes: 2 (update image:web:2, replace container:s-web-1 (failed))\n"
                           "time: 1970-01-01T00:00:00Z\nhost: web1\n"
                           "why: container:s-web-1: not healthy after 30s; the old container was put back")
    assert told.summary() == ("rolled back: update 1, replace 1: container:s-web-1: not healthy after 30s; "
                              "the old container was put back")
    assert deployed("s", "ab" * 20, Pass(Trigger.RESYNC, suspended=Plan(stack="s", changes=())), host="h") is None
    assert deployed("s", "", result, host="h") is None  # a directory source: no commit


def test_a_secret_value_the_process_knows_is_in_no_note_and_no_status(origin, tmp_path, monkeypatch):
    from reconciler.daemon import feedback as feedback_module
    from reconciler.daemon.config import CommitStatus
    from reconciler.redact import register_secrets

    commit = origin.commit({"README": "x\n"})
    register_secrets(["pw-7c1f0e9a2b"])  # as loading a spec with a secret env value registers it
    monkeypatch.setenv("STATUS_TOKEN", "forge-token")
    source = Source("repo", git=GitSource(url=origin.url), notes=True,
                    status=CommitStatus("github", "https://api.github.com", "ops/shop", token_env="STATUS_TOKEN"))
    sent = []
    monkeypatch.setattr(feedback_module, "send_status", sent.append)
    feedback = Feedback([source], tmp_path / "state")
    worker = SimpleNamespace(id="repo:.", source=source, stack="sa", path=".", revision=commit)
    feedback.passed(worker, Pass(Trigger.SOURCE, error="the engine said: cannot use pw-7c1f0e9a2b here"))
    feedback.close()
    feedback.run()
    assert "pw-7c1f0e9a2b" not in origin.note(commit) and "cannot use (secret) here" in origin.note(commit)
    (request,) = sent
    assert "pw-7c1f0e9a2b" not in request.body["description"] and "(secret)" in request.body["description"]
