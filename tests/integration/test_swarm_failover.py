"""A daemon against the three managers of one real swarm: when the one it uses stops, the next pass goes
through another manager of the same swarm, keeps the one record (keyed on the swarm) and changes the
service in place; a list naming an engine outside the swarm is refused, saying why."""
from __future__ import annotations

import json

from reconciler.labels import owner_selector

from ..waiting import wait_until
from .conftest import BASE_IMAGE
from .daemons import RunningDaemon
from .swarm import manager_swarm  # noqa: F401  (a module fixture)

APP = f"""
name: STACK
runtime: swarm
containers:
  web:
    image: {BASE_IMAGE}
    command: [sleep, "3600"]
    init: true
    stop_grace_period: 1s
    env: {{LEVEL: "LEVEL_VALUE"}}
"""


def _service(swarm, number: int, stack: str) -> dict:
    found = swarm.client(number).services(filters={"label": [owner_selector(stack)]})
    assert len(found) == 1, found
    return found[0]


def _env(service: dict) -> list[str]:
    return service["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env") or []


def test_the_daemon_fails_over_to_another_manager_and_updates_the_service_in_place(stack, manager_swarm, tmp_path):
    first, second, third = manager_swarm.numbers
    source = tmp_path / "stacks"
    (source / "app").mkdir(parents=True)
    spec = source / "app" / "stack.yaml"
    spec.write_text(APP.replace("STACK", stack.name).replace("LEVEL_VALUE", "one"))
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({
        "state_dir": str(tmp_path / "state"), "resync": 300,
        "sources": [{"name": "local", "dir": str(source), "paths": ["app"]}],
        "engine": [manager_swarm.url(n) for n in (first, second, third)],
    }))
    daemon = RunningDaemon(config)
    try:
        daemon.wait_for(lambda line: line.get("path") == "app" and line.get("ok"), timeout=120)
        before = _service(manager_swarm, second, stack.name)
        assert "LEVEL=one" in _env(before)

        manager_swarm.stop(first)  # the manager the daemon used
        wait_until(lambda: manager_swarm.has_leader(second), 90, "the other managers to elect a leader")
        mark = daemon.mark()
        spec.write_text(APP.replace("STACK", stack.name).replace("LEVEL_VALUE", "two"))
        daemon.wait_for(lambda line: line.get("path") == "app" and line.get("ok")
                        and (line.get("report") or {}).get("changes"), timeout=120, after=mark)
        after = _service(manager_swarm, second, stack.name)
        assert after["ID"] == before["ID"] and "LEVEL=two" in _env(after)  # updated in place, one record
        log = "".join(daemon.text)
        # Which other manager: the engine's event stream breaks when the first stops, and the daemon opens the
        # engine again at once, while the swarm may still be electing a leader and the second manager's /info
        # may not answer in time; either of the others is the same swarm.
        assert any(f"using {manager_swarm.url(n)}, a manager of the same swarm" in log for n in (second, third)), log
        assert "record does not list it" not in log and "adopt" not in log
    finally:
        assert daemon.stop() == 0

    # While the first manager is down: a list that would fail over to an engine outside the swarm is
    # refused, saying why, and nothing is applied there.
    refused = stack.cli("plan", "-f", str(spec), "--engine", f"{manager_swarm.url(first)},unix:///var/run/docker.sock")
    assert refused.code == 1
    assert "unix:///var/run/docker.sock: not a manager of a swarm" in refused.err, refused.err
    client = manager_swarm.client(second)
    for service in client.services(filters={"label": [owner_selector(stack.name)]}):
        client.remove_service(service["ID"])
