"""The kit's context as a run's: ``progress`` is set and collects lines; the kit imports without pytest."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]


def test_the_kits_context_collects_progress_lines(driver_context, unreachable_context, progress_lines):
    driver_context.progress("web", "pulling fs layer")
    unreachable_context.progress("web", "done")
    assert progress_lines.lines == [("web", "pulling fs layer"), ("web", "done")]
    assert progress_lines.of("web") == ["pulling fs layer", "done"] and progress_lines.of("db") == []
    with pytest.raises(TypeError, match=r"progress takes \(name: str, line: str\)"):
        driver_context.progress("web", b"bytes")
    with pytest.raises(ValueError, match="one line at a time"):
        driver_context.progress("web", "one\ntwo")


REPORTS_PROGRESS = '''
import pytest
from reconciler.model import ImageSpec
from reconciler.testing import MemoryRegistryDriver, RegistryDriverContract


class Reports(MemoryRegistryDriver):
    def pull(self, spec):
        self.context.progress(spec.ref, "pulling")  # as a run's context allows
        super().pull(spec)


class TestReports(RegistryDriverContract):
    @pytest.fixture
    def driver(self, driver_context, memory_engine):
        return Reports(memory_engine, driver_context)

    @pytest.fixture
    def spec(self, unique_name):
        return ImageSpec(key="app", ref=f"registry.test/{unique_name}:1")

    def test_its_lines_are_collected(self, driver, spec, progress_lines):
        driver.pull(spec)
        assert progress_lines.of(spec.ref) == ["pulling"]
'''


def test_a_driver_reporting_progress_is_exercised_by_the_contract(pytester):
    pytester.makepyfile(test_reports=REPORTS_PROGRESS)
    result = pytester.inline_run("-p", "no:cacheprovider", "-p", "no:randomly")
    assert result.getfailures() == []
    passed, _, _ = result.listoutcomes()
    assert any(r.nodeid.endswith("test_its_lines_are_collected") for r in passed)
    assert any(r.nodeid.endswith("test_pull_then_observe_reports_it_by_ref") for r in passed)


def test_the_kit_imports_without_pytest_and_names_the_extra_for_the_contract():
    script = textwrap.dedent('''
        import sys
        sys.modules["pytest"] = None  # as if pytest were not installed
        import reconciler.testing as kit
        from reconciler.testing import MemoryEngine, make_reconciler
        make_reconciler(MemoryEngine())
        assert "StorageDriverContract" not in kit.__all__ and "MemoryEngine" in kit.__all__
        try:
            from reconciler.testing import StorageDriverContract
        except ImportError as exc:
            print(exc)
    ''')
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("reconciler.testing.StorageDriverContract is part of the pytest contract kit, "
                                   "and pytest is not installed: pip install 'reconciler[testing]'")
