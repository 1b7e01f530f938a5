"""One way for a driver to check its part of a spec: the ``check`` it registers with, run at ``validate``
(at the entry's options, or at the container) and again by ``apply`` before any change, never making the driver."""
from __future__ import annotations

import textwrap

import pytest

from reconciler.errors import PlanError, SpecError
from reconciler.hookspecs import hookimpl
from reconciler.model import Kind
from reconciler.spec import load_desired
from reconciler.testing import MemoryRuntimeDriver, MemoryStorageDriver, make_reconciler

pytest_plugins = ["pytester"]


class _CheckingPlugin:
    """A ``ram`` volume driver that wants a ``size``, and a ``strict`` runtime that refuses privileged containers."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.made: list[str] = []
        self.checked: list[str] = []

    def _ram_check(self, spec):
        self.checked.append(spec.name)
        return [] if dict(spec.options).get("size") else ["size: the ram driver needs a size"]

    @staticmethod
    def _strict_check(spec):
        return ["privileged: the strict runtime runs nothing privileged"] if spec.privileged else []

    def _make(self, driver_class, context):
        self.made.append(driver_class.__name__)
        return driver_class(self.engine, context)

    @hookimpl
    def reconciler_register_drivers(self, registry):
        registry.add_storage_driver("ram", lambda context: self._make(MemoryStorageDriver, context),
                                    check=self._ram_check)
        registry.add_runtime_driver("strict", lambda context: self._make(MemoryRuntimeDriver, context),
                                    check=self._strict_check)


SPEC = """
    name: s
    runtime: strict
    volumes:
      data:
        driver: ram
        options: {colour: blue}
    containers:
      web: {image: 'base:1', privileged: true}
"""


@pytest.fixture
def checking(tmp_path, memory_engine):
    plugin = _CheckingPlugin(memory_engine)
    reconciler = make_reconciler(memory_engine, plugins={"checking": plugin})
    path = tmp_path / "stack.yaml"
    path.write_text(textwrap.dedent(SPEC).lstrip())
    return reconciler, plugin, path


def test_a_check_is_shown_at_the_options_or_at_the_container_without_making_a_driver(checking):
    reconciler, plugin, path = checking
    with pytest.raises(SpecError) as caught:
        load_desired([path], environ={}, drivers=reconciler.driver_catalog(),
                     check_options=reconciler.option_problems)
    text = str(caught.value)
    assert f"{path}:6:" in text and "volumes.data.options: size: the ram driver needs a size" in text
    assert f"{path}:8:" in text and "containers.web: privileged: the strict runtime runs nothing privileged" in text
    assert plugin.checked == ["s_data"] and plugin.made == []


def test_apply_runs_the_same_check_before_any_change(checking, memory_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("RECONCILER_LOCK_DIR", str(tmp_path))
    reconciler, plugin, path = checking
    desired = load_desired([path], environ={}, drivers=reconciler.driver_catalog())  # its checks not run
    assert reconciler.registry.spec_problems(Kind.VOLUME, "ram", desired.volumes["data"]) == [
        "size: the ram driver needs a size"]
    with pytest.raises(PlanError) as caught:
        reconciler.apply(desired)
    assert str(caught.value).splitlines() == [
        "invalid driver options, nothing was changed:",
        "  volumes.data.options: size: the ram driver needs a size",
        "  containers.web: privileged: the strict runtime runs nothing privileged",
    ]
    assert not [call for call in memory_engine.calls if call[0] != "observe"]


KIT = '''
import pytest
from reconciler.testing import MemoryEngine, MemoryStorageDriver, StorageDriverContract


class ForgetsTheId(MemoryStorageDriver):
    def create(self, spec, labels):
        super().create(spec, labels)


class TestForgetsTheId(StorageDriverContract):
    driver_name = "memory"

    @pytest.fixture
    def driver(self, driver_context):
        return ForgetsTheId(MemoryEngine(), driver_context)
'''


def test_the_kit_fails_a_driver_whose_create_returns_no_id(pytester):
    pytester.makepyfile(test_forgets=KIT)
    reprec = pytester.inline_run("-p", "no:cacheprovider", "-p", "no:randomly")
    failed = {report.nodeid.split("::", 1)[1] for report in reprec.getfailures() if report.when == "call"}
    assert failed == {"TestForgetsTheId::test_create_returns_the_id_observe_reports"}
