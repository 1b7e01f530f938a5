"""The private-file rules every store shares: folders 0700 and ours, files made whole, reads trusted."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from reconciler.private import NotPrivate, create_private, private_dir, read_trusted, write_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_private_folder_is_made_0700_and_an_open_one_tightened(tmp_path: Path) -> None:
    made = tmp_path / "a" / "b"
    private_dir(made)
    assert _mode(made) == 0o700
    made.chmod(0o755)
    private_dir(made)
    assert _mode(made) == 0o700


def test_a_shared_folder_may_be_writable_by_others_with_the_sticky_bit_and_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "locks"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(NotPrivate, match=r"writable by others without the sticky bit \(mode 777\)"):
        private_dir(shared, shared=True)
    shared.chmod(0o1777)
    private_dir(shared, shared=True)
    assert _mode(shared) == 0o1777


def test_a_symlinked_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    for shared in (False, True):
        with pytest.raises(NotPrivate, match="is a symbolic link"):
            private_dir(tmp_path / "link", shared=shared)


def test_create_private_makes_a_0600_file_once_and_refuses_a_link(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    assert create_private(path) and _mode(path) == 0o600
    path.write_bytes(b"kept")
    assert not create_private(path) and path.read_bytes() == b"kept"
    (tmp_path / "link.db").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(NotPrivate):
        create_private(tmp_path / "link.db")
    assert not (tmp_path / "elsewhere").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.db", "state.db"]  # no temporary file left


def test_write_private_replaces_a_planted_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.write_bytes(b"keep me")
    (tmp_path / "marker").symlink_to(precious)
    write_private(tmp_path / "marker", b"ours")
    assert precious.read_bytes() == b"keep me"
    assert not (tmp_path / "marker").is_symlink() and (tmp_path / "marker").read_bytes() == b"ours"
    assert _mode(tmp_path / "marker") == 0o600
    write_private(tmp_path / "config", b"x", mode=0o444)
    assert _mode(tmp_path / "config") == 0o444
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config", "marker", "precious"]


def test_a_file_others_may_write_is_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "entry"
    write_private(path, b"data")
    assert read_trusted(path) == b"data"
    path.chmod(0o620)
    assert read_trusted(path) is None
    assert read_trusted(tmp_path / "missing") is None
