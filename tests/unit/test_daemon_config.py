"""daemon.yaml: read safely, every mistake located at its file:line, defaults filled."""
from __future__ import annotations

import pytest

from reconciler.daemon.config import load_config
from reconciler.errors import SpecError


def test_a_valid_config_gets_its_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("RECONCILER_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "token").write_text("t0k3n\n")
    path = tmp_path / "daemon.yaml"
    path.write_text("sources:\n  - name: shop\n    git: {url: 'https://git.example.invalid/shop.git',"
                    " token_file: token}\n  - name: local\n    dir: ./stacks\n    paths: [a, b]\n")
    config = load_config(path)
    shop, local = config.sources
    assert config.state_dir == str(tmp_path / "state") and config.resync == 60 and config.log_format == "text"
    assert shop.git.ref == "main" and shop.git.interval == 60 and shop.git.token_file == str(tmp_path / "token")
    assert shop.paths == (".",) and not shop.allow_empty
    assert local.dir == str(tmp_path / "stacks") and local.paths == ("a", "b")


def test_every_mistake_is_named_at_its_line(tmp_path):
    path = tmp_path / "daemon.yaml"
    path.write_text("sources:\n  - name: shop\n    git: {url: 'ftp://x', reff: main}\n"
                    "  - name: shop\n    dir: ./x\n  - name: neither\nresync: -1\n")
    with pytest.raises(SpecError) as caught:
        load_config(path)
    text = str(caught.value)
    assert f"{path}:3:" in text and "sources[0].git.url" in text
    assert "reff" in text
    assert f"{path}:4:" in text and "source 'shop' is defined twice" in text
    assert "sources[2]" in text
    assert f"{path}:7:" in text and "resync" in text


def test_a_missing_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="cannot read the daemon configuration"):
        load_config(tmp_path / "nope.yaml")


def test_an_exported_tree_never_leaves_the_checkout(tmp_path):
    import tarfile

    from reconciler.daemon.sources import _check_member
    from reconciler.errors import SourceError

    def member(name, kind=tarfile.REGTYPE, link=""):
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, link
        return info

    root = tmp_path.resolve()
    _check_member(member("stacks/a/stack.yaml"), root)
    _check_member(member("stacks/a/link", tarfile.SYMTYPE, "../b/stack.yaml"), root)
    for bad in (member("../escape"), member("/etc/passwd"), member("x", tarfile.SYMTYPE, "/etc/shadow"),
                member("a/x", tarfile.SYMTYPE, "../../.."), member("dev", tarfile.CHRTYPE)):
        with pytest.raises(SourceError):
            _check_member(bad, root)


def test_the_engine_may_be_the_managers_of_one_swarm(tmp_path):
    path = tmp_path / "daemon.yaml"
    path.write_text("sources:\n  - name: local\n    dir: ./stacks\n"
                    "engine: [tcp://10.0.0.1:2375, 'ssh://admin@m2']\n")
    assert load_config(path).engine == "tcp://10.0.0.1:2375,ssh://admin@m2"
    path.write_text("sources:\n  - name: local\n    dir: ./stacks\nengine: [tcp://10.0.0.1:2375, 7]\n")
    with pytest.raises(SpecError) as caught:
        load_config(path)
    assert f"{path}:4:" in str(caught.value) and "engine" in str(caught.value)


def test_targets_name_the_fleet_every_stack_without_its_own_runs_on(tmp_path):
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    path = tmp_path / "daemon.yaml"
    path.write_text("sources:\n  - name: local\n    dir: ./stacks\n"
                    "targets:\n  east: {engine: 'tcp://10.0.0.1:2376', labels: {zone: a},"
                    " tls: {ca: ca.pem, cert: cert.pem, key: key.pem}}\n"
                    "  west: {engine: 'ssh://admin@west'}\n")
    east, west = load_config(path).targets
    assert (east.name, east.engine, dict(east.labels)) == ("east", "tcp://10.0.0.1:2376", {"zone": "a"})
    assert east.tls.ca == str(tmp_path / "ca.pem") and west.tls is None and west.engine == "ssh://admin@west"


