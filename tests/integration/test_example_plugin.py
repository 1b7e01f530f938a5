"""The example out-of-tree plugin, installed with pip and used end to end against the real engine.

It is installed into a folder of its own (``pip install --target``) that only
this module's subprocesses see on ``PYTHONPATH``: an install into the shared
environment would leak the plugin into test runs happening at the same time.
Deleting that folder at teardown is the uninstall.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest

from reconciler.labels import DRIVER

from ..waiting import wait_until
from .conftest import REPO

pytestmark = pytest.mark.engine

EXAMPLE = REPO / "examples" / "plugins" / "reconciler_ramdisk"

SPEC = """
name: STACK
volumes:
  scratch: {driver: ramdisk, options: {size: 8m}}
containers:
  job:
    image: BASE
    command: ["sh", "-c", "echo hi > /scratch/f && exec sleep 3600"]
    init: true
    volumes: ["scratch:/scratch"]
    stop_grace_period: 1s
"""


def _offline_build_possible() -> bool:
    """--no-build-isolation needs setuptools and, before setuptools 70.1, the wheel package."""
    if importlib.util.find_spec("setuptools") is None:
        return False
    import setuptools

    major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


def _pythonpath(*folders) -> dict[str, str]:
    inherited = [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []
    return {"PYTHONPATH": os.pathsep.join([*map(str, folders), *inherited])}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """The environment under which the installed plugin is visible."""
    # Building in a copy: pip builds in the source tree, leaving build/ and *.egg-info behind.
    source = tmp_path_factory.mktemp("ramdisk-src") / "reconciler_ramdisk"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp("ramdisk-site")
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target)]
    if _offline_build_possible():
        command.append("--no-build-isolation")
    proc = subprocess.run([*command, str(source)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield _pythonpath(target)
    shutil.rmtree(target, ignore_errors=True)


def test_plugins_list_shows_it(stack, installed):
    listed = stack.cli("plugins", "list", "--output", "json", spec=False, env=installed)
    assert listed.code == 0, listed.err
    row = next(row for row in listed.json() if row["name"] == "ramdisk")
    assert (row["distribution"], row["version"]) == ("reconciler-ramdisk", "0.1.0")
    assert row["drivers"] == ["storage:ramdisk"]
    assert row["hooks"] == ["reconciler_register_drivers"]


def test_apply_creates_a_tmpfs_volume_and_a_second_apply_writes_nothing(stack, installed):
    stack.write(SPEC)
    first = stack.apply(env=installed)
    assert first.code == 0, first.out + first.err

    volume = stack.engine.inspect_volume(f"{stack.name}_scratch")
    assert volume["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=8m"}
    assert volume["Labels"][DRIVER] == "ramdisk"
    container = f"{stack.name}-job-1"
    assert stack.containers()[container]["State"] == "running"
    assert "tmpfs /scratch tmpfs" in stack.exec(container, "cat", "/proc/mounts")
    written = wait_until(lambda: stack.exec(container, "cat", "/scratch/f"), 10, "the file in the ramdisk", step=0.2)
    assert written == "hi\n"

    second = stack.apply("--output", "json", env=installed)
    assert second.code == 0, second.err
    report = second.json()
    assert report["changes"] == []
    assert report["engine_calls"]["write"] == 0


def test_without_the_plugin_a_spec_naming_it_is_refused(stack, installed):
    stack.write(SPEC)
    for env in ({}, {**installed, "RECONCILER_DISABLED_PLUGINS": "ramdisk"}):
        refused = stack.cli("plan", env=env)
        assert refused.code == 1, refused.out
        found = re.search(r"volumes\.scratch\.driver: .*'ramdisk' \(available: ([^)]*)\)", refused.err)
        assert found, refused.err
        assert "local" in found[1].split(", ") and "ramdisk" not in found[1], refused.err


def test_a_plugin_module_loads_without_packaging(stack):
    stack.write(SPEC)
    source = _pythonpath(EXAMPLE)
    for args, env in ((["--plugin", "reconciler_ramdisk"], source),
                      ([], {**source, "RECONCILER_PLUGINS": "reconciler_ramdisk"})):
        planned = stack.cli("plan", "--output", "json", *args, env=env)
        assert planned.code == 0, planned.err
        volumes = [c for c in planned.json()["changes"] if c["kind"] == "volume"]
        assert [(c["action"], c["name"]) for c in volumes] == [("create", f"{stack.name}_scratch")]


def test_its_own_contract_tests_pass(installed):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "examples/plugins/reconciler_ramdisk/tests"],
        cwd=REPO, env={**os.environ, **installed}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout
