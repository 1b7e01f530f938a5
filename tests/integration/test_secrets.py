"""Secret env values never appear in output, JSON reports or labels."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.engine

SPEC = """
name: STACK
containers:
  web:
    image: BASE
    command: ["sleep", "3600"]
    init: true
    env:
      PLAIN: visible
      TOKEN: {value: "${TOKEN}", secret: true}
"""


def test_secrets_are_redacted_everywhere(stack):
    stack.write(SPEC)
    first, second = "tok-FIRST-8c1f", "tok-SECOND-77aa"
    outputs = []
    for args in (("plan",), ("plan", "--output", "json"), ("apply",)):
        result = stack.cli(*args, env={"TOKEN": first})
        assert result.code == 0, result.err
        outputs.append(result.out + result.err)
    change = stack.cli("plan", env={"TOKEN": second})
    assert "env.TOKEN: (secret) → (secret)" in change.out
    outputs.append(change.out + change.err)
    for args in (("apply", "--output", "json"), ("status",), ("status", "--output", "json")):
        result = stack.cli(*args, env={"TOKEN": second})
        assert result.code == 0, result.err
        outputs.append(result.out + result.err)
    for text in outputs:
        assert first not in text and second not in text
    info = stack.engine.inspect_container(f"{stack.name}-web-1")
    labels = json.dumps(info["Config"]["Labels"])
    assert first not in labels and second not in labels
    assert info["Config"]["Labels"]["io.reconciler.secret-env"] == "TOKEN"
    assert f"TOKEN={second}" in info["Config"]["Env"]  # the container itself does get it
