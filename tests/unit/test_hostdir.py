"""The hostdir driver's options: parsing and validation, and which directories it may remove. No engine."""
from __future__ import annotations

import pytest

from reconciler.drivers import DriverContext
from reconciler.errors import PermanentError
from reconciler.labels import DRIVER, STACK
from reconciler_docker.hostdir import (
    HostDirDriver,
    HostDirOptions,
    engine_options,
    option_problems,
    parse_mode,
    parse_options,
    parse_owner,
    prepare_directory,
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
        "Labels": {DRIVER: driver, STACK: stack},
        "Options": {"type": "none", "o": "bind", "device": "/srv/data", **options},
    }


def test_delete_removes_only_directories_it_made_for_this_stack():
    driver = HostDirDriver(DriverContext(stack="s"))
    assert driver._directory(_volume()) == "/srv/data"
    assert driver._directory(_volume(driver="local")) is None  # a local volume replaced by a hostdir one
    assert driver._directory(_volume(stack="other")) is None
    assert driver._directory(_volume(o="size=64m", type="tmpfs")) is None
    assert driver._directory({"Name": "x"}) is None


# -- what a hostdir may remove (issue 8) ---------------------------------------------------------


@pytest.mark.parametrize("path", ["/etc", "/usr", "/var", "/boot", "/home", "/srv", "/tmp", "/root", "/opt",
                                  "/usr/lib", "/var/lib", "/var/log", "/etc/ssh", "/etc/anything", "/home/alice",
                                  "/boot/grub", "/dev/shm", "/proc/1", "/sys/fs/cgroup/x", "/var/lib/docker",
                                  "/usr/local/", "//etc/"])
def test_system_paths_are_refused(path):
    problems = option_problems({"path": path})
    assert problems and all("system" in p or "inside" in p for p in problems), problems


@pytest.mark.parametrize("path", ["/srv/app/data", "/var/lib/app", "/home/alice/data", "/opt/app", "/tmp/x",
                                  "/var/www/app", "/data"])
def test_ordinary_paths_are_allowed(path):
    assert option_problems({"path": path}) == []


def test_a_symlink_into_a_system_path_is_refused_by_where_it_leads(tmp_path):
    (tmp_path / "sneaky").symlink_to("/etc")
    [problem] = option_problems({"path": str(tmp_path / "sneaky")})
    assert "resolves to /etc, which is a system directory" in problem


def test_an_allow_list_of_roots_refuses_everything_outside(monkeypatch):
    monkeypatch.setenv("RECONCILER_HOSTDIR_ROOTS", "/srv:/data/")
    assert option_problems({"path": "/srv/app"}) == [] and option_problems({"path": "/data"}) == []
    [problem] = option_problems({"path": "/opt/app"})
    assert "outside the hostdir roots this host allows (RECONCILER_HOSTDIR_ROOTS=/srv:/data)" in problem
    assert option_problems({"path": "/srvx/app"}), "a prefix is not a root"


def test_adopt_is_true_or_false():
    assert parse_options({"path": "/srv/x", "adopt": "true"}).adopt
    assert not parse_options({"path": "/srv/x"}).adopt
    assert option_problems({"path": "/srv/x", "adopt": "yes"}) == ["adopt 'yes' must be true or false"]


def test_a_directory_it_made_is_marked_and_removed_only_for_that_volume(tmp_path):
    from reconciler_docker.hostpaths import MARKER, check_directory, read_marker, remove_directory

    options = parse_options({"path": str(tmp_path / "app" / "data")})
    check_directory(options, stack="s", volume="s_data")
    prepare_directory(options, stack="s", volume="s_data", uid="u1")
    (tmp_path / "app" / "data" / "f").write_text("data")
    assert read_marker(options.path) == {"stack": "s", "volume": "s_data", "uid": "u1"}
    assert (tmp_path / "app" / "data" / MARKER).stat().st_mode & 0o077 == 0
    for other in ({"stack": "t"}, {"volume": "s_other"}, {"uid": "u2"}, {"uid": ""}):
        who = {"stack": "s", "volume": "s_data", "uid": "u1", **other}
        assert not remove_directory(options.path, **who) and (tmp_path / "app" / "data" / "f").exists()
    assert remove_directory(options.path, stack="s", volume="s_data", uid="u1")
    assert not (tmp_path / "app" / "data").exists() and (tmp_path / "app").exists()
    assert remove_directory(options.path, stack="s", volume="s_data", uid="u1"), "gone is fine"


def test_an_existing_directory_is_refused_unless_adopted_and_an_adopted_one_is_never_removed(tmp_path):
    from reconciler_docker.hostpaths import MARKER, check_directory, remove_directory

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "precious").write_text("keep me")
    options = parse_options({"path": str(existing)})
    with pytest.raises(PermanentError, match=r"already exists and was not made for volume s_data.*adopt"):
        check_directory(options, stack="s", volume="s_data")
    adopted = parse_options({"path": str(existing), "adopt": "true"})
    check_directory(adopted, stack="s", volume="s_data")
    prepare_directory(adopted, stack="s", volume="s_data", uid="u1")
    assert not (existing / MARKER).exists()
    assert not remove_directory(str(existing), stack="s", volume="s_data", uid="u1")
    assert (existing / "precious").read_text() == "keep me"


def test_its_own_directory_is_used_again_and_its_marker_follows_a_new_volume(tmp_path):
    from reconciler_docker.hostpaths import check_directory, read_marker

    options = parse_options({"path": str(tmp_path / "data")})
    prepare_directory(options, stack="s", volume="s_data", uid="u1")
    check_directory(options, stack="s", volume="s_data")  # the engine volume was removed by hand: fine
    prepare_directory(options, stack="s", volume="s_data", uid="u2")
    assert read_marker(options.path)["uid"] == "u2"
    with pytest.raises(PermanentError, match="not made for volume s_other"):
        check_directory(options, stack="s", volume="s_other")


def test_symlinks_are_never_followed(tmp_path):
    from reconciler_docker.hostpaths import MARKER, check_directory, read_marker, remove_directory

    target = tmp_path / "target"
    target.mkdir()
    (target / MARKER).write_text('{"stack": "s", "volume": "s_data", "uid": "u1"}')
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(PermanentError, match="symlink is refused"):
        check_directory(parse_options({"path": str(link)}), stack="s", volume="s_data")
    assert not remove_directory(str(link), stack="s", volume="s_data", uid="u1") and target.exists()
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / MARKER).symlink_to(target / MARKER)
    assert read_marker(str(plain)) is None


def test_system_paths_are_never_removed_even_with_a_marker():
    from reconciler_docker.hostpaths import remove_directory

    assert not remove_directory("/etc", stack="s", volume="v", uid="u")
    assert not remove_directory("/", stack="s", volume="v", uid="u")
