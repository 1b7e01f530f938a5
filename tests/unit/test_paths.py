"""``inside`` and ``repo_root``: the containment rule every path check shares."""
from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.paths import inside, repo_root


@pytest.mark.parametrize(("path", "root", "expected"), [
    ("/srv/data", "/srv", True),
    ("/srv", "/srv", True),
    ("/srv/data/", "/srv/", True),
    ("/srvx", "/srv", False),  # a prefix of the name is not a parent
    ("/sr", "/srv", False),
    ("/anything", "/", True),
    ("srv/data", "/srv", False),  # relative and absolute never meet
    ("/srv/data", "srv", False),
    (Path("/srv/a/b"), Path("/srv/a"), True),
])
def test_inside_compares_whole_components(path, root, expected) -> None:
    assert inside(path, root) is expected


def test_the_repository_is_the_nearest_work_tree_else_the_files_folder(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "deploy" / "web").mkdir(parents=True)
    (tmp_path / "loose").mkdir()
    assert repo_root(tmp_path / "repo" / "deploy" / "web" / "stack.yaml") == tmp_path / "repo"
    assert repo_root(tmp_path / "repo" / "stack.yaml") == tmp_path / "repo"
    (tmp_path / "worktree").mkdir()
    (tmp_path / "worktree" / ".git").write_text("gitdir: ../repo/.git/worktrees/x\n")  # a linked work tree
    assert repo_root(tmp_path / "worktree" / "stack.yaml") == tmp_path / "worktree"
    if not any((d / ".git").exists() for d in tmp_path.parents):
        assert repo_root(tmp_path / "loose" / "stack.yaml") == tmp_path / "loose"
