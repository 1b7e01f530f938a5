"""The policy plugin: each rule allows and denies, all violations at once, broken policies refuse."""
from __future__ import annotations

import os

import pytest

import reconciler_policy
from reconciler.model import ContainerSpec, DesiredState, ImageSpec, Mount
from reconciler.plan import Plan
from reconciler.plugins import make_plugin_manager
from reconciler_policy import POLICY_ENV, check_policy, reconciler_plan_ready
from reconciler_policy.checks import names_registry, registry_of
from reconciler_policy.rules import Policy, PolicyFileError, load_policy, parse_policy

STACK = "shop"


def container(key: str = "web", replica: int = 1, *, image: str = "docker.io/library/busybox:1",
              image_key: str | None = None, binds: tuple[str, ...] = (), **kw) -> ContainerSpec:
    mounts = tuple(Mount(type="bind", source=src, target=f"/mnt/{i}") for i, src in enumerate(binds))
    return ContainerSpec(key=key, name=f"{STACK}-{key}-{replica}", replica=replica, image_key=image_key,
                         image_ref=image, mounts=mounts, **kw)


def desired(*specs: ContainerSpec, images: dict[str, ImageSpec] | None = None) -> DesiredState:
    return DesiredState(stack=STACK, images=images or {}, containers={s.name: s for s in specs})


def policy_file(tmp_path, text: str):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return str(path)


def check(tmp_path, text: str, *specs: ContainerSpec, **kw) -> str | None:
    return check_policy(policy_file(tmp_path, text), desired(*specs, **kw))


# --- one rule at a time -------------------------------------------------------

def test_deny_privileged(tmp_path):
    reason = check(tmp_path, "deny_privileged: true", container(privileged=True), container("db"))
    assert reason == "container web (shop-web-1): privileged mode is denied by policy rule deny_privileged"
    assert check(tmp_path, "deny_privileged: true", container()) is None
    assert check(tmp_path, "deny_privileged: false", container(privileged=True)) is None


def test_deny_privileged_covers_what_amounts_to_privileged_mode(tmp_path):
    risky = container(cap_add=("NET_ADMIN", "CAP_SYS_ADMIN"), devices=("/dev/sda:/dev/sda:rwm",),
                      security_opt=("no-new-privileges", "seccomp=unconfined"), pid="host", ipc="host")
    reason = check(tmp_path, "deny_privileged: true", risky)
    assert reason.splitlines() == [f"container web (shop-web-1): {what} is denied by policy rule deny_privileged"
                                   for what in ("cap_add CAP_SYS_ADMIN", "device /dev/sda",
                                                "security_opt seccomp=unconfined", "pid host", "ipc host")]
    harmless = container(cap_add=("NET_ADMIN",), security_opt=("no-new-privileges",), ipc="shareable")
    assert check(tmp_path, "deny_privileged: true", harmless) is None
    assert check(tmp_path, "deny_privileged: false", risky) is None


def test_deny_host_network(tmp_path):
    reason = check(tmp_path, "deny_host_network: true", container(network_mode="host"))
    assert reason == "container web (shop-web-1): network_mode host is denied by policy rule deny_host_network"
    assert check(tmp_path, "deny_host_network: true", container(network_mode="none"), container("db")) is None
    assert check(tmp_path, "{}", container(network_mode="host")) is None


@pytest.mark.parametrize("source", [
    "/var/run/docker.sock", "/run/docker.sock", "/srv/../var/run/docker.sock", "/var/run", "/run", "/var", "/",
])
def test_deny_docker_socket_denies_the_socket_and_its_parents(tmp_path, source):
    reason = check(tmp_path, "deny_docker_socket: true", container(binds=(source,)))
    assert reason is not None
    assert reason.startswith(f"container web (shop-web-1): volumes: bind mount {source}")
    assert "exposes the Docker socket; denied by policy rule deny_docker_socket" in reason


def test_deny_docker_socket_follows_symlinks(tmp_path):
    link = tmp_path / "innocent"
    link.symlink_to("/var/run")
    reason = check(tmp_path, "deny_docker_socket: true", container(binds=(str(link / "docker.sock"),)))
    assert reason is not None and "resolves to /run/docker.sock" in reason and "deny_docker_socket" in reason


def test_deny_docker_socket_allows_other_paths(tmp_path):
    assert check(tmp_path, "deny_docker_socket: true", container(binds=("/srv/data", "/var/lib/app"))) is None


