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
