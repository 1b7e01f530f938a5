"""Git notes on the commits the daemon applied, pushed to the source's own repository.

Why notes: ``git log --notes=reconciler`` then says, beside each commit, which
stacks it was applied to, when, where and how that ended, with no forge and
no access to the daemon. A note is attached to a commit without changing it,
so the history people review stays exactly as they pushed it.

Each source with ``notes: true`` gets a bare repository of its own in
``state_dir/notes/<source>`` that holds only the notes ref: the commits a note
names need not be in it (a note is keyed by the commit's id alone). One round
fetches the remote's ``refs/notes/reconciler`` (shallow: only its tip is
needed), appends a block per pass (``git notes append``: several stacks of one
commit share its note, one block each), and pushes without force. A push that
loses a race (someone else added a note meanwhile) fetches the remote's ref
again and appends the same blocks anew, at most ``RETRIES`` times: nothing is
merged by hand, and nobody's block is lost. The repository has no remote
configured; the source's credentials reach git through ``gitenv`` only, and
the token is taken out of every message. A block is pushed where anyone who
can read the repository reads it: the token, credentials in a URL and every
secret value the process knows (``redact``) are taken out of it first.
"""
from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from ..errors import SourceError
from ..redact import redact, without_credentials
from .config import GitWrite, Source
from .gitenv import SourceGit, source_git

__all__ = ["NOTES_REF", "NoteWriter", "NotesRejected", "RETRIES"]

#: Where every note of the daemon lives, locally and on the remote.
NOTES_REF = "refs/notes/reconciler"
#: Pushes tried again after losing a race, before giving up.
RETRIES = 5


class NotesRejected(SourceError):
    """The remote refused the notes for a reason other than a race, or races kept being lost."""


class NoteWriter(SourceGit):
    """Appends note blocks to commits of one git source and pushes them (``append``)."""

    def __init__(self, source: Source, state_dir: Path) -> None:
        if source.git is None:
            raise SourceError(f"source {source.name} is a directory: there are no commits to note")
        self.source = source
        self.root = Path(state_dir) / "notes" / source.name
        self._token = ""

    def append(self, blocks: Sequence[tuple[str, str]]) -> None:
        """Append each ``(commit id, text)`` to that commit's note, in order, and push them in one push.

        A lost race fetches the remote's notes again and appends the same blocks again, at most ``RETRIES``
        times; then, or when the remote refuses for another reason, ``NotesRejected``.
        """
        if not blocks:
            return
        with self._locked():
            for _ in range(1 + RETRIES):
                self._start()
                for commit, text in blocks:
                    self._git("notes", f"--ref={NOTES_REF}", "append", "-m", self._clean(text), commit,
                              what=f"notes append {commit[:12]}", author=True)
                if self._push():
                    return
        raise NotesRejected(f"source {self.source.name}: pushing {NOTES_REF} lost the race to other pushes "
                            f"{1 + RETRIES} times; these notes were not written")

    def _start(self) -> None:
        """The local notes ref exactly as the remote has it (none when it has none)."""
        if not (self.root / "HEAD").is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            self._git("init", "--quiet", "--bare", what="init")
        if self._git("ls-remote", self._url, NOTES_REF, what="ls-remote").strip():
            self._git("fetch", "--depth", "1", "--no-tags", "--force", "--quiet", self._url,
                      f"+{NOTES_REF}:{NOTES_REF}", what=f"fetch {NOTES_REF}")
        else:
            self._git("update-ref", "-d", NOTES_REF, what="update-ref")

    def _push(self) -> bool:
        """Push the notes ref: true when it went, false when it lost a race, else ``NotesRejected``."""
        return self._pushed(f"{NOTES_REF}:{NOTES_REF}", NotesRejected,
                            f"{NOTES_REF} to {without_credentials(self._url)}")

    def _clean(self, text: str) -> str:
        """A block as it may be written: no credentials nor secret values (a spec's secret env, a registry's
        password: ``redact``), however they got into a pass's message."""
        text = redact(without_credentials(text))
        return text.replace(self._token, "(secret)") if self._token else text

    # -- running git ---------------------------------------------------------------------------------------------

    def _run(self, args: list[str], *, author: bool = False) -> subprocess.CompletedProcess:
        done, self._token = source_git(self.source.name, self.source.git, self.root.parent, args,
                                       author=(self.source.write or GitWrite()).author if author else None,
                                       env={"GIT_DIR": str(self.root)},  # the bare notes repository
                                       cwd=self.root if self.root.is_dir() else None)
        return done
