"""Trust boundaries against the real engine (issue 8): what the CLI does when its surroundings misbehave."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import uuid

import docker.errors
import pytest

from .conftest import BASE_IMAGE
from .tcp_relay import TcpRelay

pytestmark = pytest.mark.engine

ONE = """
name: STACK
containers:
  web:
    image: BASE
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
"""


def test_plan_into_a_pipe_whose_reader_left_exits_quietly(stack):
    stack.write(ONE)
    read_end, write_end = os.pipe()
    os.close(read_end)  # `reconcile plan | head` once head has exited
    try:
        proc = subprocess.run([sys.executable, "-m", "reconciler", "plan", "-f", str(stack.dir / "stack.yaml")],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120, cwd=stack.dir)
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr


def test_plan_of_an_emptied_spec_says_what_apply_says(stack):
    stack.write(ONE)
    assert stack.apply().code == 0
    stack.write("name: STACK\n# everything removed\n")
    message = (f"the spec of stack '{stack.name}' is empty: applying it would delete every object the stack owns; "
               "run 'reconcile destroy' to remove the stack")
    for command in ("validate", "plan", "apply"):
        result = stack.cli(command)
        assert result.code == 1, (command, result.out, result.err)
        assert result.err == f"error: {message}\n", (command, result.err)
        assert "delete" not in result.out, (command, result.out)
    assert set(stack.containers()) == {f"{stack.name}-web-1"}
    assert stack.cli("destroy").code == 0
    assert stack.containers() == {}


class BlackHole:
    """A TCP address on loopback that never completes a connection: a listener whose queue is full.

    Linux drops a SYN when the accept queue is full, as a firewall dropping packets would,
    so a client's connect waits until its own timeout.
    """

    def __enter__(self) -> str:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.filler = socket.create_connection(self.listener.getsockname(), timeout=2)  # fills the queue
        return "tcp://127.0.0.1:%d" % self.listener.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.filler.close()
        self.listener.close()


def test_a_black_holed_engine_fails_plan_within_the_connect_timeout(stack):
    stack.write(ONE)
    with BlackHole() as url:
        result, took = stack.cli_within(40, "plan", "--engine", url, env={"RECONCILER_CONNECT_TIMEOUT": "1"})
    assert result.code == 1
    assert result.err.startswith(f"error: cannot reach the Docker engine at {url}: no connection within 1s "
                                 "(the connect timeout, RECONCILER_CONNECT_TIMEOUT)"), result.err
    assert "Traceback" not in result.err
    assert took < 15  # three attempts of 1s, and the backoff between them


def test_a_black_holed_engine_fails_apply_within_the_default_connect_timeout(stack):
    stack.write(ONE)
    with BlackHole() as url:
        result, took = stack.cli_within(60, "apply", "--engine", url, env={"RECONCILER_CONNECT_TIMEOUT": ""})
    assert result.code == 1
    assert f"cannot reach the Docker engine at {url}: no connection within 5s" in result.err, result.err
    assert took < 30
    assert stack.containers() == {}


def test_one_engine_through_two_urls_takes_one_lock(stack):
    from reconciler.reconcile import ApplyRequest, Reconciler
    from reconciler.spec import load_desired

    stack.write(ONE)
    holding, release = threading.Event(), threading.Event()

    def hold(plan) -> None:
        holding.set()
        release.wait(60)

    reconciler = Reconciler(engine_url="unix:///var/run/docker.sock")
    desired = load_desired([stack.dir / "stack.yaml"], drivers=reconciler.driver_names())
    holder = threading.Thread(target=reconciler.apply, args=(desired, ApplyRequest()), kwargs={"on_plan": hold})
    with TcpRelay() as relay:
        holder.start()
        try:
            assert holding.wait(60)
            second = stack.apply("--engine", relay.url, "--lock-timeout", "1")
        finally:
            release.set()
            holder.join(60)
        assert second.code == 1, second.out + second.err
        assert f"stack '{stack.name}' is locked by pid {os.getpid()}" in second.err
        assert second.out == ""
        # Through either URL the stack is then the same, converged one.
        again = stack.apply("--engine", relay.url, "--output", "json")
    assert again.code == 0, again.out + again.err
    calls = again.json()["engine_calls"]
    assert again.json()["changes"] == [] and calls.get("write", 0) == 0 and calls["read"] <= 5


def test_debug_logs_never_show_a_secret_build_arg(stack):
    secret = f'tok {uuid.uuid4().hex} &"x'  # spaces and quotes: the request line carries it URL-encoded JSON
    nonce = secret.split()[1]  # survives every encoding, so finding it anywhere is a leak
    app = stack.dir / "app"
    app.mkdir()
    (app / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nARG TOKEN\nLABEL nonce={uuid.uuid4().hex}\n")
    stack.write("""
        name: STACK
        images:
          app:
            build:
              context: ./app
              args: {TOKEN: {value: "${TOKEN}", secret: true}}
            ref: STACK-app:1
    """)
    try:
        result = stack.cli("--log-level", "debug", "apply", env={"TOKEN": secret})
        assert result.code == 0, result.out + result.err
        assert nonce not in result.out + result.err
        assert "buildargs=" in result.err and "(secret)" in result.err  # urllib3's request line, redacted
    finally:
        try:
            stack.engine.remove_image(f"{stack.name}-app:1", force=True)
        except docker.errors.NotFound:
            pass


def test_a_taken_port_is_named_and_leaves_no_created_container_behind(stack):
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        stack.write(f"""
            name: STACK
            networks:
              back: {{}}
            containers:
              web:
                image: BASE
                command: ["sleep", "3600"]
                init: true
                networks: [back]
                ports: ["127.0.0.1:{port}:8080"]
                stop_grace_period: 1s
        """)
        result = stack.apply()
        assert result.code == 1, result.out + result.err
        assert stack.containers() == {}  # not left behind in "created", holding the name
        assert f"host port 127.0.0.1:{port}/tcp is already in use (the container never ran and was removed)" \
            in result.out, result.out
        status = stack.cli("status", "--output", "json")
        rows = {row["name"]: row for row in status.json()["objects"]}
        assert rows[f"{stack.name}-web-1"]["state"] == "missing"
    again = stack.apply()  # the port is free now: the next pass simply creates it
    assert again.code == 0, again.out + again.err
    assert stack.containers()[f"{stack.name}-web-1"]["State"] == "running"
