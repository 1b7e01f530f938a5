"""The Docker runtime driver's config and secret files on this host: layout, modes, owners, pruning, refusals."""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from reconciler.errors import PermanentError
from reconciler.model import FileContent, FileMount
from reconciler_docker.files import FILES_DIR_ENV, FileStore, files_root, is_local_engine, parse_file_name

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")


@pytest.fixture(autouse=True)
def _default_engine(monkeypatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)  # the layout names other engines' directories apart


def mount(kind: str = "secret", name: str = "db", data: bytes = b"s3cret", **kw) -> FileMount:
    return FileMount(kind=kind, name=name, target=f"/run/secrets/{name}", content_hash=hashlib.sha256(data).hexdigest(),
                     content=FileContent(data), **kw)


def mode_of(path: str | Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_file_is_written_with_its_mode_in_private_directories(tmp_path: Path) -> None:
    store = FileStore("demo", root=tmp_path / "files")
    path = store.write(mount(mode=0o440))
    assert Path(path).read_bytes() == b"s3cret"
    assert mode_of(path) == 0o440
    assert Path(path).parent == tmp_path / "files" / "demo" / "secrets"
    for directory in (tmp_path / "files", tmp_path / "files" / "demo", Path(path).parent):
        assert mode_of(directory) == 0o700
    assert parse_file_name(Path(path).name) == ("db", hashlib.sha256(b"s3cret").hexdigest()[:16])
    assert store.write(mount(mode=0o440)) == path  # the same content, owner and mode: the same file
    assert sorted(os.listdir(Path(path).parent)) == [Path(path).name]  # no temporary file left behind


@root_only
def test_owner_is_applied_and_defaults_to_root(tmp_path: Path) -> None:
    store = FileStore("demo", root=tmp_path)
    owned = os.stat(store.write(mount(uid=1000, gid=1001)))
    assert (owned.st_uid, owned.st_gid) == (1000, 1001)
    default = os.stat(store.write(mount(kind="config", name="app")))
    assert (default.st_uid, default.st_gid, stat.S_IMODE(default.st_mode)) == (0, 0, 0o444)


def test_distinct_owners_modes_and_contents_get_distinct_files(tmp_path: Path) -> None:
    store = FileStore("demo", root=tmp_path)
    paths = {store.write(mount()), store.write(mount(mode=0o440)), store.write(mount(data=b"other"))}
    assert len(paths) == 3


def test_prune_keeps_what_is_mounted_and_removes_the_rest_then_empty_directories(tmp_path: Path) -> None:
    store = FileStore("demo", root=tmp_path)
    kept = store.write(mount())
    gone = store.write(mount(data=b"rotated"))
    config = store.write(mount(kind="config", name="app"))
    assert sorted(store.prune({kept})) == sorted([gone, config])
    assert os.listdir(tmp_path / "demo") == ["secrets"]
    assert store.prune(set()) == [kept]
    assert not (tmp_path / "demo").exists()
    assert store.prune(set()) == []  # nothing there: nothing to do


def test_prune_unlinks_a_planted_symlink_without_following_it(tmp_path: Path) -> None:
    store = FileStore("demo", root=tmp_path / "files")
    Path(store.write(mount())).unlink()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    os.symlink(victim, tmp_path / "files" / "demo" / "secrets" / "planted")
    store.prune(set())
    assert victim.read_text() == "keep me"


def test_a_symlinked_or_foreign_directory_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "files").mkdir()
    os.symlink(elsewhere, tmp_path / "files" / "demo")
    with pytest.raises(PermanentError, match="not a directory the reconciler can use"):
        FileStore("demo", root=tmp_path / "files").write(mount())
    assert not list(elsewhere.iterdir())
    if os.geteuid() == 0:
        foreign = tmp_path / "foreign"
        foreign.mkdir()
        os.chown(foreign, 1234, 1234)
        with pytest.raises(PermanentError, match="belongs to uid 1234"):
            FileStore("demo", root=foreign).write(mount())


def test_a_stack_name_that_is_not_a_plain_name_is_refused(tmp_path: Path) -> None:
    for name in ("../etc", "a/b", "..", ""):
        with pytest.raises(PermanentError):
            FileStore(name, root=tmp_path)


def test_each_engine_on_this_host_has_a_directory_of_its_own(tmp_path: Path, monkeypatch) -> None:
    default = FileStore("demo", root=tmp_path).dir
    other = FileStore("demo", engine="unix:///run/other.sock", root=tmp_path).dir
    assert default == tmp_path / "demo"
    assert other != default and other.name.startswith("demo@")


def test_a_widened_directory_is_made_private_again(tmp_path: Path) -> None:
    store = FileStore("demo", root=tmp_path / "files")
    path = Path(store.write(mount()))
    os.chmod(path.parent, 0o755)
    store.write(mount())
    assert mode_of(path.parent) == 0o700


@pytest.mark.parametrize(("url", "local"), [
    ("unix:///var/run/docker.sock", True), ("unix:///run/other.sock", True), ("npipe:////./pipe/docker", True),
    ("tcp://10.0.0.5:2375", False), ("ssh://user@host", False), ("https://engine:2376", False),
])
def test_only_an_engine_on_this_host_can_mount_its_files(url: str, local: bool) -> None:
    assert is_local_engine(url) is local


def test_the_root_follows_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(FILES_DIR_ENV, str(tmp_path / "mine"))
    assert files_root() == tmp_path / "mine"


def test_a_remote_engine_is_refused_before_anything_is_written(tmp_path: Path, monkeypatch) -> None:
    from reconciler.drivers import DriverContext
    from reconciler.model import ContainerSpec
    from reconciler.testing.fakedocker import FakeDockerAPI
    from reconciler_docker.containers import DockerRuntimeDriver
    from reconciler.sdk.docker import use_client

    monkeypatch.setenv(FILES_DIR_ENV, str(tmp_path / "files"))
    context = DriverContext(stack="demo", engine_url="tcp://10.0.0.5:2375")
    api = FakeDockerAPI()
    use_client(context, api)
    driver = DockerRuntimeDriver(context)
    spec = ContainerSpec(key="web", name="demo-web-1", replica=1, image_key=None, image_ref="a:1", files=(mount(),))
    with pytest.raises(PermanentError, match="tcp://10.0.0.5:2375 is remote"):
        driver.create(spec, {})
    assert not (tmp_path / "files").exists()
    driver.prune_files("demo")  # nothing of a remote engine's is on this host: nothing to do, no call made
    assert api.calls == []
