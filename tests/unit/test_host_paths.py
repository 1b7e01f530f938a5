"""Host bind mounts as Compose means them (issue 22): allowed by default, narrowed by a daemon source or policy.

What the reconciler reads itself (env files, build contexts, config files) and
relative paths that climb out of the repository stay confined; an absolute or
``~`` bind source is the engine's business, as in Compose.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.daemon import Daemon, load_config
from reconciler.errors import SpecError
from reconciler.loop import Trigger
from reconciler.spec import load_desired
from reconciler.testing import make_reconciler
from reconciler_policy import check_policy


def repo(tmp_path: Path) -> Path:
    """A git work tree with a stack folder in it; the folder beside the work tree is outside."""
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "stack").mkdir()
    (tmp_path / "outside").mkdir()
    return tmp_path / "repo" / "stack"


def load(folder: Path, text: str, name: str = "stack.yaml", **kw):
    (folder / name).write_text(text)
    return load_desired([folder / name], environ={}, **kw)


def problems(folder: Path, text: str, name: str = "stack.yaml", **kw) -> dict[str, str]:
    with pytest.raises(SpecError) as caught:
        load(folder, text, name, **kw)
    return {p.path: f"{Path(p.file).name}:{p.line}: {p.message}" for p in caught.value.problems}


def binds(state) -> list[tuple[str, str, bool]]:
    return [(m.source, m.target, m.create_host_path) for spec in state.containers.values() for m in spec.mounts]


# --- the stack spec and Compose files -------------------------------------------------------

def test_absolute_and_home_bind_sources_need_no_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "data").mkdir(parents=True)
    stack = repo(tmp_path)
    state = load(stack, "name: demo\ncontainers:\n  web:\n    image: a:1\n    volumes:\n"
                        "      - /var/run/docker.sock:/var/run/docker.sock:ro\n"
                        f"      - {tmp_path / 'outside'}:/outside\n"
                        "      - ~/data:/data\n"
                        "      - {type: bind, source: ~/data, target: /long}\n")
    assert binds(state) == [(str(Path("/var/run/docker.sock").resolve()), "/var/run/docker.sock", True),
                            (str(tmp_path / "outside"), "/outside", True),
                            (str(tmp_path / "home" / "data"), "/data", True),  # ~ is $HOME, expanded at load
                            (str(tmp_path / "home" / "data"), "/long", False)]


def test_a_compose_file_mounts_host_paths_as_compose_does(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    stack = repo(tmp_path)
    state = load(stack, "services:\n  proxy:\n    image: traefik:3\n    volumes:\n"
                        "      - /var/run/docker.sock:/var/run/docker.sock:ro\n"
                        "      - ~/acme:/acme\n"
                        "      - type: bind\n        source: /srv/media-that-is-not-there\n        target: /media\n"
                        "        bind: {create_host_path: true}\n", name="compose.yaml")
    (proxy,) = state.containers.values()
    assert [(m.source, m.create_host_path, m.read_only) for m in proxy.mounts] == [
        (str(Path("/var/run/docker.sock").resolve()), True, True), (str(tmp_path / "home" / "acme"), True, False),
        ("/srv/media-that-is-not-there", True, False)]
    assert proxy.mounts[0].origin == f"{stack / 'compose.yaml'}:5:9"


def test_a_long_syntax_bind_to_a_missing_path_needs_create_host_path(tmp_path):
    stack = repo(tmp_path)
    missing = tmp_path / "outside" / "missing"
    spec = f"services:\n  web:\n    image: a:1\n    volumes:\n      - {{type: bind, source: {missing}, target: /m}}\n"
    found = problems(stack, spec, name="compose.yaml")
    assert list(found) == ["services.web.volumes[0].source"]
    assert found["services.web.volumes[0].source"].startswith(f"compose.yaml:5: bind source '{missing}' does not")
    assert "create_host_path: true" in found["services.web.volumes[0].source"]
    spec = spec.replace("target: /m}", "target: /m, bind: {create_host_path: true}}")
    assert binds(load(stack, spec, name="compose.yaml")) == [(str(missing), "/m", True)]


@pytest.mark.parametrize("entry, field", [
    ("volumes: ['../../outside:/o']", "containers.web.volumes[0]"),
    ("volumes: [{type: bind, source: ../../outside, target: /o}]", "containers.web.volumes[0].source"),
    ("volumes: ['./link:/o']", "containers.web.volumes[0]"),  # a link out of the repository is followed first
])
def test_a_relative_bind_source_that_climbs_out_needs_the_flag(tmp_path, entry, field):
    stack = repo(tmp_path)
    (stack / "link").symlink_to(tmp_path / "outside")
    spec = f"name: demo\ncontainers:\n  web:\n    image: a:1\n    {entry}\n"
    found = problems(stack, spec)
    assert list(found) == [field]
    assert f"outside the repository {tmp_path / 'repo'}" in found[field]
    assert "allow paths outside it with --allow-outside-paths" in found[field]
    assert binds(load(stack, spec, allow_outside=True)) == [
        (str(tmp_path / "outside"), "/o", entry.startswith("volumes: ['"))]


def test_a_relative_path_of_an_override_elsewhere_may_not_climb_out_either(tmp_path):
    stack = repo(tmp_path)
    (stack / "compose.yaml").write_text("services:\n  web: {image: a:1}\n")
    (stack / "ops").mkdir()
    (stack / "ops" / "extra.yaml").write_text("services:\n  web:\n    volumes: ['../../outside:/o', './data:/d']\n")
    with pytest.raises(SpecError) as caught:
        load_desired([stack / "compose.yaml", stack / "ops" / "extra.yaml"], environ={})
    (problem,) = caught.value.problems
    assert problem.path == "services.web.volumes[0]" and Path(problem.file).name == "extra.yaml"
    assert "outside the repository" in problem.message and "--allow-outside-paths" in problem.message


def test_what_the_reconciler_reads_stays_confined_even_by_an_absolute_path(tmp_path):
    stack = repo(tmp_path)
    outside = tmp_path / "outside"
    (outside / "Dockerfile").write_text("FROM scratch\n")
    (outside / "app.env").write_text("A=1\n")
    (outside / "routes.yml").write_text("x: 1\n")
    spec = (f"name: demo\nimages:\n  app: {{build: {{context: {outside}}}}}\n"
            f"configs:\n  routes: {{file: {outside / 'routes.yml'}}}\n"
            f"containers:\n  web:\n    image: app\n    env_file: {outside / 'app.env'}\n"
            f"    volumes: ['{outside}:/o']\n")
    found = problems(stack, spec)
    assert sorted(found) == ["configs.routes.file", "containers.web.env_file", "images.app.build.context"]
    assert all("--allow-outside-paths" in message for message in found.values())
    load(stack, spec, allow_outside=True)


# --- host_paths: a daemon source's allow_host_paths -------------------------------------------

def test_no_host_paths_allows_only_the_repository(tmp_path):
    stack = repo(tmp_path)
    (stack / "data").mkdir()
    spec = (f"name: demo\ncontainers:\n  web:\n    image: a:1\n"
            f"    volumes: ['{tmp_path / 'outside'}:/o', '{stack / 'data'}:/d', './data:/r']\n")
    found = problems(stack, spec, host_paths=())
    assert found == {"containers.web.volumes[0]": (
        f"stack.yaml:5: bind source '{tmp_path / 'outside'}' resolves to {tmp_path / 'outside'}, outside the "
        f"repository {tmp_path / 'repo'}, and this source's allow_host_paths is false")}
    # --allow-outside-paths lets the reconciler read outside; it does not widen allow_host_paths.
    assert list(problems(stack, spec, host_paths=(), allow_outside=True)) == ["containers.web.volumes[0]"]


def test_host_paths_roots_allow_what_is_inside_them_after_links(tmp_path):
    stack = repo(tmp_path)
    allowed = tmp_path / "outside" / "srv"
    (allowed / "media").mkdir(parents=True)
    (allowed / "escape").symlink_to("/etc")
    spec = (f"name: demo\ncontainers:\n  web:\n    image: a:1\n"
            f"    volumes: ['{allowed / 'media'}:/m', '{allowed / 'escape'}:/e', /var/run/docker.sock:/s]\n")
    found = problems(stack, spec, host_paths=(str(allowed),))
    assert sorted(found) == ["containers.web.volumes[1]", "containers.web.volumes[2]"]
    assert f"outside this source's allow_host_paths ({allowed})" in found["containers.web.volumes[1]"]


def test_the_daemon_setting_is_read_from_the_source(tmp_path):
    path = tmp_path / "daemon.yaml"
    path.write_text("sources:\n  - {name: a, dir: .}\n  - {name: b, dir: ., allow_host_paths: false}\n"
                    "  - {name: c, dir: ., allow_host_paths: [/srv, ~/media]}\n  - {name: d, dir: ., "
                    "allow_host_paths: true}\n")
    a, b, c, d = load_config(path).sources
    assert a.allow_host_paths is None and d.allow_host_paths is None
    assert b.allow_host_paths == ()
    assert c.allow_host_paths == ("/srv", str(Path("~/media").expanduser()))
    path.write_text("sources:\n  - {name: a, dir: ., allow_host_paths: [srv]}\n")
    with pytest.raises(SpecError) as caught:
        load_config(path)
    assert caught.value.problems[0].line == 2 and "allow_host_paths" in caught.value.problems[0].path


def test_a_daemon_source_refuses_a_revision_with_a_host_path_and_keeps_the_last_good_one(tmp_path, memory_engine):
    stacks = tmp_path / "stacks" / "app"
    stacks.mkdir(parents=True)
    (stacks / "stack.yaml").write_text("name: demo\ncontainers:\n  web: {image: 'busybox:1'}\n")
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "resync": 300, "sources": [
        {"name": "here", "dir": str(tmp_path / "stacks"), "paths": ["app"], "allow_host_paths": False}]}))
    daemon = Daemon(load_config(str(config)), reconciler=make_reconciler(memory_engine))
    (worker,) = daemon.workers
    assert worker.loop.run_pass(Trigger.START).ok
    (stacks / "stack.yaml").write_text("name: demo\ncontainers:\n  web:\n    image: 'busybox:1'\n"
                                       "    volumes: [/var/run/docker.sock:/var/run/docker.sock]\n")
    result = worker.loop.run_pass(Trigger.START)
    assert result.invalid
    assert f"{stacks / 'stack.yaml'}:5:" in str(result.error) and "allow_host_paths is false" in str(result.error)
    assert "demo-web-1" in memory_engine.containers  # the last good revision stays


# --- policy -----------------------------------------------------------------------------------

TRAEFIK = """\
services:
  proxy:
    image: traefik:3
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock:ro
      - ./rules:/rules:ro
