"""Engine failures on the real engine, through a fault-injecting proxy: retry what is temporary."""
from __future__ import annotations

import pytest

from .faulty_engine import FaultyEngine

pytestmark = pytest.mark.engine

SPEC = """
name: STACK
containers:
  a:
    image: BASE
    command: ["sleep", "3600"]
    init: true
  b:
    image: BASE
    command: ["sleep", "3600"]
    init: true
"""


def test_temporary_5xx_is_retried_and_the_stack_converges(stack, tmp_path):
    stack.write(SPEC)
    with FaultyEngine(tmp_path / "engine.sock") as engine:
        engine.fail("POST", r"/containers/create\?name=" + stack.name + "-a-1", 503, 500)
        result = stack.apply("--engine", engine.url)
    assert result.code == 0, result.out + result.err
    assert [status for _, _, status in engine.injected] == [503, 500]
    assert {name for name, c in stack.containers().items() if c["State"] == "running"} == {
        f"{stack.name}-a-1", f"{stack.name}-b-1"}


def test_permanent_4xx_fails_that_change_only(stack, tmp_path):
    stack.write(SPEC)
    with FaultyEngine(tmp_path / "engine.sock") as engine:
        engine.fail("POST", r"/containers/create\?name=" + stack.name + "-a-1", 400, 400, 400)
        result = stack.apply("--engine", engine.url)
    assert result.code == 1
    assert len(engine.injected) == 1  # not retried
    assert "injected fault" in result.out
    assert set(stack.containers()) == {f"{stack.name}-b-1"}


def test_engine_that_keeps_failing_is_given_up_on(stack, tmp_path):
    stack.write(SPEC)
    with FaultyEngine(tmp_path / "engine.sock") as engine:
        engine.fail("GET", r"/containers/json", *([502] * 10))
        result = stack.apply("--engine", engine.url)
    assert result.code == 1
    assert 1 < len(engine.injected) < 10
    assert "injected fault" in result.err and "Traceback" not in result.err
    assert stack.containers() == {}


def test_create_whose_answer_was_lost_is_adopted_on_retry(stack, tmp_path):
    stack.write(SPEC)
    with FaultyEngine(tmp_path / "engine.sock") as engine:
        engine.lose_answer("POST", r"/containers/create\?name=" + stack.name + "-a-1", 502)
        result = stack.apply("--engine", engine.url)
    assert result.code == 0, result.out + result.err
    assert [status for _, _, status in engine.injected] == [502]
    assert {name for name, c in stack.containers().items() if c["State"] == "running"} == {
        f"{stack.name}-a-1", f"{stack.name}-b-1"}


def test_network_create_whose_answer_was_lost_is_adopted_on_retry(stack, tmp_path):
    stack.write(SPEC.replace("containers:", "networks:\n  back: {}\ncontainers:"))
    with FaultyEngine(tmp_path / "engine.sock") as engine:
        engine.lose_answer("POST", r"/networks/create", 503)
        result = stack.apply("--engine", engine.url)
    assert result.code == 0, result.out + result.err
    assert [status for _, _, status in engine.injected] == [503]
    # a and b name no network: they join the stack's default network, created beside back.
    assert stack.networks() == {f"{stack.name}_back", f"{stack.name}_default"}
