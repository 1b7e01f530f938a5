"""Committing image updates back to a git source, and pushing them with the source's own credentials.

Why the daemon writes to git at all: when a policy picks a newer tag, git
stays the single source of truth. The daemon commits the new tag to the
repository it follows, and the loop applies that commit like any other, so
``history`` names the commit that changed the engine and a person can
revert it as any other commit.

Each commit changes exactly the characters of the values it updates
(``spec.textedit``): comments, order, quoting and indentation stay byte for
byte. A push that loses a race (someone pushed meanwhile) fetches the new
head and asks for the edits again from the files as they are then, so
neither change is lost; if the value itself changed meanwhile, the edit is
refused and nothing is pushed.

The working clone lives in ``state_dir/writes/<source>``: made once,
shallow, fetched before each commit; it has no remote configured (the URL is
given to each fetch and push, as the checkout does), so no credentials are
ever written into it. Tokens reach git through ``gitenv`` only. One writer
per source works at a time (a lock file beside the clone).
"""
from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import SourceError
from ..paths import inside
from ..redact import without_credentials
from ..spec.textedit import EditRefused, replace_value
from .config import GitWrite, Source
from .gitenv import SourceGit, source_git

__all__ = ["FileEdit", "GitWriter", "PushRejected", "RETRIES", "branch_name"]