"""


def policy(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return str(path)


def test_policy_violations_name_the_mount_at_its_file_line_col(tmp_path):
    stack = repo(tmp_path)
    state = load(stack, TRAEFIK, name="compose.yaml")
    reason = check_policy(policy(tmp_path, "deny_docker_socket: true\n"), state)
    compose = stack / "compose.yaml"
    socket = Path("/var/run/docker.sock").resolve()  # the desired state holds the source resolved
    assert reason == (f"container proxy (stack-proxy-1): {compose}:5:9: volumes: bind mount {socket} at "
                      "/var/run/docker.sock exposes the Docker socket; denied by policy rule deny_docker_socket")


def test_allowed_and_denied_host_paths(tmp_path):
    stack = repo(tmp_path)
    state = load(stack, TRAEFIK, name="compose.yaml")
    compose = stack / "compose.yaml"
    allowed = check_policy(policy(tmp_path, f"allowed_host_paths: [{stack}]\n"), state)
    assert allowed.splitlines() == [line for line in allowed.splitlines()
                                    if line.startswith(f"container proxy (stack-proxy-1): {compose}:5:9: ")]
    assert "allowed_host_paths" in allowed
    assert check_policy(policy(tmp_path, f"allowed_host_paths: [{stack}, /var/run, /run]\n"), state) is None
    # denied wins over allowed, and a source above a denied root exposes it too
    denied = check_policy(policy(tmp_path, f"allowed_host_paths: ['/']\ndenied_host_paths: [{stack / 'rules'}]\n"),
                          state)
    assert denied == (f"container proxy (stack-proxy-1): {compose}:6:9: volumes: bind mount {stack / 'rules'} at "
                      f"/rules exposes {stack / 'rules'}; denied by policy rule denied_host_paths")
    above = check_policy(policy(tmp_path, "denied_host_paths: [/var/run/docker.sock/..]\n"), state)
    assert "denied_host_paths" in above and above.startswith(f"container proxy (stack-proxy-1): {compose}:5:9: ")
    assert "denied_host_paths" in check_policy(policy(tmp_path, f"denied_host_paths: [{stack}/rules/x]\n"), state)


def test_a_bad_host_paths_rule_refuses(tmp_path):
    reason = check_policy(policy(tmp_path, "denied_host_paths: /srv\nallowed_host_paths: [srv]\n"),
                          load(repo(tmp_path), TRAEFIK, name="compose.yaml"))
    assert "denied_host_paths must be a list (leave the key out to deny none)" in reason
    assert "allowed_host_paths[0] must be an absolute path" in reason
