"""How the git CLI runs for a source: its credentials in the environment, its messages without them.

Three things run git with a source's credentials: the checkout that fetches it
(``sources``), the writer that commits image updates back (``writeback``) and
the notes each pass leaves on the commit it applied (``gitnotes``). All take
them from here, so a token reaches git one way only: through
``GIT_ASKPASS`` and an environment variable, never its command line (visible
to every user in ``ps``), a remote in a repository's config, or a message. An
``ssh_key`` becomes ``GIT_SSH_COMMAND``.
"""
from __future__ import annotations

import fcntl
import os
import re
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

from ..errors import SourceError
from ..redact import without_credentials
from .config import GitSource, Source

__all__ = ["FOREIGN_GIT_ENV", "GIT_TIMEOUT", "git_environment", "git_identity", "git_message", "lost_race", "source_git",
           "SourceGit", "writer_lock",
           "read_token", "run_git"]

GIT_TIMEOUT = 120
#: The most of git's own message an error carries (it says all it knows in a few lines).
GIT_MESSAGE_LINES = 20
#: Environment that would point git at another repository than the one it is run in.
FOREIGN_GIT_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_NAMESPACE")
_AUTHOR = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<(?P<email>[^<>]*)>\s*$")
#: What ``git push --porcelain`` says of a ref that lost a race: someone else moved it first.
_RACE = re.compile(r"\((fetch first|non-fast-forward|cannot lock ref[^)]*|failed to update ref[^)]*)\)")
_ASKPASS = ('#!/bin/sh\ncase "$1" in Username*) echo x-access-token ;; '
            '*) printf "%s\\n" "$RECONCILER_GIT_TOKEN" ;; esac\n')


def git_environment(git: GitSource, askpass_dir: Path) -> tuple[dict[str, str], str]:
    """The environment git runs in to reach ``git``'s repository, and the token it holds ("" when none).

    The token (``token_file``/``token_env``) is handed over by an askpass script written once in
    ``askpass_dir``; the caller keeps the token only to take it out of git's messages (``git_message``).
    """
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
    token = read_token(git)
    if token:
        askpass = askpass_dir / "askpass.sh"
        if not askpass.exists():
            askpass_dir.mkdir(parents=True, exist_ok=True)
            partial = askpass.with_name(f"askpass.{os.getpid()}.partial")
            partial.write_text(_ASKPASS)
            partial.chmod(0o700)
            partial.replace(askpass)  # whole or not at all, whoever writes it first
        env.update(GIT_ASKPASS=str(askpass), RECONCILER_GIT_TOKEN=token)
    if git.ssh_key:
        env["GIT_SSH_COMMAND"] = (f"ssh -i {git.ssh_key} -o IdentitiesOnly=yes -o BatchMode=yes "
                                  "-o StrictHostKeyChecking=accept-new")
    return env, token


def read_token(git: GitSource) -> str:
    """The source's https token, from its environment variable or file; "" when it has none."""
    if git.token_env:
        return os.environ.get(git.token_env, "")
    if git.token_file:
        try:
            return Path(git.token_file).read_text().strip()
        except OSError as exc:
            raise SourceError(f"cannot read the token file {git.token_file}: {exc.strerror or exc}") from exc
    return ""


def run_git(args: list[str], env: dict[str, str], *, cwd: Path | None = None,
            timeout: float = GIT_TIMEOUT) -> subprocess.CompletedProcess:
    """``git ARGS`` with ``env``, its output captured; OSError or TimeoutExpired as they come."""
    return subprocess.run(["git", *args], capture_output=True, env=env, cwd=cwd, timeout=timeout)


def source_git(name: str, git: GitSource, askpass_dir: Path, args: list[str], *, author: str | None = None,
               env: Mapping[str, str] = {}, cwd: Path | None = None) -> tuple[subprocess.CompletedProcess, str]:
    """``git ARGS`` as a writer to source ``name`` runs it (the image writer, the notes writer): with the
    source's credentials, none of the caller's ``GIT_*`` that would point it at another repository, ``env``
    on top, ``author`` as author and committer. Returns (its result, the token, to redact from its messages);
    git that could not run at all is a SourceError that names neither the token nor the URL's credentials."""
    full, token = git_environment(git, askpass_dir)
    for variable in FOREIGN_GIT_ENV:
        full.pop(variable, None)
    full.update(env)
    if author is not None:
        full.update(git_identity(author))
    try:
        return run_git(args, full, cwd=cwd), token
    except (OSError, subprocess.TimeoutExpired) as exc:
        message = without_credentials(f"source {name}: git {args[0]}: {exc}")
        raise SourceError(message.replace(token, "(secret)") if token else message) from exc


@contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """One writer at a time of what ``path`` (a lock file, made 0600) guards: in this process and across
    processes on one state directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def git_identity(author: str) -> dict[str, str]:
    """The environment that makes ``name <email>`` both author and committer."""
    match = _AUTHOR.match(author)
    name, email = (match["name"], match["email"]) if match else (author, "")
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}


def lost_race(porcelain: bytes) -> bool:
    """Whether ``git push --porcelain`` refused a ref because someone moved it first (fetch and try again)."""
    return bool(_RACE.search(porcelain.decode(errors="replace")))


def git_message(stderr: bytes, status: int, token: str = "") -> str:
    """Everything git said (its last lines when it said a lot), indented, without ``token`` or any
    credentials in a URL."""
    lines = [line.rstrip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    if not lines:
        return f"  git exited with status {status} and said nothing"
    shown = lines[-GIT_MESSAGE_LINES:]
    if len(lines) > len(shown):
        shown.insert(0, f"({len(lines) - len(shown)} earlier lines left out)")
    message = without_credentials("\n".join("  " + line for line in shown))
    return message.replace(token, "(secret)") if token else message


class SourceGit:
    """What a writer to a git source (the image writer, the notes writer) shares: the remote's URL, git run
    with its output checked, and one writer at a time. A subclass sets ``source`` and ``root`` (its
    repository, whose parent holds the lock) and says how git runs there (``_run``, through ``source_git``,
    keeping the token in ``_token`` for the messages)."""

    source: Source
    root: Path
    _token = ""

    @property
    def _url(self) -> str:
        return self.source.git.url

    def _run(self, args: list[str], *, author: bool = False) -> subprocess.CompletedProcess:
        raise NotImplementedError

    def _git(self, *args: str, what: str, author: bool = False) -> str:
        """Run git in the writer's repository; its output, or ``SourceError`` with git's message (no credentials)."""
        done = self._run(list(args), author=author)
        if done.returncode != 0:
            raise SourceError(f"source {self.source.name}: git {what} failed:\n"
                              f"{git_message(done.stderr, done.returncode, self._token)}")
        return done.stdout.decode(errors="replace")

    def _pushed(self, refspec: str, refused: type[Exception], what: str) -> bool:
        """Push ``refspec`` to the remote: true when it went, false when it lost a race (the remote moved since the
        fetch), else ``refused`` saying ``pushing {what} was refused`` with git's message (no credentials)."""
        done = self._run(["push", "--porcelain", self._url, refspec])
        if done.returncode == 0:
            return True
        if lost_race(done.stdout):
            return False
        raise refused(f"source {self.source.name}: pushing {what} was refused:\n"
                      f"{git_message(done.stderr + done.stdout, done.returncode, self._token)}")

    def _locked(self):
        """One writer of this kind per source at a time, in this process and across processes on one state
        directory."""
        return writer_lock(self.root.parent / f"{self.source.name}.lock")
