"""An engine that accepts connections and never answers (issue 21, §3): nothing hangs.

The first answer (``/info``, then observe's lists) must come within the engine
timeout (``--engine-timeout``, ``RECONCILER_ENGINE_TIMEOUT``, default 10 s); a
timeout is not retried at once, so the whole wait is that timeout, and the
error says what was waited for. In a fleet, such a target costs the others
nothing. Each command runs under a timeout of the test's own, so the old
behaviour (three tries of a 120 s read, several minutes) fails instead of
hanging the suite.
"""
from __future__ import annotations

import pytest

from .faulty_engine import FaultyEngine
from .tcp_relay import SilentEngine

pytestmark = pytest.mark.engine

ONE = """
name: STACK
containers:
  a:
    image: BASE
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
"""

FLEET = """
name: STACK
targets:
  here: {engine: "unix:///var/run/docker.sock"}
  dead: {engine: "URL"}
""" + ONE.replace("name: STACK", "")


def test_plan_against_an_engine_that_never_answers_fails_within_the_default_engine_timeout(stack):
    stack.write(ONE)
    with SilentEngine() as url:
        result, took = stack.cli_within(40, "plan", "--engine", url, env={"RECONCILER_ENGINE_TIMEOUT": ""})
    assert result.code == 1
    waiting, error = result.err.splitlines()  # what is waited for, while it is; then why it ended
    assert waiting.endswith(f"waiting for the engine at {url} to answer /info "
                            "(at most 10s: --engine-timeout, RECONCILER_ENGINE_TIMEOUT)"), result.err
    assert error == (f"error: the engine at {url} accepted the connection but did not answer /info within 10s "
                     "(the engine timeout: --engine-timeout, RECONCILER_ENGINE_TIMEOUT)"), result.err
    assert 9 < took < 15  # one wait of 10 s, not retried


def test_apply_against_an_engine_that_never_answers_fails_within_engine_timeout(stack):
    stack.write(ONE)
    with SilentEngine() as url:
        result, took = stack.cli_within(40, "apply", "--engine", url, "--engine-timeout", "2")
    assert result.code == 1
    assert f"the engine at {url} accepted the connection but did not answer /info within 2s" in result.err, result.err
    assert took < 7
    assert stack.containers() == {}


def test_the_engine_timeout_is_taken_from_the_environment(stack):
    stack.write(ONE)
    with SilentEngine() as url:
        result, took = stack.cli_within(40, "plan", "--engine", url, env={"RECONCILER_ENGINE_TIMEOUT": "1.5"})
    assert result.code == 1
    assert "did not answer /info within 1.5s" in result.err, result.err
    assert took < 6


def test_a_fleet_target_that_never_answers_costs_the_healthy_one_nothing(stack):
    with SilentEngine() as url:
        stack.write(FLEET.replace("URL", url))
        result, took = stack.cli_within(60, "apply", "--output", "json", env={"RECONCILER_ENGINE_TIMEOUT": ""})
    assert result.code == 1, result.err
    targets = {t["target"]: t for t in result.json()["targets"]}
    assert targets["here"]["state"] == "converged", targets["here"]
    assert targets["here"]["seconds"] < 8  # its own work only: it never waited for the dead one
    assert targets["dead"]["state"] == "unreachable"
    assert targets["dead"]["attempts"] == 1  # a timeout is not retried: the wait would only multiply
    assert "did not answer /info within 10s" in targets["dead"]["error"], targets["dead"]["error"]
    assert took < 20  # the timeout, plus the healthy target's own work
    assert {name for name, c in stack.containers().items() if c["State"] == "running"} == {f"{stack.name}-a-1"}


def test_a_list_of_observe_that_is_never_answered_fails_within_the_engine_timeout(stack, tmp_path):
    stack.write(ONE)
    with FaultyEngine(tmp_path / "engine.sock") as engine:
        engine.stall("GET", r"/containers/json", 60, 60, 60)
        result, took = stack.cli_within(60, "plan", "--engine", engine.url, "--engine-timeout", "2")
    assert result.code == 1
    assert "list containers: the engine accepted the connection but did not answer within 2s" in result.err, \
        result.err
    assert len(engine.injected) == 1  # not retried: the wait is the timeout, not three of them
    assert took < 8