def test_targets_exclude_engine_and_want_their_certificates(tmp_path):
    path = tmp_path / "daemon.yaml"
    path.write_text("sources:\n  - name: local\n    dir: ./stacks\nengine: unix:///var/run/docker.sock\n"
                    "targets:\n  east: {engine: 'ssh://admin@east', tls: {ca: ca.pem, cert: c.pem, key: k.pem}}\n")
    with pytest.raises(SpecError) as caught:
        load_config(path)
    text = str(caught.value)
    assert f"{path}:4:" in text and "either engine: " in text
    assert f"{path}:6:" in text and "for tcp:// engines only" in text
    assert f"no such file: {tmp_path / 'ca.pem'}" in text


def test_a_refused_url_is_shown_without_its_credentials(tmp_path):
    path = tmp_path / "daemon.yaml"
    path.write_text("sources:\n  - name: shop\n    git: {url: 'http://x-access-token:tok-123456@git.example/s.git'}\n")
    with pytest.raises(SpecError) as caught:
        load_config(path)
    assert "sources[0].git.url" in str(caught.value) and "'http://git.example/s.git'" in str(caught.value)
    assert "tok-123456" not in str(caught.value)


def test_a_source_may_take_running_compose_projects_over(tmp_path):
    from reconciler.daemon.runner import Daemon
    from reconciler.reconcile import Reconciler

    path = tmp_path / "daemon.yaml"
    path.write_text(f"state_dir: {tmp_path / 'state'}\nsources:\n  - name: shop\n    dir: ./stacks\n"
                    "    adopt_compose: true\n  - name: plain\n    dir: ./other\n")
    config = load_config(path)
    assert [s.adopt_compose for s in config.sources] == [True, False]
    runner = Daemon(config, reconciler=Reconciler(plugin_modules=()))
    assert [w.loop.request.adopt_compose for w in runner.workers] == [True, False]
    path.write_text("sources:\n  - name: shop\n    dir: ./stacks\n    adopt_compose: yes please\n")
    with pytest.raises(SpecError) as caught:
        load_config(path)
    assert f"{path}:4:" in str(caught.value) and "adopt_compose" in str(caught.value)


def test_a_git_source_says_how_image_updates_are_committed(tmp_path):
    from reconciler.daemon.config import GitWrite

    path = tmp_path / "daemon.yaml"
    path.write_text("sources:\n  - name: app\n    git: {url: 'file:///srv/app.git'}\n    write:\n"
                    "      author: 'Bot <bot@example.com>'\n      signing_key: keys/signing\n"
                    "      branch: 'image-updates/{stack}-{image}-{version}'\n"
                    "  - name: plain\n    git: {url: 'file:///srv/plain.git'}\n    write: {}\n"
                    "  - name: none\n    git: {url: 'file:///srv/none.git'}\n")
    app, plain, none = load_config(path).sources
    assert app.write == GitWrite(author="Bot <bot@example.com>", signing_key=str(tmp_path / "keys" / "signing"),
                                 branch="image-updates/{stack}-{image}-{version}")
    assert plain.write == GitWrite() and plain.write.author == "reconciler <reconciler@localhost>"
    assert none.write is None


def test_write_on_a_directory_and_a_bad_branch_or_author_are_named_at_their_line(tmp_path):
    path = tmp_path / "daemon.yaml"
    path.write_text("sources:\n  - name: local\n    dir: ./stacks\n    write: {author: 'a <a@b>'}\n"
                    "  - name: app\n    git: {url: 'file:///srv/app.git'}\n    write:\n      branch: 'up/{tag}'\n")
    with pytest.raises(SpecError) as caught:
        load_config(path)
    text = str(caught.value)
    assert f"{path}:4:" in text and "sources[0].write" in text and "write: is for git sources only" in text
    assert f"{path}:8:" in text and "sources[1].write.branch" in text and "unknown placeholder {tag}" in text
    path.write_text("sources:\n  - name: other\n    git: {url: 'file:///srv/o.git'}\n    write: {author: nobody}\n")
    with pytest.raises(SpecError) as caught:
        load_config(path)
    assert f"{path}:4:" in str(caught.value) and "sources[0].write.author" in str(caught.value)
