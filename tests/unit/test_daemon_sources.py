"""A git source's export (issue 21, §4): links inside the checkout stay links; a link out of it invalidates that
revision only, named at its path in the repository, and the checkout keeps its last good revision."""
from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from reconciler.daemon import Daemon, load_config
from reconciler.daemon.config import GitSource, Source
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.sources import InvalidRevision, _extract, checkout_for
from reconciler.testing import make_reconciler

from ..waiting import wait_until

SPEC = "name: {name}\ncontainers:\n  web: {{image: 'busybox:1', env: {{V: '{version}'}}}}\n"


class Repo:
    """A bare repository and a clone to commit files and links from."""

    def __init__(self, root: Path) -> None:
        self.remote, self.work = root / "origin.git", root / "work"
        root.mkdir(parents=True)
        _git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(self.remote))
        _git(root, "clone", "--quiet", str(self.remote), str(self.work))
        _git(self.work, "checkout", "--quiet", "-B", "main")

    def commit(self, files: dict[str, str] = {}, links: dict[str, str] = {}) -> str:
        for name, text in files.items():
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            (self.work / name).write_text(text)
        for name, target in links.items():
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, self.work / name)
        _git(self.work, "add", "-A")
        _git(self.work, "-c", "user.email=t@e.invalid", "-c", "user.name=t", "commit", "--quiet", "-m", "c")
        _git(self.work, "push", "--quiet", "--force", "origin", "main")
        return _git(self.work, "rev-parse", "HEAD").strip()


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path) -> Repo:
    return Repo(tmp_path / "git")


@pytest.fixture
def checkout(repo, tmp_path):
    return checkout_for(Source("repo", git=GitSource(url=f"file://{repo.remote}"), paths=("app",)),
                        tmp_path / "state")


def test_links_inside_the_checkout_are_exported_as_links_that_stay_inside(repo, checkout):
    revision = repo.commit({"shared/app.env": "A=1\n", "app/stack.yaml": "name: x\n"},
                           links={"app/app.env": "../shared/app.env", "app/here": "."})
    assert checkout.refresh() and checkout.revision == revision
    link = checkout.tree / "app" / "app.env"
    assert link.is_symlink() and os.readlink(link) == "../shared/app.env"
    assert link.read_text() == "A=1\n"
    assert os.readlink(checkout.tree / "app" / "here") == "."


@pytest.mark.parametrize("target, reason", [
    ("/etc/shadow", "is a link to the absolute path '/etc/shadow'"),
    ("../../../etc/shadow", "is a link to '../../../etc/shadow', which leads out of the repository"),
])
def test_a_link_out_of_the_checkout_invalidates_that_revision_only(repo, checkout, target, reason):
    good = repo.commit({"app/stack.yaml": "name: x\n"})
    assert checkout.refresh()
    tree = checkout.tree
    bad = repo.commit(links={"app/app.env": target})
    with pytest.raises(InvalidRevision) as caught:
        checkout.refresh()
    assert str(caught.value).startswith(f"repo@{bad[:12]}:app/app.env: {reason}")
    assert f"revision {bad[:12]} is not applied" in str(caught.value)
    assert (checkout.revision, checkout.tree) == (good, tree)  # the last good revision stays
    assert not checkout.refresh()  # reported once: fetching it again changes nothing and says nothing
    assert sorted(p.name for p in (checkout.root / "trees").iterdir()) == [good]  # no half-exported tree left
    (repo.work / "app" / "app.env").unlink()
    fixed = repo.commit({"app/app.env": "A=2\n"})  # the next commit that exports moves the checkout on
    assert checkout.refresh() and checkout.revision == fixed and checkout.rejected is None


def test_a_first_revision_that_does_not_export_is_named_for_every_path(repo, checkout):
    bad = repo.commit({"app/stack.yaml": "name: x\n"}, links={"app/app.env": "/etc/shadow"})
    with pytest.raises(InvalidRevision):
        checkout.refresh()
    assert checkout.tree is None and not checkout.refresh()
    with pytest.raises(InvalidRevision, match=f"repo@{bad[:12]}:app/app.env"):
        checkout.path("app")  # not "app is not in the source"


