"""A daemon sees ``reconcile suspend`` and ``resume`` run on its host within a second, not at its next resync."""
from __future__ import annotations

import json

from .daemons import RunningDaemon, stack_spec


def _env(stack) -> list[str]:
    return stack.engine.inspect_container(f"{stack.name}-web-1")["Config"]["Env"]


def test_a_local_suspend_and_resume_take_effect_at_once(stack, tmp_path):
    source = tmp_path / "stacks"
    (source / "app").mkdir(parents=True)
    spec = source / "app" / "stack.yaml"
    spec.write_text(stack_spec(stack.name, "1"))
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "resync": 300,  # no resync in this test
                                  "sources": [{"name": "local", "dir": str(source), "paths": ["app"]}]}))
    state = ["--state-dir", str(tmp_path / "state")]
    daemon = RunningDaemon(config)
    try:
        daemon.wait_for(lambda line: line.get("path") == "app" and line.get("ok"), timeout=60)
        mark = daemon.mark()
        assert stack.cli("suspend", stack.name, *state, spec=False).code == 0
        daemon.wait_for(lambda line: line.get("trigger") == "record" and line.get("suspended"), timeout=5, after=mark)
        mark = daemon.mark()
        spec.write_text(stack_spec(stack.name, "2"))  # a change the suspended stack reports and does not apply
        held = daemon.wait_for(lambda line: line.get("suspended") and line.get("drift"), timeout=30, after=mark)
        assert held["drift"] == {"replace": 1} and "VERSION=1" in _env(stack)
        mark = daemon.mark()
        assert stack.cli("resume", stack.name, *state, spec=False).code == 0
        daemon.wait_for(lambda line: line.get("trigger") == "record" and line.get("ok") and not line.get("suspended"),
                        timeout=5, after=mark)
        assert "VERSION=2" in _env(stack)
    finally:
        assert daemon.stop() == 0
