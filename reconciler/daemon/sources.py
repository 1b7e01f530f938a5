"""Getting a source's files: git repositories through the git CLI, local directories as they are.

Why the git CLI rather than a library: it is on every machine that has git
repositories, it speaks every transport and credential setup users already
have (https with tokens, ssh with keys and known_hosts, file://), and its
shallow fetch of one ref is exactly what a reconciler needs. dulwich lacks
parts of the smart protocol's shallow and auth handling; pygit2 needs libgit2
built with the right transports.

Each fetch is shallow (``--depth 1``) and of one ref, into a bare repository
in the state directory; a force-pushed branch is simply its new head. Each
revision is exported (``git archive``) into a directory of its own, so a pass
reading the files never sees a half-updated tree; the two newest are kept.
Tokens reach git through ``GIT_ASKPASS`` and the environment, never through
its command line (visible to every user in ``ps``) or a log line.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from ..errors import TemporaryError
from ..paths import inside
from .config import Source

__all__ = ["Checkout", "SourceError", "checkout_for"]

GIT_TIMEOUT = 120
KEEP = 2


class SourceError(TemporaryError):
    """A source could not be fetched (unreachable, refused, a ref that does not exist): retried."""


class Checkout:
    """The files of one source at its current revision."""

    def __init__(self, source: Source, state_dir: Path) -> None:
        self.source = source
        self.root = state_dir / "sources" / source.name
        self.revision = ""
        self.tree: Path | None = Path(source.dir) if source.dir else None

    def refresh(self) -> bool:
        """Fetch the source; true when its revision changed (always false for a directory)."""
        return False

    def tree_at(self, revision: str) -> Path:
        """The files at an older ``revision`` (``reconcile rollback``); only git sources have revisions."""
        raise SourceError(f"source {self.source.name} is a directory: it has no revisions to roll back to")

    def path(self, within: str, tree: Path | None = None) -> Path | None:
        """Where a stack's path is in ``tree`` (default: the current one); None before the first fetch."""
        tree = tree or self.tree
        if tree is None:
            return None
        target = (tree / within).resolve()
        if not inside(target, tree.resolve()):
            raise SourceError(f"source {self.source.name}: path {within!r} leaves the repository")
        return target


class GitCheckout(Checkout):
    def refresh(self) -> bool:
        git = self.source.git
        assert git is not None
        repo = self.root / "repo.git"
        if not (repo / "HEAD").exists():
            repo.mkdir(parents=True, exist_ok=True)
            self._git("init", "--bare", "--quiet", str(repo))
        self._git("--git-dir", str(repo), "fetch", "--depth", "1", "--no-tags", "--force", "--quiet",
                  git.url, git.ref)
        revision = self._git("--git-dir", str(repo), "rev-parse", "FETCH_HEAD^{commit}").strip()
        if revision == self.revision:
            return False
        self.tree = self._export(repo, revision)
        self.revision = revision
        self._forget_old()
        return True

    def tree_at(self, revision: str) -> Path:
        """Fetch ``revision`` by its id (shallow) unless it is exported already, and export it."""
        target = self.root / "trees" / revision
        if not target.is_dir():
            repo = self.root / "repo.git"
            self._git("--git-dir", str(repo), "fetch", "--depth", "1", "--no-tags", "--quiet", self.source.git.url,
                      revision)
            full = self._git("--git-dir", str(repo), "rev-parse", "FETCH_HEAD^{commit}").strip()
            if full != revision:
                raise SourceError(f"source {self.source.name}: {revision} is not a full commit id")
            self._export(repo, revision)
        self.pinned = target
        return target

    pinned: Path | None = None  # a held revision's tree, kept by _forget_old

    def _export(self, repo: Path, revision: str) -> Path:
        target = self.root / "trees" / revision
        if not target.is_dir():
            archive = self._git("--git-dir", str(repo), "archive", "--format=tar", revision, binary=True)
            partial = target.with_name(revision + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                _extract(tar, partial)
            partial.rename(target)
        return target

    def _forget_old(self) -> None:
        trees = sorted((self.root / "trees").iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in [t for t in trees if t not in (self.tree, self.pinned)][KEEP - 1:]:
            shutil.rmtree(old, ignore_errors=True)

    def _git(self, *args: str, binary: bool = False):
        git = self.source.git
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
        token = _token(git)
        if token:
            askpass = self.root / "askpass.sh"
            if not askpass.exists():
                self.root.mkdir(parents=True, exist_ok=True)
                askpass.write_text('#!/bin/sh\ncase "$1" in Username*) echo x-access-token ;; '
                                   '*) printf "%s\\n" "$RECONCILER_GIT_TOKEN" ;; esac\n')
                askpass.chmod(0o700)
            env.update(GIT_ASKPASS=str(askpass), RECONCILER_GIT_TOKEN=token)
        if git.ssh_key:
            env["GIT_SSH_COMMAND"] = (f"ssh -i {git.ssh_key} -o IdentitiesOnly=yes -o BatchMode=yes "
                                      "-o StrictHostKeyChecking=accept-new")
        try:
            done = subprocess.run(["git", *args], capture_output=True, env=env, timeout=GIT_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SourceError(f"source {self.source.name}: git {args[2] if len(args) > 2 else args[0]}: {exc}") from exc
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip().splitlines()
            message = detail[-1] if detail else f"exit status {done.returncode}"
            if token:
                message = message.replace(token, "(secret)")
            raise SourceError(f"source {self.source.name}: fetching {git.url} {git.ref} failed: {message}")
        return done.stdout if binary else done.stdout.decode(errors="replace")


def _extract(tar: tarfile.TarFile, target: Path) -> None:
    """Unpack ``tar`` into ``target``, refusing members and links that would leave it, and special files."""
    try:
        tar.extractall(target, filter="data")
    except TypeError:  # Python before 3.11.4 (Debian 12 has 3.11.2): the same checks, by hand
        root = target.resolve()
        for member in tar.getmembers():
            _check_member(member, root)
        tar.extractall(target)


def _check_member(member: tarfile.TarInfo, root: Path) -> None:
    where = (root / member.name).resolve()
    if not inside(where, root) or member.name.startswith("/"):
        raise SourceError(f"the archive's {member.name!r} would be written outside the checkout")
    if member.isdev() or member.isfifo():
        raise SourceError(f"the archive's {member.name!r} is a special file")
    if member.issym() or member.islnk():
        base = where.parent if member.issym() else root
        pointed = (base / member.linkname).resolve()
        if member.linkname.startswith("/") or not inside(pointed, root):
            raise SourceError(f"the archive's link {member.name!r} points outside the checkout")


def _token(git) -> str:
    if git.token_env:
        return os.environ.get(git.token_env, "")
    if git.token_file:
        try:
            return Path(git.token_file).read_text().strip()
        except OSError as exc:
            raise SourceError(f"cannot read the token file {git.token_file}: {exc.strerror or exc}") from exc
    return ""


def checkout_for(source: Source, state_dir: Path) -> Checkout:
    return GitCheckout(source, state_dir) if source.git else Checkout(source, state_dir)
