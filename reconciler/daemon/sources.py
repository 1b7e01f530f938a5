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
reading the files never sees a half-updated tree; the two newest are kept. A
link is exported as a link when it stays inside the checkout; a link to an
absolute path or out of the repository (``app.env -> /etc/shadow``), or a
special file, makes that revision invalid (``InvalidRevision``, naming the path
in the repository): the checkout stays at its last good revision, remembers
the bad one so that it is reported once, and moves at the next commit that
exports. Tokens reach git through ``GIT_ASKPASS`` and the environment (``gitenv``, which the
writer of image updates uses too), never through its command line (visible to every user in
``ps``) or a log line.
"""
from __future__ import annotations

import dataclasses
import io
import os
import shutil
import subprocess
import tarfile
import threading
import time
from pathlib import Path

from ..errors import SourceError, SpecError
from ..paths import inside
from ..redact import without_credentials
from .config import Source
from .gitenv import git_environment, git_message, run_git

__all__ = ["Checkout", "InvalidRevision", "checkout_for", "in_source", "shared_checkouts", "untouched", "within"]

KEEP = 2
#: Revisions' trees whose stack paths are kept resolved (the current one, one being read, one rolled back to).
RESOLVED_TREES = 4


class InvalidRevision(SourceError):
    """A fetched revision whose files cannot be exported as they are (a link that leaves the checkout, a special
    file): it is never applied, and fetching it again cannot help; the next commit can.

    ``path`` is where the problem is: an archive member, then ``repo@3f2a9c1e0b7d:app.env`` once the checkout
    has named it; ``revision`` is the full commit id.
    """

    invalid = True

    def __init__(self, path: str, reason: str, revision: str = "") -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason, self.revision = path, reason, revision


class Checkout:
    """The files of one source at its current revision."""

    def __init__(self, source: Source, state_dir: Path) -> None:
        self.source = source
        self.root = state_dir / "sources" / source.name
        self.revision = ""
        self.tree: Path | None = Path(source.dir) if source.dir else None
        #: The newest fetched revision when it could not be exported (the checkout stays at ``revision``), else None.
        self.rejected: InvalidRevision | None = None
        #: When it was last fetched (monotonic), whatever came of it: sources sharing it fetch once a round.
        self.fetched_at = float("-inf")
        self._resolved: dict[Path, dict[str, Path]] = {}  # tree → path → where it is, for git revisions' trees

    def refresh(self) -> bool:
        """Fetch the source; true when its revision changed (always false for a directory)."""
        return False

    def changed_since(self, revision: str) -> set[str] | None:
        """The paths (relative to the repository) that differ between ``revision`` and the current one;
        None when it cannot tell (a directory, a revision it no longer has)."""
        return None

    def tree_of(self, revision: str) -> Path | None:
        """Where ``revision``'s files are (or were) exported; None for a directory."""
        return self.root / "trees" / revision if revision and self.source.git else None

    def tree_at(self, revision: str) -> Path:
        """The files at an older ``revision`` (``reconcile rollback``); only git sources have revisions."""
        raise SourceError(f"source {self.source.name} is a directory: it has no revisions to roll back to")

    def path(self, within: str, tree: Path | None = None) -> Path | None:
        """Where a stack's path is in ``tree`` (default: the current one); None before the first fetch."""
        tree = tree or self.tree
        if tree is None:
            if self.rejected is not None:  # the only revision fetched so far is invalid: that is why
                raise InvalidRevision(self.rejected.path, self.rejected.reason, self.rejected.revision)
            return None
        known = self._resolved.get(tree, {}).get(within)
        if known is not None:  # an exported revision's tree never changes: resolved once
            return known
        target = (tree / within).resolve()
        if not inside(target, tree.resolve()):
            raise SourceError(f"source {self.source.name}: path {within!r} leaves the repository")
        if self.source.git:  # every path of the last few trees (a source of a thousand stacks: all of them)
            if tree not in self._resolved and len(self._resolved) >= RESOLVED_TREES:
                self._resolved = {}  # a race loses an entry at worst: resolved again
            self._resolved.setdefault(tree, {})[within] = target
        return target


