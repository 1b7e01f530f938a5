"""The out-of-tree example plugins of each role (registry, network, runtime), installed with pip, run through
their own contract tests and one real apply together. (The storage example has test_example_plugin.py.)

They are installed into a folder of their own (``pip install --target``) that only this module's
subprocesses see on ``PYTHONPATH``, so runs happening at the same time do not load them.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from .conftest import BASE_IMAGE, REPO
from .test_example_plugin import _offline_build_possible, _pythonpath

pytestmark = pytest.mark.engine

EXAMPLES = {name: REPO / "examples" / "plugins" / f"reconciler_{name}" for name in ("localtag", "isolated", "sandbox")}

SPEC = """
name: STACK
runtime: sandbox
images:
  app: {ref: "STACK-app:1", driver: localtag, options: {from: "BASE"}}
networks:
  back: {driver: isolated, options: {mtu: 1400}}
containers:
  job:
    image: app
    command: ["sleep", "3600"]
    init: true
    networks: [back]
    stop_grace_period: 1s
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """The environment under which the installed examples are visible."""
    sources = []
    for name, folder in EXAMPLES.items():
        copy = tmp_path_factory.mktemp(f"{name}-src") / folder.name
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        sources.append(str(copy))
    target = tmp_path_factory.mktemp("examples-site")
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target)]
    if _offline_build_possible():
        command.append("--no-build-isolation")
    proc = subprocess.run([*command, *sources], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield {**_pythonpath(target), "RECONCILER_STRICT_PLUGINS": "1"}
    shutil.rmtree(target, ignore_errors=True)


def test_plugins_list_shows_each_role(stack, installed):
    listed = stack.cli("plugins", "list", "--output", "json", spec=False, env=installed)
    assert listed.code == 0, listed.err
    rows = {row["name"]: row for row in listed.json()}
    assert rows["localtag"]["drivers"] == ["registry:localtag"]
    assert rows["isolated"]["drivers"] == ["network:isolated"]
    assert rows["sandbox"]["drivers"] == ["runtime:sandbox"]
    assert {rows[name]["api_version"] for name in EXAMPLES} == {2}
    assert {rows[name]["state"] for name in EXAMPLES} == {"loaded"}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_its_own_contract_tests_pass(name, installed):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLES[name] / "tests")],
        cwd=REPO, env={**os.environ, **installed}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed" in proc.stdout and " failed" not in proc.stdout, proc.stdout


def test_a_stack_using_all_three_applies_converges_and_shows_their_details(stack, installed):
    stack.write(SPEC)
    try:
        first = stack.apply(env=installed)
        assert first.code == 0, first.out + first.err
        base = stack.engine.inspect_image(BASE_IMAGE)
        assert stack.engine.inspect_image(f"{stack.name}-app:1")["Id"] == base["Id"]
        network = stack.engine.inspect_network(f"{stack.name}_back")
        assert network["Internal"] is True and network["Options"] == {"com.docker.network.driver.mtu": "1400"}
        assert stack.containers()[f"{stack.name}-job-1"]["State"] == "running"

        second = stack.apply("--output", "json", env=installed)
        assert second.code == 0, second.err
        assert second.json()["changes"] == [] and second.json()["engine_calls"]["write"] == 0

        status = stack.cli("status", "--output", "json", env=installed)
        rows = {row["name"]: row for row in status.json()["objects"]}
        assert rows[f"{stack.name}-app:1"]["details"] == {"from": BASE_IMAGE}
        assert rows[f"{stack.name}_back"]["details"]["subnet"]
    finally:
        subprocess.run(["docker", "rmi", "-f", f"{stack.name}-app:1"], capture_output=True)


def test_bad_options_and_refused_containers_are_named(stack, installed):
    stack.write(SPEC.replace("mtu: 1400", "mtu: lots"))
    refused = stack.cli("validate", env=installed)
    assert refused.code == 1
    assert "stack.yaml:7:" in refused.err and "networks.back.options.mtu: expected an integer, got a string" in refused.err

    stack.write(SPEC.replace("init: true", "init: true\n    privileged: true"))
    try:
        result = stack.apply(env=installed)
        assert result.code == 1
        assert "the sandbox runtime refuses privileged: true" in result.out + result.err
        assert stack.containers() == {}
    finally:
        subprocess.run(["docker", "rmi", "-f", f"{stack.name}-app:1"], capture_output=True)
