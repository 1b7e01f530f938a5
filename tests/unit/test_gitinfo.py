"""The spec's git revision, read without running git."""
from __future__ import annotations

import subprocess

from reconciler.spec.gitinfo import spec_revision


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_revision_of_a_spec_in_a_repository(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "deploy").mkdir()
    spec = tmp_path / "deploy" / "stack.yaml"
    spec.write_text("name: x\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "one")
    assert spec_revision(spec) == git(tmp_path, "rev-parse", "HEAD")
    git(tmp_path, "pack-refs", "--all")
    assert spec_revision(spec) == git(tmp_path, "rev-parse", "HEAD")
    git(tmp_path, "checkout", "-q", "--detach")
    assert spec_revision(spec) == git(tmp_path, "rev-parse", "HEAD")


def test_no_revision_outside_git(tmp_path):
    spec = tmp_path / "stack.yaml"
    spec.write_text("name: x\n")
    assert spec_revision(spec) == ""
