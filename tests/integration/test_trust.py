"""Trust boundaries against the real engine (issue 8): what the CLI does when its surroundings misbehave."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

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
