"""GitWriter against real git: a bare repository as the remote (file://), another clone racing it.

Needs git (and ssh-keygen for signing), no engine.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from reconciler.daemon.config import GitSource, GitWrite, Source
from reconciler.daemon.writeback import RETRIES, FileEdit, GitWriter, PushRejected, branch_name
from reconciler.errors import SourceError
from reconciler.spec.textedit import EditRefused
from reconciler.spec.yamlsafe import compose_file

STACK = """\
# shop: the web tier
stack: shop
images:
  web:
    ref: 'registry.example.com/web:1.4.0'   # automation moves this
containers:
  web: {image: web}
"""
REF = ("images", "web", "ref")
OLD, NEW = "registry.example.com/web:1.4.0", "registry.example.com/web:1.4.1"


def git(cwd: Path, *args: str, env: dict | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr
    return done.stdout


class Remote:
    """A bare repository holding ``app/stack.yaml`` and ``README`` on main, and a clone of a colleague's."""

    def __init__(self, root: Path) -> None:
        self.bare, self.other = root / "origin.git", root / "colleague"
        root.mkdir(parents=True)
        git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(self.bare))
        git(root, "clone", "--quiet", str(self.bare), str(self.other))
        git(self.other, "checkout", "--quiet", "-B", "main")
        self.push_from_other({"app/stack.yaml": STACK, "README": "shop\n"}, "first")

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def push_from_other(self, files: dict[str, str], message: str, branch: str = "main") -> None:
        """A colleague's commit, pushed the ordinary way (no force) on top of what the remote has."""
        if git(self.other, "ls-remote", "origin", branch).strip():
            git(self.other, "fetch", "--quiet", "origin", branch)
            git(self.other, "reset", "--quiet", "--hard", "FETCH_HEAD")
        for name, text in files.items():
            (self.other / name).parent.mkdir(parents=True, exist_ok=True)
            (self.other / name).write_text(text)
        git(self.other, "add", "-A")
        git(self.other, "-c", "user.name=colleague", "-c", "user.email=c@example.invalid", "commit", "--quiet",
            "-m", message)
        git(self.other, "push", "--quiet", "origin", f"HEAD:{branch}")

    def show(self, path: str, ref: str = "main") -> str:
        return git(self.bare, "show", f"{ref}:{path}")

    def log(self, ref: str = "main") -> list[str]:
        return git(self.bare, "log", "--format=%s", ref).splitlines()


@pytest.fixture
def remote(tmp_path) -> Remote:
    return Remote(tmp_path / "git")


def writer(remote: Remote, tmp_path: Path, **write) -> GitWriter:
    source = Source(name="app", git=GitSource(url=remote.url), write=GitWrite(**write) if write else None)
    return GitWriter(source, tmp_path / "state")


def tag_edit(root: Path, old: str = OLD, new: str = NEW) -> list[FileEdit]:
    """The edit as the automation makes it: the value's position read from the file as it is now."""
    text = (root / "app/stack.yaml").read_text()
    mark = compose_file(text, "app/stack.yaml").marks[REF]
    return [FileEdit("app/stack.yaml", mark.line, mark.col, old, new)]


def test_a_commit_changes_one_line_of_one_file_as_its_author(remote, tmp_path):
    made = writer(remote, tmp_path, author="Image Bot <bot@example.com>").commit(tag_edit, "web: 1.4.0 → 1.4.1")
    assert made == git(remote.bare, "rev-parse", "main").strip() and len(made) == 40
    assert remote.log() == ["web: 1.4.0 → 1.4.1", "first"]
    assert remote.show("app/stack.yaml") == STACK.replace("web:1.4.0", "web:1.4.1")  # quotes and comment kept
    stat = git(remote.bare, "show", "--numstat", "--format=%an <%ae>|%cn <%ce>", made).split()
    assert stat == ["Image", "Bot", "<bot@example.com>|Image", "Bot", "<bot@example.com>", "1", "1", "app/stack.yaml"]


def test_no_edit_makes_no_commit(remote, tmp_path):
    write = writer(remote, tmp_path)
    assert write.commit(lambda root: [], "nothing") == ""
    assert write.commit(lambda root: tag_edit(root, OLD, OLD), "the same") == ""
    assert remote.log() == ["first"]
    assert git(remote.bare, "log", "-1", "--format=%an <%ae>", "main").strip() == "colleague <c@example.invalid>"


def test_a_race_with_a_push_to_another_file_loses_neither_change(remote, tmp_path):
    calls = []

    def edits(root: Path) -> list[FileEdit]:
        calls.append(root)
        if len(calls) == 1:  # between our fetch and our push, a colleague pushes
            remote.push_from_other({"README": "shop, by the web team\n"}, "readme")
        return tag_edit(root)

    write = writer(remote, tmp_path)
    made = write.commit(edits, "web: 1.4.0 → 1.4.1")
    assert len(calls) == 2 and remote.log() == ["web: 1.4.0 → 1.4.1", "readme", "first"]
    assert remote.show("README") == "shop, by the web team\n"
    assert remote.show("app/stack.yaml") == STACK.replace("web:1.4.0", "web:1.4.1")
    assert made == git(remote.bare, "rev-parse", "main").strip()


