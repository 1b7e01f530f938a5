"""ssh:// engines through the system's ssh client (no paramiko): a private sshd on 127.0.0.1 in front of the
main engine, reached with a key and host key of its own (tests/integration/sshd.py)."""
from __future__ import annotations

import subprocess

import docker

from .conftest import BASE_IMAGE
from .sshd import ssh_engine  # noqa: F401  (a module fixture)

BUILT = """
name: STACK
images:
  app:
    build: {context: ./app}
    ref: STACK-app:1
containers:
  app:
    image: app
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
    env: {LEVEL: "one"}
"""


def test_a_stack_with_a_build_converges_over_ssh_and_a_second_apply_writes_nothing(stack, ssh_engine):
    (stack.dir / "app").mkdir()
    (stack.dir / "app" / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY hello /hello\n")
    (stack.dir / "app" / "hello").write_text("over ssh\n")  # a build context uploaded through the ssh process
    stack.write(BUILT)
    try:
        first = stack.apply("--engine", ssh_engine.url, env=ssh_engine.env)
        assert first.code == 0, first.out + first.err
        assert stack.containers()[f"{stack.name}-app-1"]["State"] == "running"
        again = stack.apply("--engine", ssh_engine.url, "--output", "json", env=ssh_engine.env)
        assert again.code == 0, again.err
        assert again.json()["changes"] == [] and again.json()["engine_calls"]["write"] == 0
        status = stack.cli("status", "--engine", ssh_engine.url, env=ssh_engine.env)
        assert status.code == 0 and f"{stack.name}-app-1" in status.out and "running" in status.out
        # No ssh process outlives the runs that opened them.
        port = ssh_engine.url.rsplit(":", 1)[1]
        assert subprocess.run(["pgrep", "-f", "--", f"-p {port} -- 127.0.0.1 docker system dial-stdio"],
                              capture_output=True).returncode == 1
    finally:
        try:
            stack.engine.remove_image(f"{stack.name}-app:1", force=True)
        except docker.errors.NotFound:
            pass


def test_an_unknown_host_key_is_refused_with_sshs_own_words_and_nothing_changes(stack, ssh_engine, tmp_path):
    stack.write(f"name: STACK\ncontainers:\n  app: {{image: {BASE_IMAGE}, command: [sleep, '3600'], init: true}}\n")
    strict = tmp_path / "ssh_config"  # the right key, but a known_hosts that does not know the server
    strict.write_text((ssh_engine.folder / "ssh_config").read_text().replace(
        str(ssh_engine.folder / "known_hosts"), str(tmp_path / "empty_known_hosts")))
    result = stack.apply("--engine", ssh_engine.url, env={"RECONCILER_SSH_CONFIG": str(strict)})
    assert result.code == 1
    assert f"cannot reach the Docker engine at {ssh_engine.url}: ssh exited 255: Host key verification failed" \
        in result.err, result.err
    assert "Traceback" not in result.err and stack.containers() == {}
