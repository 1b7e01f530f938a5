"""One daemon per state directory: the lock file is ours, never followed through a link, and names its holder."""
from __future__ import annotations

import os

import pytest

from reconciler.daemon.statelock import LOCK_NAME, hold_state_dir
from reconciler.errors import LockError


def test_the_holder_writes_its_pid_and_a_second_holder_is_refused_naming_it(tmp_path):
    with hold_state_dir(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"
        assert (tmp_path / LOCK_NAME).stat().st_mode & 0o777 == 0o600
        with pytest.raises(LockError, match=f"another reconcile daemon \\(pid {os.getpid()}\\) uses state "
                                            f"directory {tmp_path}"):
            with hold_state_dir(tmp_path):
                pass
    assert (tmp_path / LOCK_NAME).read_text() == ""
    with hold_state_dir(tmp_path):  # released: the next daemon starts
        pass


def test_a_planted_link_is_never_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / LOCK_NAME).symlink_to(victim)
    with pytest.raises(LockError, match="is a symbolic link"):
        with hold_state_dir(tmp_path / "state"):
            pass
    assert victim.read_text() == "keep me"
