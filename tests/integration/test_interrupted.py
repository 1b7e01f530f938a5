"""A replacement interrupted half-way is finished or undone by the next pass, without ``--adopt`` (issue 21, §1).

A rolling replacement renames the old container to ``<name>-old-<id>`` before
its successor takes the name. Whatever stops the apply in between (SIGTERM,
SIGKILL, a full disk), the record still knows the old container by its id.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from ..waiting import wait_until

SPEC = """
name: STACK
containers:
  web:
    image: BASE
    command: ["sh", "-c", "sleep @S@; exec httpd -f -p 8080 -h /"]
    init: true
    stop_grace_period: 1s
    env: {VERSION: "@V@"}
    healthcheck: {test: ["CMD-SHELL", "nc -w 1 127.0.0.1 8080 </dev/null"], interval: 1s, retries: 60}
"""


def _write(stack, version: str, *, sleep: int = 0) -> None:
    stack.write(SPEC.replace("@V@", version).replace("@S@", str(sleep)))


def _one_web(stack, version: str) -> dict:
    """The stack's only container: named as the spec says, running ``version``."""
    containers = stack.containers()
    assert list(containers) == [f"{stack.name}-web-1"], containers
    web = containers[f"{stack.name}-web-1"]
    assert web["State"] == "running", web
    env = stack.engine.inspect_container(web["Id"])["Config"]["Env"]
    assert f"VERSION={version}" in env, env
    return web


def _set_aside(stack) -> str:
    """What a replacement does first: rename the running container to ``<name>-old-<id>``; its id."""
    web = stack.containers()[f"{stack.name}-web-1"]
    stack.engine.rename(web["Id"], f"{stack.name}-web-1-old-{web['Id'][:12]}")
    return web["Id"]


def test_a_container_left_aside_is_replaced_by_the_next_apply(stack):
    _write(stack, "1")
    assert stack.apply().code == 0
    old = _set_aside(stack)  # the apply of version 2 stopped right after its rename
    _write(stack, "2")
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    assert "claims this stack" not in result.out + result.err
    assert _one_web(stack, "2")["Id"] != old
    assert stack.cli("plan", "--detailed-exitcode").code == 0  # converged, and the record knows the new one


def test_a_container_left_aside_of_an_unchanged_spec_gets_its_name_back_by_a_replacement(stack):
    _write(stack, "1")
    assert stack.apply().code == 0
    _set_aside(stack)
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    _one_web(stack, "1")
    assert stack.cli("plan", "--detailed-exitcode").code == 0


def _apply_in_background(stack) -> subprocess.Popen:
    command = [sys.executable, "-m", "reconciler", "apply", "-f", str(stack.dir / "stack.yaml")]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=stack.dir,
                            env=dict(os.environ))


def _aside_exists(stack) -> bool:
    return any("-old-" in name for name in stack.containers())


def test_an_apply_killed_while_the_new_container_gets_healthy_is_finished_by_the_next(stack):
    _write(stack, "1")
    assert stack.apply().code == 0
    _write(stack, "2", sleep=30)  # the new container takes 30 s to get healthy: plenty of time to kill the apply
    proc = _apply_in_background(stack)
    try:
        wait_until(lambda: _aside_exists(stack) and len(stack.containers()) == 2, 60, "the new container beside the old")
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    _write(stack, "2")  # a fix lands: the next pass must not be stuck on the half-done replacement
    result = stack.apply()
    assert result.code == 0, result.out + result.err
    _one_web(stack, "2")
    assert stack.cli("plan", "--detailed-exitcode").code == 0


def test_sigterm_to_apply_finishes_the_replacement_in_flight_and_says_so(stack):
    _write(stack, "1")
    assert stack.apply().code == 0
    _write(stack, "2", sleep=4)
    proc = _apply_in_background(stack)
    try:
        wait_until(lambda: _aside_exists(stack) and len(stack.containers()) == 2, 60, "the new container beside the old")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, (proc.returncode, out, err)
    assert "interrupted by SIGTERM" in err and "run apply again" in err, err
    _one_web(stack, "2")  # the roll in flight finished: the new container took over, the old one went
    assert stack.cli("plan", "--detailed-exitcode").code == 0