def test_a_race_with_a_push_to_another_line_of_the_same_file_reads_the_positions_again(remote, tmp_path):
    moved = STACK.replace("stack: shop\n", "stack: shop\n# owners: web team\nlabels: {team: web}\n")
    calls = []

    def edits(root: Path) -> list[FileEdit]:
        calls.append(tag_edit(root)[0].line)
        if len(calls) == 1:
            remote.push_from_other({"app/stack.yaml": moved}, "labels")
        return tag_edit(root)

    writer(remote, tmp_path).commit(edits, "web: 1.4.0 → 1.4.1")
    assert calls == [5, 7]  # the tag moved down two lines between the tries
    assert remote.show("app/stack.yaml") == moved.replace("web:1.4.0", "web:1.4.1")
    assert remote.log() == ["web: 1.4.0 → 1.4.1", "labels", "first"]


def test_a_race_on_the_same_value_is_refused_and_nothing_is_pushed(remote, tmp_path):
    def edits(root: Path) -> list[FileEdit]:
        found = tag_edit(root)
        if (root / "app/stack.yaml").read_text() == STACK:  # someone moves the tag by hand meanwhile
            remote.push_from_other({"app/stack.yaml": STACK.replace("web:1.4.0", "web:1.5.0")}, "by hand")
        return found

    with pytest.raises(EditRefused, match=r"app/stack.yaml:5:10: holds 'registry.example.com/web:1.5.0', "
                                          r"not 'registry.example.com/web:1.4.0'"):
        writer(remote, tmp_path).commit(edits, "web: 1.4.0 → 1.4.1")
    assert remote.log() == ["by hand", "first"]


def test_races_lost_again_and_again_end_in_push_rejected(remote, tmp_path):
    calls = []

    def edits(root: Path) -> list[FileEdit]:
        calls.append(1)
        remote.push_from_other({"README": f"change {len(calls)}\n"}, f"readme {len(calls)}")
        return tag_edit(root)

    with pytest.raises(PushRejected, match=f"lost the race to other pushes {RETRIES + 1} times"):
        writer(remote, tmp_path).commit(edits, "web: 1.4.0 → 1.4.1")
    assert len(calls) == RETRIES + 1 and remote.log()[0] == f"readme {RETRIES + 1}"
    assert remote.show("app/stack.yaml") == STACK


def test_a_push_the_remote_refuses_is_push_rejected_with_its_message(remote, tmp_path):
    hook = remote.bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected: open a pull request' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(PushRejected, match="(?s)was refused:.*main is protected: open a pull request"):
        writer(remote, tmp_path).commit(tag_edit, "web: 1.4.0 → 1.4.1")
    assert remote.log() == ["first"]


def test_branch_mode_commits_to_a_branch_of_its_own_from_the_tracked_head(remote, tmp_path):
    write = writer(remote, tmp_path, branch="image-updates/{stack}-{image}-{version}")
    branch = branch_name(write.write.branch, stack="shop", image="web", version="1.4.1")
    assert branch == "image-updates/shop-web-1.4.1"
    made = write.commit(tag_edit, "web: 1.4.0 → 1.4.1", branch=branch)
    assert remote.log() == ["first"] and remote.show("app/stack.yaml") == STACK  # main as it was
    assert remote.log(branch) == ["web: 1.4.0 → 1.4.1", "first"]
    assert git(remote.bare, "rev-parse", branch).strip() == made
    # The branch exists on the remote: the next commit to it starts from it (and a colleague's work on it stays).
    remote.push_from_other({"README": "reviewed\n"}, "review note", branch=branch)
    write.commit(lambda root: tag_edit(root, NEW, NEW.replace("1.4.1", "1.4.2")), "web: 1.4.1 → 1.4.2",
                 branch=branch)
    assert remote.log(branch) == ["web: 1.4.1 → 1.4.2", "review note", "web: 1.4.0 → 1.4.1", "first"]
    assert remote.show("README", branch) == "reviewed\n"
    assert branch_name("up/{image}:{version}", stack="s", image="ghcr.io/acme/api", version="v2..1") == \
        "up/ghcr.io/acme/api-v2-1"


def test_revert_undoes_a_commit_on_the_newest_head(remote, tmp_path):
    write = writer(remote, tmp_path, author="Image Bot <bot@example.com>")
    made = write.commit(tag_edit, "web: 1.4.0 → 1.4.1")
    remote.push_from_other({"README": "later\n"}, "later")
    reverted = write.revert(made, "web: back to 1.4.0 (1.4.1 failed its health gate)")
    assert remote.log() == ["web: back to 1.4.0 (1.4.1 failed its health gate)", "later", "web: 1.4.0 → 1.4.1",
                            "first"]
    assert remote.show("app/stack.yaml") == STACK and remote.show("README") == "later\n"
    assert git(remote.bare, "log", "-1", "--format=%an <%ae>", reverted).strip() == "Image Bot <bot@example.com>"
    assert write.revert(made, "again") == ""  # nothing left to revert
    assert len(remote.log()) == 4


