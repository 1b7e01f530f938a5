"""The hostdir driver's options: parsing and validation, and which directories it may remove. No engine."""
from __future__ import annotations

import pytest

from reconciler.drivers import DriverContext
from reconciler.errors import PermanentError
from reconciler_docker.hostdir import (
    HostDirDriver,
    HostDirOptions,
    engine_options,
    option_problems,
    parse_mode,
    parse_options,
    parse_owner,
)


def test_defaults_leave_the_owner_alone_and_use_mode_0755():
    assert parse_options({"path": "/srv/app/data"}) == HostDirOptions("/srv/app/data", -1, -1, 0o755)


def test_options_arrive_as_pairs_like_the_spec_gives_them():
    parsed = parse_options((("mode", "0750"), ("owner", "1000:1001"), ("path", "/srv/data/")))
    assert parsed == HostDirOptions("/srv/data", 1000, 1001, 0o750)


@pytest.mark.parametrize("text, expected", [
    ("1000:1000", (1000, 1000)),
    ("1234", (1234, -1)),
    (":50", (-1, 50)),
    ("0:0", (0, 0)),
    ("root:root", (0, 0)),
    ("root", (0, -1)),
    ("root:7", (0, 7)),
])
def test_owner_takes_numbers_or_names(text, expected):
    assert parse_owner(text) == expected


@pytest.mark.parametrize("text, message", [
    ("", "must be USER[:GROUP]"),
    (":", "must be USER[:GROUP]"),
    ("no-such-user-rtest", "no user named 'no-such-user-rtest'"),
    ("0:no-such-group-rtest", "no group named 'no-such-group-rtest'"),
    ("4294967295:0", "out of range"),
])
def test_bad_owners_are_named(text, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_owner(text)


@pytest.mark.parametrize("text, expected", [("0750", 0o750), ("755", 0o755), ("2775", 0o2775), ("0000", 0)])
def test_mode_is_octal(text, expected):
    assert parse_mode(text) == expected


@pytest.mark.parametrize("text", ["", "75", "0o750", "0758", "rwxr-x---", "07500", " 750"])
def test_bad_modes_are_refused(text):
    with pytest.raises(ValueError, match="octal digits"):
        parse_mode(text)


@pytest.mark.parametrize("path, message", [
    ("", "'path' is required"),
    ("data", "must be absolute"),
    ("./data", "must be absolute"),
    ("/srv/../etc", "must not contain '..'"),
    ("/", "must not be '/'"),
    ("//", "must not be '/'"),
])
def test_path_must_be_absolute_and_safe_to_remove(path, message):
    options = {"path": path} if path else {}
    with pytest.raises(PermanentError, match=message):
        parse_options(options)


def test_every_problem_is_reported_at_once():
    problems = option_problems({"path": "rel", "owner": "no-such-user-rtest", "mode": "999", "size": "1g"})
    assert len(problems) == 4
    assert problems[0] == "unknown option 'size' (hostdir takes path, owner, mode)"
    with pytest.raises(PermanentError, match=r"^hostdir options: unknown option 'size'.*must be absolute"):
        parse_options({"path": "rel", "size": "1g"})
    assert option_problems({"path": "/srv/ok", "owner": "0", "mode": "0700"}) == []


def test_the_engine_volume_binds_the_path():
    assert engine_options("/srv/app/data") == {"type": "none", "o": "bind", "device": "/srv/app/data"}


def _volume(driver: str = "hostdir", stack: str = "s", **options: str) -> dict:
    return {
        "Name": "s_data",
        "Labels": {"io.reconciler.driver": driver, "io.reconciler.stack": stack},
        "Options": {"type": "none", "o": "bind", "device": "/srv/data", **options},
    }


def test_delete_removes_only_directories_it_made_for_this_stack():
    driver = HostDirDriver(DriverContext(stack="s"))
    assert driver._directory(_volume()) == "/srv/data"
    assert driver._directory(_volume(driver="local")) is None  # a local volume replaced by a hostdir one
    assert driver._directory(_volume(stack="other")) is None
    assert driver._directory(_volume(o="size=64m", type="tmpfs")) is None
    assert driver._directory({"Name": "x"}) is None