#: Pushes tried again after losing a race, before giving up.
RETRIES = 5
#: Characters a branch name may not hold (``git check-ref-format``), replaced by '-'.
_NOT_IN_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]+|\.\.+|@\{")


@dataclass(frozen=True)
class FileEdit:
    """One value to change: the scalar starting at ``line``:``col`` of ``path`` holds ``old`` and becomes ``new``."""

    path: str  # relative to the repository root
    line: int
    col: int
    old: str
    new: str


class PushRejected(SourceError):
    """The remote refused a push for a reason other than a race, races kept being lost, or a revert conflicts."""


def branch_name(template: str, *, stack: str, image: str, version: str) -> str:
    """A source's ``write.branch`` with its placeholders filled, made a valid branch name (``a/b:1`` → ``a/b-1``)."""
    name = template.format(stack=stack, image=image, version=version)
    return _NOT_IN_REF.sub("-", name).strip("/.") or "update"


class GitWriter(SourceGit):
    """Commits to one git source: edits of values (``commit``) and reverts of earlier commits (``revert``)."""

    def __init__(self, source: Source, state_dir: Path) -> None:
        if source.git is None:
            raise SourceError(f"source {source.name} is a directory: there is no repository to commit to")
        self.source = source
        self.write = source.write or GitWrite()
        self.root = Path(state_dir) / "writes" / source.name

    def commit(self, make_edits: Callable[[Path], list[FileEdit]], message: str, *, branch: str | None = None) -> str:
        """Commit the edits ``make_edits(root)`` computes from the files at the newest head of the tracked ref
        (or of ``branch``, made from that head if the remote does not have it yet), push it, and return its
        full id; "" when there is nothing to change.

        A push that loses a race fetches again and calls ``make_edits`` again (positions may have moved), at
        most ``RETRIES`` times, then raises ``PushRejected``. An ``EditRefused`` propagates with nothing
        committed or pushed.
        """
        with self._locked():
            return self._until_pushed(lambda: self._edit(make_edits, message), branch)

    def revert(self, commit: str, message: str, *, branch: str | None = None) -> str:
        """Revert ``commit`` on the newest head of the tracked ref (or ``branch``) with ``message``, push it and
        return the new commit's id ("" when there is nothing left to revert). ``PushRejected`` when the revert
        conflicts (the lines it changed have changed since) or races keep being lost."""
        with self._locked():
            return self._until_pushed(lambda: self._revert(commit, message, branch or self.source.git.ref), branch)

    # -- one attempt ---------------------------------------------------------------------------------------------

    def _until_pushed(self, make_commit: Callable[[], str], branch: str | None) -> str:
        target = branch or self.source.git.ref
        for _ in range(1 + RETRIES):
            self._start(branch)
            made = make_commit()
            if not made or self._push(target):
                return made
        raise PushRejected(f"source {self.source.name}: pushing to {target} lost the race to other pushes "
                           f"{1 + RETRIES} times; nothing was pushed, the next update tries again")

    def _start(self, branch: str | None) -> None:
        """The working clone at the newest head of ``branch`` if the remote has it, else of the tracked ref."""
        if not (self.root / ".git").is_dir():
            self.root.mkdir(parents=True, exist_ok=True)
            self._git("init", "--quiet", what="init")
        ref = self.source.git.ref
        if branch is not None and self._git("ls-remote", "--heads", self._url, _head(branch), what="ls-remote"):
            ref = branch
        self._git("fetch", "--depth", "1", "--no-tags", "--force", "--quiet", self._url, ref, what=f"fetch {ref}")
        self._git("checkout", "--quiet", "--force", "-B", "reconciler-write", "FETCH_HEAD", what="checkout")
        self._git("clean", "--quiet", "-d", "-x", "--force", what="clean")

    def _edit(self, make_edits: Callable[[Path], list[FileEdit]], message: str) -> str:
        edits = make_edits(self.root)
        if not edits:
            return ""
        for path in sorted({edit.path for edit in edits}):
            self._apply(path, [edit for edit in edits if edit.path == path])
        self._git("add", "--", *sorted({edit.path for edit in edits}), what="add")
        return self._commit(message)

    def _apply(self, path: str, edits: list[FileEdit]) -> None:
        """Apply ``edits`` to one file, last position first, so each one's line and column still hold."""
        file = (self.root / path).resolve()
        first = edits[0]
        root = self.root.resolve()
        if not inside(file, root) or inside(file, root / ".git") or not file.is_file():
            raise EditRefused(path, first.line, first.col, "is not a file in the repository")
        raw = file.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise EditRefused(path, first.line, first.col, "is not UTF-8 text: edit it by hand") from None
        for edit in sorted(edits, key=lambda e: (e.line, e.col), reverse=True):
            text = replace_value(text, edit.line, edit.col, edit.old, edit.new, filename=path)
        if text.encode("utf-8") != raw:
            file.write_bytes(text.encode("utf-8"))

    def _revert(self, commit: str, message: str, target: str) -> str:
        self._git("fetch", "--depth", "2", "--no-tags", "--quiet", self._url, commit, what=f"fetch {commit[:12]}")
        try:
            self._git("revert", "--no-commit", commit, what=f"revert {commit[:12]}", author=True)
        except SourceError as exc:
            self._git("reset", "--quiet", "--hard", what="reset")
            raise PushRejected(f"source {self.source.name}: reverting {commit[:12]} on {target} conflicts: the "
                               f"lines it changed have changed since; revert it by hand\n{exc}") from None
        return self._commit(message)

    def _commit(self, message: str) -> str:
        """Commit what is staged as the configured author (signed when a key is set); "" when nothing is."""
        if self._git("diff", "--cached", "--name-only", what="diff"):
            signing = (["-c", "gpg.format=ssh", "-c", f"user.signingkey={self.write.signing_key}"]
                       if self.write.signing_key else ["-c", "commit.gpgsign=false"])
            self._git(*signing, "commit", "--quiet", "--no-verify", *(["-S"] if self.write.signing_key else []),
                      "-m", message, what="commit", author=True)
            return self._git("rev-parse", "HEAD", what="rev-parse").strip()
        return ""

    def _push(self, target: str) -> bool:
        """Push HEAD to ``target``: true when it went, false when it lost a race, else ``PushRejected``."""
        return self._pushed(f"HEAD:{_head(target)}", PushRejected, f"to {without_credentials(self._url)} {target}")

    # -- running git ---------------------------------------------------------------------------------------------

    def _run(self, args: list[str], *, author: bool = False) -> subprocess.CompletedProcess:
        done, self._token = source_git(self.source.name, self.source.git, self.root.parent,
                                       ["-c", "core.autocrlf=false", *args],
                                       author=self.write.author if author else None, cwd=self.root)
        return done


def _head(ref: str) -> str:
    """A branch's full ref name (``main`` → ``refs/heads/main``)."""
    return ref if ref.startswith("refs/") else f"refs/heads/{ref}"