def test_deny_docker_socket_covers_a_docker_host_unix_socket(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///opt/engine/engine.sock")
    assert check(tmp_path, "deny_docker_socket: true", container(binds=("/opt/engine",))) is not None


def test_allowed_host_paths(tmp_path):
    policy = "allowed_host_paths: [/srv/data, /opt/app]"
    assert check(tmp_path, policy, container(binds=("/srv/data", "/opt/app/conf/x.ini"))) is None
    reason = check(tmp_path, policy, container(binds=("/srv/database", "/srv/data/../../etc", "/opt/app")))
    assert reason is not None
    lines = reason.splitlines()
    assert len(lines) == 2
    assert lines[0] == ("container web (shop-web-1): volumes: bind mount /srv/database at /mnt/0 is outside "
                        "the paths allowed by policy rule allowed_host_paths (/srv/data, /opt/app)")
    assert "bind mount /srv/data/../../etc (resolves to /etc)" in lines[1]


def test_allowed_host_paths_resolves_symlinks_out_of_an_allowed_dir(tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "escape").symlink_to("/etc")
    policy = f"allowed_host_paths: [{allowed}]"
    assert check(tmp_path, policy, container(binds=(str(allowed / "data"),))) is None
    assert "allowed_host_paths" in check(tmp_path, policy, container(binds=(str(allowed / "escape"),)))


def test_empty_allowed_host_paths_allows_no_bind_mount(tmp_path):
    assert check(tmp_path, "allowed_host_paths: []", container(binds=("/srv",))) is not None
    assert check(tmp_path, "allowed_host_paths: []", container()) is None


def test_volume_and_tmpfs_mounts_are_not_bind_mounts(tmp_path):
    spec = container()
    spec = ContainerSpec(**{**vars(spec), "mounts": (Mount(type="volume", source="/", target="/data"),
                                                      Mount(type="tmpfs", target="/tmp"))})
    assert check(tmp_path, "deny_docker_socket: true\nallowed_host_paths: []", spec) is None


def test_allowed_registries(tmp_path):
    policy = "allowed_registries: [registry.local:5000, docker.io]"
    ok = [container("a", image="busybox"), container("b", image="registry.local:5000/app:1"),
          container("c", image="index.docker.io/library/busybox")]
    assert check(tmp_path, policy, *ok) is None
    reason = check(tmp_path, policy, container(image="ghcr.io/x/y:1"))
    assert reason == ("container web (shop-web-1): image: ghcr.io/x/y:1 comes from registry ghcr.io, which policy "
                      "rule allowed_registries does not allow (allowed: registry.local:5000, docker.io)")


def test_allowed_registries_skips_local_builds_unless_their_ref_names_a_registry(tmp_path):
    images = {
        "app": ImageSpec(key="app", ref="shop-app:latest", build_context="/src/app"),
        "pushed": ImageSpec(key="pushed", ref="ghcr.io/acme/app:1", build_context="/src/app"),
        "pulled": ImageSpec(key="pulled", ref="quay.io/acme/tool:2"),
    }
    specs = [container("app", image="shop-app:latest", image_key="app"),
             container("pushed", image="ghcr.io/acme/app:1", image_key="pushed"),
             container("pulled", image="quay.io/acme/tool:2", image_key="pulled")]
    reason = check(tmp_path, "allowed_registries: [docker.io]", *specs, images=images)
    assert [line.split(":")[0] for line in reason.splitlines()] == [
        "container pulled (shop-pulled-1)", "container pushed (shop-pushed-1)"]


@pytest.mark.parametrize("ref, registry, explicit", [
    ("busybox", "docker.io", False),
    ("busybox:1.36", "docker.io", False),
    ("library/busybox", "docker.io", False),
    ("busybox@sha256:" + "a" * 64, "docker.io", False),
    ("registry.local:5000/app:1", "registry.local:5000", True),
    ("localhost/app", "localhost", True),
    ("localhost:5000/app", "localhost:5000", True),
    ("ghcr.io/x/y@sha256:" + "b" * 64, "ghcr.io", True),
    ("index.docker.io/library/busybox", "docker.io", True),
    ("Registry/app", "registry", True),  # uppercase is never a repository name: docker treats it as a host
    ("acme/tools/app:2", "docker.io", False),
])
def test_registry_of(ref, registry, explicit):
    assert registry_of(ref) == registry
    assert names_registry(ref) is explicit


# --- reporting ----------------------------------------------------------------

def test_every_violation_is_listed_once_per_container_key(tmp_path):
    policy = "deny_privileged: true\ndeny_host_network: true\ndeny_docker_socket: true\nallowed_registries: [docker.io]\n"
    web = [container("web", r, privileged=True, binds=("/var/run/docker.sock",)) for r in (1, 2, 3)]
    db = container("db", network_mode="host", image="ghcr.io/acme/db:1")
    ok = container("ok")
    lines = check(tmp_path, policy, *web, db, ok).splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("container db (shop-db-1): network_mode host")
    assert lines[1].startswith("container db (shop-db-1): image: ghcr.io/acme/db:1")
    assert lines[2] == ("container web (shop-web-1, shop-web-2, shop-web-3): "
                        "privileged mode is denied by policy rule deny_privileged")
    assert lines[3].startswith("container web (shop-web-1, shop-web-2, shop-web-3): volumes: bind mount ")
    assert not any("ok" in line for line in lines)


# --- configuration ------------------------------------------------------------

def test_no_policy_variable_allows_everything(monkeypatch):
    monkeypatch.delenv(POLICY_ENV, raising=False)
    assert reconciler_plan_ready(plan=Plan(STACK), desired=desired(container(privileged=True))) is None
    monkeypatch.setenv(POLICY_ENV, "  ")
    assert reconciler_plan_ready(plan=Plan(STACK), desired=desired(container(privileged=True))) is None


def test_the_variable_is_read_at_hook_time(tmp_path, monkeypatch):
    path = policy_file(tmp_path, "deny_privileged: true")
    state = desired(container(privileged=True))
    monkeypatch.setenv(POLICY_ENV, path)
    assert "deny_privileged" in reconciler_plan_ready(plan=Plan(STACK), desired=state)
    monkeypatch.delenv(POLICY_ENV)
    assert reconciler_plan_ready(plan=Plan(STACK), desired=state) is None


def test_the_plugin_is_registered_through_its_entry_point(monkeypatch, tmp_path):
    monkeypatch.setenv(POLICY_ENV, policy_file(tmp_path, "deny_privileged: true"))
    pm = make_plugin_manager(disabled=[])
    assert pm.is_registered(reconciler_policy)
    reasons = pm.hook.reconciler_plan_ready(plan=Plan(STACK), desired=desired(container(privileged=True)))
    assert any("deny_privileged" in r for r in reasons if r)


@pytest.mark.parametrize("text, problem", [
    ("deny_privileged: [unclosed", "invalid YAML: "),
    ("deny_privileged: true\n  bad: indent", "invalid YAML: "),
    ("", "it is empty"),
    ("- deny_privileged", "expected a mapping of rules, found a list"),
    ("deny_privileged: 'yes please'", "deny_privileged must be true or false, found the string 'yes please'"),
    ("allowed_host_paths: /srv", "allowed_host_paths must be a list"),
    ("allowed_host_paths:", "allowed_host_paths must be a list"),
    ("allowed_host_paths: [srv/data]", "allowed_host_paths[0] must be an absolute path"),
    ("allowed_registries: [docker.io, 5]", "allowed_registries[1] must be a non-empty string"),
    ("deny_privilege: true\nallow_everything: true", "unknown keys allow_everything, deny_privilege"),
])
def test_a_broken_policy_refuses_naming_the_file_and_problem(tmp_path, text, problem):
    path = policy_file(tmp_path, text)
    reason = check_policy(path, desired(container()))
    assert reason is not None
    assert reason.startswith(f"policy file {path} is not usable, so the plan is refused: ")
    assert problem in reason
    assert "\n" not in reason


def test_a_broken_policy_lists_every_problem(tmp_path):
    with pytest.raises(PolicyFileError) as caught:
        load_policy(policy_file(tmp_path, "deny_privileged: 1\nallowed_registries: x\nwhat: 1"))
    assert len(caught.value.problems) == 3


def test_a_missing_or_unreadable_policy_refuses(tmp_path):
    missing = str(tmp_path / "nope.yaml")
    assert check_policy(missing, desired(container())) == (
        f"policy file {missing} is not usable, so the plan is refused: cannot read it: No such file or directory")
    assert "cannot read it" in check_policy(str(tmp_path), desired(container()))  # a directory
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00deny")
    assert "not UTF-8" in check_policy(str(binary), desired(container()))


def test_a_stack_without_containers_is_allowed_even_under_a_broken_policy(tmp_path):
    # Nothing in it can break a rule; a destroy must not be blocked by a typo in the policy.
    assert check_policy(str(tmp_path / "nope.yaml"), desired()) is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_a_policy_without_read_permission_refuses(tmp_path):
    path = policy_file(tmp_path, "deny_privileged: true")
    os.chmod(path, 0)
    assert "cannot read it: Permission denied" in check_policy(path, desired(container()))


def test_a_huge_policy_refuses(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("# " + "x" * (1024 * 1024) + "\n{}")
    assert "more than the" in check_policy(str(path), desired(container()))


def test_a_full_policy_parses():
    policy = parse_policy({"deny_privileged": True, "deny_host_network": False, "deny_docker_socket": True,
                           "allowed_host_paths": ["/srv/data"], "allowed_registries": ["docker.io"]}, source="p")
    assert policy == Policy(True, False, True, ("/srv/data",), ("docker.io",))
    assert parse_policy({}, source="p") == Policy()


def test_a_checking_bug_refuses_instead_of_allowing(tmp_path, monkeypatch):
    import reconciler_policy.checks

    def broken(policy, state):
        raise RuntimeError("boom")

    monkeypatch.setattr(reconciler_policy.checks, "find_violations", broken)
    path = policy_file(tmp_path, "{}")
    assert check_policy(path, desired(container())) == (
        f"policy file {path}: the policy plugin could not check the plan (RuntimeError: boom)")
