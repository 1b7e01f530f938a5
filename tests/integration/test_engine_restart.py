"""A converged stack stays converged when the engine restarts: no spurious replace loop."""
from __future__ import annotations

import os
import subprocess

import pytest

from ..waiting import seconds_until
from .conftest import REPO

pytestmark = pytest.mark.engine

SPEC = """
name: STACK
networks:
  back: {ipam: {subnet: 172.31.240.0/24}}
volumes:
  data: {}
containers:
  db:
    image: BASE
    command: ["httpd", "-f", "-p", "5432", "-h", "/data"]
    init: true
    restart: unless-stopped
    networks: {back: {aliases: [database]}}
    volumes: ["data:/data"]
    ports: ["127.0.0.1::5432"]
    healthcheck: {test: ["CMD-SHELL", "nc -w 1 127.0.0.1 5432 </dev/null"], interval: 1s, retries: 20}
    memory: 64m
    cpus: 0.5
  web:
    image: BASE
    command: ["sleep", "3600"]
    init: true
    restart: always
    env: {A: "1"}
    networks: [back]
    depends_on: {db: {condition: healthy}}
"""


@pytest.mark.restarts_engine
@pytest.mark.skipif(not os.environ.get("RECONCILER_ENGINE_RESTARTABLE"),
                    reason="restarts the engine: only when scripts/test.sh started it (RECONCILER_ENGINE_RESTARTABLE=1)")
def test_stack_stays_converged_after_engine_restart(stack):
    stack.write(SPEC)
    assert stack.apply().code == 0
    ids = stack.container_ids()
    subprocess.run(["bash", str(REPO / "scripts/engine.sh"), "restart"], check=True)
    seconds_until(lambda: (states := [c["State"] for c in stack.containers().values()])
                  and all(s == "running" for s in states), 60, step=0.5)
    plan = stack.cli("plan", "--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err
    assert stack.container_ids() == ids