class GitCheckout(Checkout):
    def refresh(self) -> bool:
        """Fetch the ref; true when it moved to a revision that exported.

        A revision that does not export raises ``InvalidRevision`` once; later fetches of it change nothing.
        """
        git = self.source.git
        assert git is not None
        repo = self.root / "repo.git"
        if not (repo / "HEAD").exists():
            repo.mkdir(parents=True, exist_ok=True)
            self._git("init", "--bare", "--quiet", str(repo))
        self._git("--git-dir", str(repo), "fetch", "--depth", "1", "--no-tags", "--force", "--quiet",
                  git.url, git.ref)
        self.fetched_at = time.monotonic()
        revision = _fetched(repo) or self._git("--git-dir", str(repo), "rev-parse", "FETCH_HEAD^{commit}").strip()
        if revision == self.revision or (self.rejected is not None and revision == self.rejected.revision):
            return False  # an invalid revision was reported when it came: nothing has moved since
        try:
            self.tree = self._export(repo, revision)
        except InvalidRevision as exc:
            self.rejected = exc
            raise
        self.revision, self.rejected = revision, None
        self._forget_old()
        return True

    def changed_since(self, revision: str) -> set[str] | None:
        """The paths that differ between ``revision`` and the current one (both trees are in the bare repository:
        a shallow fetch keeps the objects of the ones before); None when git cannot tell."""
        if not revision or not self.revision:
            return None
        try:
            out = self._git("--git-dir", str(self.root / "repo.git"), "diff", "--name-only", "--no-renames", "-z",
                            revision, self.revision)
        except SourceError:
            return None
        return {name for name in out.split("\0") if name}

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
        """The tree of ``revision``, exported once; ``InvalidRevision``, named in the repository, if it cannot be."""
        target = self.root / "trees" / revision
        if not target.is_dir():
            archive = self._git("--git-dir", str(repo), "archive", "--format=tar", revision, binary=True)
            partial = target.with_name(revision + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            try:
                with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                    _extract(tar, partial)
            except InvalidRevision as exc:
                shutil.rmtree(partial, ignore_errors=True)
                raise InvalidRevision(f"{self.source.name}@{revision[:12]}:{exc.path}",
                                      f"{exc.reason}; revision {revision[:12]} is not applied, every stack stays "
                                      "at its last good revision", revision) from None
            partial.rename(target)
        return target

    def _forget_old(self) -> None:
        trees = sorted((self.root / "trees").iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in [t for t in trees if t not in (self.tree, self.pinned)][KEEP - 1:]:
            shutil.rmtree(old, ignore_errors=True)

    def _git(self, *args: str, binary: bool = False):
        git = self.source.git
        env, token = git_environment(git, self.root)
        try:
            done = run_git(list(args), env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            command = args[2] if len(args) > 2 else args[0]
            raise SourceError(without_credentials(f"source {self.source.name}: git {command}: {exc}")) from exc
        if done.returncode != 0:
            message = git_message(done.stderr, done.returncode, token)
            raise SourceError(f"source {self.source.name}: fetching {without_credentials(git.url)} {git.ref} "
                              f"failed:\n{message}")
        return done.stdout if binary else done.stdout.decode(errors="replace")


def _fetched(repo: Path) -> str:
    """The commit a fetch left in ``FETCH_HEAD`` when it names one git need not peel (a branch's), else "".

    Read from the file: a poll every second of an unchanged source then costs one git process, not two.
    An annotated tag's line names the tag object, which is no commit: ``rev-parse`` peels it.
    """
    try:
        line = (repo / "FETCH_HEAD").read_text().partition("\n")[0]
    except OSError:
        return ""
    sha, _, rest = line.partition("\t")
    return sha if len(sha) in (40, 64) and "tag '" not in rest else ""


def _extract(tar: tarfile.TarFile, target: Path) -> None:
    """Unpack ``tar`` into ``target``: files, folders and links that stay inside it, or ``InvalidRevision``.

    Each member is checked before anything is written (its name, a link's
    target as written), the tarfile ``data`` filter checks again while
    extracting where Python has it (3.11.4 and later), and every link is
    followed on disk once all are there: a chain of links that are each
    harmless alone (``a -> b/..``, ``b -> .``) is caught too.
    """
    root = target.resolve()
    members = tar.getmembers()
    for member in members:
        _check_member(member, root)
    try:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(target, members, filter="data")
        else:  # Python before 3.11.4 (Debian 12 has 3.11.2): the checks above, and the links below
            tar.extractall(target, members)
    except tarfile.FilterError as exc:
        raise InvalidRevision(exc.tarinfo.name, f"cannot be exported inside the checkout ({exc})") from None
    for folder, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = Path(folder, name)
            if path.is_symlink() and not inside(path.resolve(), root):
                raise InvalidRevision(str(path.relative_to(root)),
                                      f"is a link to {os.readlink(path)!r}, which leads out of the repository")


def _check_member(member: tarfile.TarInfo, root: Path) -> None:
    """``InvalidRevision`` unless ``member`` would be written inside ``root`` and, as a link, point inside it."""
    where = (root / member.name).resolve()
    if not inside(where, root) or member.name.startswith("/"):
        raise InvalidRevision(member.name, "would be written outside the checkout")
    if member.isdev() or member.isfifo():
        raise InvalidRevision(member.name, "is a special file (a device or a pipe)")
    if member.issym() or member.islnk():
        if member.linkname.startswith("/"):
            raise InvalidRevision(member.name, f"is a link to the absolute path {member.linkname!r}: "
                                               "a link must stay inside the repository")
        base = where.parent if member.issym() else root
        if not inside((base / member.linkname).resolve(), root):
            raise InvalidRevision(member.name, f"is a link to {member.linkname!r}, which leads out of the repository")


def untouched(spec: tuple | None, path: str, tree: Path | None, changed: set[str] | None) -> bool:
    """Whether a commit leaves a stack as it was: none of the paths ``changed`` since the stack's last good spec
    was read (relative to the repository) is one that spec was made from (``spec``: ((where, revision),
    DesiredState), read from ``tree``, the revision's), nor under the stack's ``path``.

    Such a stack needs no pass now (its next pass, at a resync or an event, reads the new revision): a commit
    to one stack of a thousand in one repository is one pass, not a thousand. Anything it cannot tell (git
    could not say, a file outside the repository, a spec read at another revision) counts as a change.
    """
    if changed is None or tree is None or spec is None or not within(spec[1], tree):
        return False
    own = os.path.normpath(path)
    if own == ".":
        return not changed
    root = str(tree.resolve())
    deps = [own, *(os.path.relpath(p, root) for p in _made_from(spec[1]))]
    return not any(inside(name, dep) for name in changed for dep in deps)


def within(desired, tree: Path) -> bool:
    """Whether every file and build context a spec (a ``DesiredState``) was made from is in ``tree``."""
    root = str(tree.resolve())
    return all(inside(path, root) for path in _made_from(desired))


def _made_from(desired) -> list[str]:
    from ..filewatch import watched_paths

    files, trees = watched_paths(desired)
    return [*files, *trees]


def shared_checkouts(sources, state_dir: Path) -> tuple[dict[str, Checkout], dict[str, threading.Lock], dict[str, str]]:
    """Each source's checkout, the lock of its fetches, and the first source of its group (whose name its poll
    round takes): sources on one repository and ref, with the same credentials, share one (one fetch a round)."""
    made: dict[tuple, tuple[Checkout, threading.Lock, str]] = {}
    for source in sources:
        git = source.git
        key = (git.url, git.ref, git.token_file, git.token_env, git.ssh_key) if git else ("dir", source.name)
        made.setdefault(key, (checkout_for(source, state_dir), threading.Lock(), source.name))
        made[source.name] = made[key]
    return ({s.name: made[s.name][0] for s in sources}, {s.name: made[s.name][1] for s in sources},
            {s.name: made[s.name][2] for s in sources})


def checkout_for(source: Source, state_dir: Path) -> Checkout:
    return GitCheckout(source, state_dir) if source.git else Checkout(source, state_dir)


def in_source(error: SpecError, source: str, tree: Path | None, revision: str) -> SpecError:
    """The same problems, each file named as in the repository (``repo@3f2a9c1:stacks/a/stack.yaml``)."""
    if tree is None or not revision:
        return error
    tree = str(tree) + "/"
    prefix = f"{source}@{revision[:12]}:"
    return SpecError([dataclasses.replace(p, file=prefix + p.file[len(tree):]) if p.file.startswith(tree) else p
                      for p in error.problems])

