"""reconcile history: the syncs the reconciler recorded, read back from its state directory."""
from __future__ import annotations

SPEC = """
name: STACK
containers:
  web: {image: BASE, command: ["sleep", "3600"], init: true, stop_grace_period: 1s, env: {V: "VER"}}
"""


def test_history_lists_each_apply_newest_first(stack, tmp_path):
    env = {"RECONCILER_STATE_DIR": str(tmp_path / "state")}
    stack.write(SPEC.replace("VER", "1"))
    assert stack.apply(env=env).code == 0
    stack.write(SPEC.replace("VER", "2"))
    assert stack.apply(env=env).code == 0
    text = stack.cli("history", stack.name, env=env, spec=False)
    assert text.code == 0, text.err
    lines = text.out.splitlines()
    assert lines[0].split()[:4] == ["STARTED", "STACK", "REVISION", "RESULT"]
    assert [line.split()[1] for line in lines[1:]] == [stack.name, stack.name]
    data = stack.cli("history", stack.name, "--output", "json", env=env, spec=False).json()
    assert [s["result"] for s in data] == ["converged", "converged"]
    assert "replace" in data[0]["summary"] and "create" in data[1]["summary"]