def test_a_revert_that_conflicts_is_push_rejected_naming_the_commit(remote, tmp_path):
    write = writer(remote, tmp_path)
    made = write.commit(tag_edit, "web: 1.4.0 → 1.4.1")
    remote.push_from_other({"app/stack.yaml": STACK.replace("web:1.4.0", "web:1.6.0")}, "by hand")
    with pytest.raises(PushRejected, match=f"reverting {made[:12]} on main conflicts"):
        write.revert(made, "web: back to 1.4.0")
    assert remote.log() == ["by hand", "web: 1.4.0 → 1.4.1", "first"]
    # The clone is usable again afterwards.
    assert write.commit(lambda root: tag_edit(root, "registry.example.com/web:1.6.0", NEW), "x")


def test_commits_are_signed_with_the_configured_ssh_key(remote, tmp_path):
    key = tmp_path / "signing_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bot", "-f", str(key)], check=True)
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"bot@example.com {(tmp_path / 'signing_key.pub').read_text()}")
    made = writer(remote, tmp_path, author="Image Bot <bot@example.com>", signing_key=str(key)).commit(
        tag_edit, "web: 1.4.0 → 1.4.1")
    verified = subprocess.run(["git", "-c", f"gpg.ssh.allowedSignersFile={allowed}", "verify-commit", made],
                              cwd=remote.bare, capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    assert 'Good "git" signature for bot@example.com' in verified.stderr
    unsigned = git(remote.bare, "cat-file", "commit", "main~1")
    assert "gpgsig" not in unsigned and "gpgsig" in git(remote.bare, "cat-file", "commit", made)


def test_a_token_reaches_git_only_through_askpass(remote, tmp_path, monkeypatch):
    """git itself is wrapped: each call's arguments are logged, and whether it has the askpass; a push prints
    the token in its error the way a confused server might. The token shows nowhere."""
    token = "tok-4f9a1c33e8b2"
    monkeypatch.setenv("APP_GIT_TOKEN", token)
    real_git = subprocess.run(["which", "git"], capture_output=True, text=True, check=True).stdout.strip()
    wrap = tmp_path / "bin"
    wrap.mkdir()
    calls = tmp_path / "calls.log"
    (wrap / "git").write_text(f"""#!/bin/sh
echo "$* askpass=$("$GIT_ASKPASS" Password)" >> {calls}
case "$*" in *" push "*) if [ -e {tmp_path}/refuse ]; then
    echo "remote: bad token $RECONCILER_GIT_TOKEN" >&2; exit 1; fi;; esac
exec {real_git} "$@"
""")
    (wrap / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrap}:{os.environ['PATH']}")
    source = Source(name="app", git=GitSource(url=remote.url, token_env="APP_GIT_TOKEN"))
    write = GitWriter(source, tmp_path / "state")
    made = write.commit(tag_edit, "web: 1.4.0 → 1.4.1")
    logged = calls.read_text()
    assert f"askpass={token}" in logged  # git was given the token, through its askpass only
    assert token not in logged.replace(f"askpass={token}", "")  # never on a command line
    assert token not in (write.root / ".git" / "config").read_text()
    assert "remote" not in (write.root / ".git" / "config").read_text()
    assert token not in git(remote.bare, "log", "-p", "--format=%H %an %ae %s %b", "main") and made
    (tmp_path / "refuse").touch()
    with pytest.raises(SourceError) as refused:
        write.commit(lambda root: tag_edit(root, NEW, OLD), "back")
    assert "remote: bad token (secret)" in str(refused.value) and token not in str(refused.value)


def test_a_directory_source_has_no_writer(tmp_path):
    with pytest.raises(SourceError, match="source local is a directory"):
        GitWriter(Source(name="local", dir=str(tmp_path)), tmp_path / "state")


def test_two_writers_of_one_source_take_turns(remote, tmp_path):
    import threading

    def edit(path: tuple, old: str, new: str):
        def edits(root: Path) -> list[FileEdit]:
            mark = compose_file((root / "app/stack.yaml").read_text(), "app/stack.yaml").marks[path]
            return [FileEdit("app/stack.yaml", mark.line, mark.col, old, new)]
        return edits

    jobs = [(edit(REF, OLD, NEW), "tag"), (edit(("stack",), "shop", "shop-eu"), "name")]
    threads = [threading.Thread(target=writer(remote, tmp_path).commit, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(remote.log()[:2]) == ["name", "tag"]
    assert remote.show("app/stack.yaml") == STACK.replace("web:1.4.0", "web:1.4.1").replace("shop\n", "shop-eu\n", 1)