def _tar(*members: tuple[str, str]) -> tarfile.TarFile:
    """An archive of (name, link target) symlinks, in that order, as ``git archive`` would write them."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, target in members:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    data.seek(0)
    return tarfile.open(fileobj=data)


def test_a_chain_of_links_each_harmless_alone_is_followed_on_disk(tmp_path):
    # a -> b/.. looks like the checkout itself while b is not there yet; with b -> . it is the checkout's parent
    with pytest.raises(InvalidRevision, match="^a: is a link to 'b/..', which leads out of the repository"):
        _extract(_tar(("a", "b/.."), ("b", ".")), tmp_path)
    inside = tmp_path / "inside"
    inside.mkdir()
    _extract(_tar(("a", "b/c"), ("b", ".")), inside)
    assert os.readlink(inside / "a") == "b/c"


@pytest.mark.parametrize("target", ["/etc/shadow", "../../etc/shadow"])
def test_a_daemon_keeps_both_stacks_at_their_last_good_revision_and_goes_on(repo, tmp_path, memory_engine, target):
    good = repo.commit({"a/stack.yaml": SPEC.format(name="sa", version=1),
                        "b/stack.yaml": SPEC.format(name="sb", version=1)})
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "resync": 300, "sources": [
        {"name": "repo", "git": {"url": f"file://{repo.remote}", "interval": 0.05}, "paths": ["a", "b"]}]}))
    metrics = Metrics()
    daemon = Daemon(load_config(str(config)), reconciler=make_reconciler(memory_engine), metrics=metrics)
    a, b = daemon.workers
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    runner.start()
    try:
        wait_until(lambda: all(w.last_revision == good and w.last.ok for w in (a, b)), 10, "the first commit")
        wait_until(lambda: memory_engine.followers == 1 and len(daemon._following) == 2, 10,
                   "both stacks following the engine, on its one stream")
        bad = repo.commit(links={"a/app.env": target})
        wait_until(lambda: all(w.last.invalid for w in (a, b)), 10, lambda: f"an invalid pass: {a.last}, {b.last}")
        assert all(w.last.error.startswith(f"repo@{bad[:12]}:a/app.env: is a link to") for w in (a, b))
        assert (a.last_revision, b.last_revision, daemon.checkouts["repo"].revision) == (good, good, good)
        assert metrics.registry.get_sample_value("reconciler_syncs_total", {"stack": "sa", "result": "invalid"}) == 1
        memory_engine.remove("sa-web-1")  # drift is still repaired, at the last good revision
        wait_until(lambda: "sa-web-1" in memory_engine.containers and a.last.ok, 10, "the repair")
        assert a.last_revision == good
        (repo.work / "a" / "app.env").unlink()
        fixed = repo.commit({"a/stack.yaml": SPEC.format(name="sa", version=2)})
        wait_until(lambda: all(w.last_revision == fixed and w.last.ok for w in (a, b)), 10, "the next good commit")
        names = [t.name for t in threading.enumerate()]  # the poller and every worker of the pool went on
        assert "poll" in names
        assert sum(n.startswith(("pass-", "stack-")) for n in names) == daemon.scheduler.workers
    finally:
        stop.set()
        runner.join(timeout=10)


SHARED_SPEC = ("name: {name}\ncontainers:\n  web: {{image: 'busybox:1', env_file: [../common.env], "
               "env: {{V: '{version}'}}}}\n")


def test_a_commit_passes_only_the_stacks_whose_files_it_changed(repo, tmp_path, memory_engine):
    first = repo.commit({"a/stack.yaml": SPEC.format(name="sa", version=1),
                         "b/stack.yaml": SPEC.format(name="sb", version=1),
                         "c/stack.yaml": SHARED_SPEC.format(name="sc", version=1), "common.env": "X=1\n"})
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "resync": 300, "sources": [
        {"name": "repo", "git": {"url": f"file://{repo.remote}", "interval": 0.05}, "paths": ["a", "b", "c"],
        "allow_outside_paths": True}]}))
    daemon = Daemon(load_config(str(config)), reconciler=make_reconciler(memory_engine))
    a, b, c = daemon.workers
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    runner.start()
    try:
        wait_until(lambda: all(w.last is not None and w.last.ok and w.last_revision == first for w in (a, b, c)), 10,
                   lambda: f"the first commit: {[(w.last_revision, w.last) for w in (a, b, c)]}")
        # The in-memory engine reports its images' events too, and the three stacks pull one image: a stack may
        # pass once more for another's pull. Only what the commits below start is asked about here.
        wait_until(lambda: time.time() - max(w.last_at for w in (a, b, c)) > 0.5, 10, "the first commit's passes over")
        passed = {w.id: w.last_at for w in (a, b, c)}
        ids = {name: c.id for name, c in memory_engine.containers.items()}
        second = repo.commit({"b/stack.yaml": SPEC.format(name="sb", version=2), "README.md": "docs\n"})
        wait_until(lambda: b.last_revision == second and b.last.ok, 10, "b at the second commit")
        assert memory_engine.containers["sb-web-1"].id != ids["sb-web-1"]  # replaced with V=2
        assert (a.last_at, c.last_at) == (passed[a.id], passed[c.id])  # untouched: no pass
        assert daemon.checkouts["repo"].revision == second
        third = repo.commit({"common.env": "X=2\n"})  # c reads it: c passes, a does not
        wait_until(lambda: c.last_revision == third and c.last.ok, 10, "c at the third commit")
        assert memory_engine.containers["sc-web-1"].id != ids["sc-web-1"]
        assert a.last_at == passed[a.id], a.last
        assert memory_engine.containers["sa-web-1"].id == ids["sa-web-1"]
    finally:
        stop.set()
        runner.join(timeout=10)


def test_untouched_counts_anything_it_cannot_tell_as_a_change(tmp_path):
    from reconciler.daemon.sources import untouched
    from reconciler.model import DesiredState

    tree = tmp_path / "trees" / "r1"
    (tree / "a").mkdir(parents=True)
    (tree / "a" / "stack.yaml").write_text("")
    spec = ((str(tree / "a"), "r1"), DesiredState(stack="sa", sources=(str(tree / "a" / "stack.yaml"),)))
    assert untouched(spec, "a", tree, {"b/stack.yaml", "README.md"})
    assert not untouched(spec, "a", tree, {"a/new.yaml"})  # a new file in its directory
    assert not untouched(spec, "a", tree, {"a/.env"})
    assert not untouched(spec, "a", tree, None)  # git could not say
    assert not untouched(None, "a", tree, {"b/x"})
    assert not untouched(spec, ".", tree, {"b/x"})  # the whole repository is the stack
    outside = ((str(tree / "a"), "r1"), DesiredState(stack="sa", sources=(str(tmp_path / "elsewhere.yaml"),)))
    assert not untouched(outside, "a", tree, {"b/x"})


def test_sources_on_one_repository_share_one_checkout_and_one_fetch_a_round(repo, tmp_path, memory_engine,
                                                                            monkeypatch):
    from reconciler.daemon.sources import GitCheckout

    first = repo.commit({"a/stack.yaml": SPEC.format(name="sa", version=1),
                         "b/stack.yaml": SPEC.format(name="sb", version=1)})
    fetches = []
    refresh = GitCheckout.refresh
    monkeypatch.setattr(GitCheckout, "refresh", lambda self: (fetches.append(self), refresh(self))[1])
    config = tmp_path / "daemon.yaml"
    git = {"url": f"file://{repo.remote}", "interval": 0.2}
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "resync": 300, "sources": [
        {"name": "one", "git": git, "paths": ["a"]}, {"name": "two", "git": git, "paths": ["b"]}]}))
    daemon = Daemon(load_config(str(config)), reconciler=make_reconciler(memory_engine))
    a, b = daemon.workers
    assert daemon.checkouts["one"] is daemon.checkouts["two"]
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    runner.start()
    try:
        wait_until(lambda: all(w.last is not None and w.last.ok and w.last_revision == first for w in (a, b)), 10,
                   "the first commit")
        time.sleep(1.1)  # about five rounds
        assert 3 <= len(fetches) <= 8, len(fetches)  # one fetch a round for both sources, not two
        bad = repo.commit(links={"b/app.env": "/etc/shadow"})
        wait_until(lambda: all(w.last.invalid for w in (a, b)), 10, lambda: f"both told: {a.last}, {b.last}")
        assert a.last.error.startswith(f"one@{bad[:12]}:b/app.env: is a link to"), a.last
        assert b.last.error.startswith(f"two@{bad[:12]}:b/app.env: is a link to"), b.last  # each names its own
        (repo.work / "b" / "app.env").unlink()
        fixed = repo.commit({"b/stack.yaml": SPEC.format(name="sb", version=2)})
        wait_until(lambda: b.last_revision == fixed and b.last.ok, 10, "b at the fix")
    finally:
        stop.set()
        runner.join(timeout=10)


def test_sources_on_one_repository_share_a_rounds_holds_and_diffs(repo, tmp_path, memory_engine, monkeypatch):
    from reconciler.daemon.sources import GitCheckout

    paths = ["a", "b", "c"]
    first = repo.commit({f"{p}/stack.yaml": SPEC.format(name=f"s{p}", version=1) for p in paths})
    diffs, holds = [], []
    changed_since = GitCheckout.changed_since
    monkeypatch.setattr(GitCheckout, "changed_since", lambda self, at: (diffs.append(at), changed_since(self, at))[1])
    config = tmp_path / "daemon.yaml"
    git = {"url": f"file://{repo.remote}", "interval": 0.2}
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "resync": 300, "sources": [
        {"name": f"src-{p}", "git": git, "paths": [p]} for p in paths]}))
    daemon = Daemon(load_config(str(config)), reconciler=make_reconciler(memory_engine))
    real_holds = daemon.reconciler.state.holds
    monkeypatch.setattr(daemon.reconciler.state, "holds", lambda: (holds.append(1), real_holds())[1])
    workers = daemon.workers
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    runner.start()
    try:
        wait_until(lambda: all(w.last is not None and w.last.ok and w.last_revision == first for w in workers), 10,
                   "the first commit")
        holds.clear()
        time.sleep(1.1)  # about five rounds of three sources
        assert 3 <= len(holds) <= 8, len(holds)  # read once a round, not once a source (nor twice)
        ids = {w.path: w.last.report for w in workers}
        second = repo.commit({"a/stack.yaml": SPEC.format(name="sa", version=2)})
        wait_until(lambda: workers[0].last_revision == second and workers[0].last.ok, 10, "a at the second commit")
        assert diffs == [first]  # one git diff for the three sources, all at the same revision
        assert all(w.last.report is ids[w.path] for w in workers[1:])  # b and c: no pass
    finally:
        stop.set()
        runner.join(timeout=10)


def test_an_unchanged_branch_costs_one_git_process_a_poll_and_an_annotated_tag_is_peeled(repo, tmp_path, monkeypatch):
    from reconciler.daemon import sources

    first = repo.commit({"app/stack.yaml": SPEC.format(name="a", version=1)})
    calls = []
    real = sources.run_git
    monkeypatch.setattr(sources, "run_git", lambda args, env: calls.append(args[2]) or real(args, env))
    branch = checkout_for(Source("b", git=GitSource(url=f"file://{repo.remote}"), paths=("app",)), tmp_path / "b")
    assert branch.refresh() and branch.revision == first
    calls.clear()
    assert not branch.refresh()
    assert calls == ["fetch"]  # FETCH_HEAD names the commit: no rev-parse
    second = repo.commit({"app/stack.yaml": SPEC.format(name="a", version=2)})
    assert branch.refresh() and branch.revision == second

    _git(repo.work, "tag", "-a", "v1", "-m", "release")
    _git(repo.work, "push", "--quiet", "origin", "v1")
    tag = checkout_for(Source("t", git=GitSource(url=f"file://{repo.remote}", ref="v1"), paths=("app",)), tmp_path / "t")
    assert tag.refresh() and tag.revision == second  # the commit, not the tag object
    assert not tag.refresh()
