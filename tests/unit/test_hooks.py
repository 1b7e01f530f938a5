"""Lifecycle hooks and plugin failures, with the in-memory engine of reconciler.testing standing in for Docker."""
from __future__ import annotations

import textwrap

import pluggy
import pytest

from reconciler import hookspecs
from reconciler.errors import PlanError, PluginError
from reconciler.hookspecs import hookimpl
from reconciler.model import ContainerSpec, DesiredState
from reconciler.plugins import make_plugin_manager
from reconciler.testing import MemoryEngine, MemoryRuntimeDriver, make_reconciler



def plugin_manager(*plugins):
    """A plugin manager with only ``plugins`` ((name, plugin) pairs) registered: nothing installed loads."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name, plugin in plugins:
        pm.register(plugin, name=name)
    return pm

def reconciler_with(*plugins):
    engine = MemoryEngine()
    return make_reconciler(engine, plugins=dict(plugins)), engine


def desired():
    spec = ContainerSpec(key="web", name="s-web-1", replica=1, image_key=None, image_ref="img:1")
    return DesiredState(stack="s", containers={spec.name: spec})


def writes(engine):
    return [c for c in engine.calls if c[0] in ("create", "start", "pull", "delete")]


def test_a_veto_refuses_the_plan_before_any_write(tmp_path, monkeypatch):
    monkeypatch.setenv("RECONCILER_LOCK_DIR", str(tmp_path))

    class Deny:
        @hookimpl
        def reconciler_plan_ready(self, plan, desired):
            return "no deploys on Fridays\nand not today either"

    reconciler, engine = reconciler_with(("friday", Deny()))
    with pytest.raises(PlanError) as caught:
        reconciler.apply(desired())
    assert "[friday] no deploys on Fridays" in str(caught.value)
    assert "[friday] and not today either" in str(caught.value)
    assert writes(engine) == []


def test_a_plugin_raising_in_plan_ready_is_named_and_nothing_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("RECONCILER_LOCK_DIR", str(tmp_path))

    class Broken:
        @hookimpl
        def reconciler_plan_ready(self, plan, desired):
            raise KeyError("boom")

    reconciler, engine = reconciler_with(("broken-policy", Broken()))
    with pytest.raises(PluginError, match="plugin 'broken-policy' failed in reconciler_plan_ready: KeyError"):
        reconciler.apply(desired())
    assert writes(engine) == []


def test_a_plugin_raising_after_a_change_lets_the_apply_finish_then_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("RECONCILER_LOCK_DIR", str(tmp_path))
    seen = []

    class Audit:
        @hookimpl
        def reconciler_after_change(self, change, outcome):
            raise RuntimeError("audit log is full")

        @hookimpl
        def reconciler_apply_finished(self, report):
            seen.append(report)

    reconciler, engine = reconciler_with(("audit", Audit()))
    with pytest.raises(PluginError, match="plugin 'audit' failed in reconciler_after_change: RuntimeError"):
        reconciler.apply(desired())
    assert ("start", "s-web-1") in engine.calls
    assert seen and seen[0].ok


def test_a_misspelled_hook_fails_loudly_at_start_up(tmp_path, monkeypatch):
    (tmp_path / "typo_plugin.py").write_text(textwrap.dedent("""
        from reconciler.hookspecs import hookimpl

        RECONCILER_API_VERSION = 2

        @hookimpl
        def reconciler_plan_redy(plan, desired):
            return None
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="reconciler_plan_redy"):
        make_plugin_manager(modules=["typo_plugin"])


def test_a_disabled_plugin_is_not_loaded(monkeypatch):
    monkeypatch.setenv("RECONCILER_DISABLED_PLUGINS", "docker")
    pm = make_plugin_manager()
    assert not pm.has_plugin("docker")
    assert pm.is_blocked("docker")


def test_two_plugins_registering_the_same_driver_name_is_a_clear_conflict():
    from reconciler.plugins import load_driver_registry

    class One:
        @hookimpl
        def reconciler_register_drivers(self, registry):
            registry.add_storage_driver("nfs", lambda ctx: None)

    class Two:
        @hookimpl
        def reconciler_register_drivers(self, registry):
            registry.add_storage_driver("nfs", lambda ctx: None)

    pm = plugin_manager(("nfs-one", One()), ("nfs-two", Two()))
    with pytest.raises(PluginError, match="storage driver 'nfs' is registered twice: by nfs-(one|two) and by nfs-(one|two)"):
        load_driver_registry(pm)


def test_a_plugin_raising_while_registering_drivers_is_named():
    from reconciler.plugins import load_driver_registry

    class Broken:
        @hookimpl
        def reconciler_register_drivers(self, registry):
            raise ImportError("no module named fancy_sdk")

    pm = plugin_manager(("fancy", Broken()))
    with pytest.raises(PluginError, match="plugin 'fancy' failed in reconciler_register_drivers: no module named"):
        load_driver_registry(pm)


def test_a_wrapper_plugin_wraps_the_verdict_and_does_not_veto(tmp_path, monkeypatch):
    """pluggy's wrappers work: a generator is not mistaken for a reason to refuse."""
    monkeypatch.setenv("RECONCILER_LOCK_DIR", str(tmp_path))
    seen = []

    class Timing:
        @hookimpl(wrapper=True)
        def reconciler_plan_ready(self, plan, desired):
            results = yield
            seen.append(list(results))
            return results

    class OldStyle:
        @hookimpl(hookwrapper=True)
        def reconciler_plan_ready(self, plan, desired):
            outcome = yield
            seen.append(outcome.get_result())

    class Allow:
        @hookimpl
        def reconciler_plan_ready(self, plan, desired):
            return None

    reconciler, engine = reconciler_with(("timing", Timing()), ("old-style", OldStyle()), ("allow", Allow()))
    report = reconciler.apply(desired())
    assert report.ok
    assert writes(engine)  # the apply went ahead
    assert seen and all(results == [] for results in seen)


def test_a_wrapper_can_still_veto_by_adding_a_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("RECONCILER_LOCK_DIR", str(tmp_path))

    class Deny:
        @hookimpl
        def reconciler_plan_ready(self, plan, desired):
            return "frozen"

    class Quiet:
        @hookimpl(wrapper=True)
        def reconciler_plan_ready(self, plan, desired):
            return (yield)

    reconciler, engine = reconciler_with(("quiet", Quiet()), ("deny", Deny()))
    with pytest.raises(PlanError, match=r"\[deny\] frozen"):
        reconciler.apply(desired())
    assert writes(engine) == []


def test_a_failing_wrapper_is_named_not_the_plugin_it_wraps(tmp_path, monkeypatch):
    monkeypatch.setenv("RECONCILER_LOCK_DIR", str(tmp_path))

    class Fine:
        @hookimpl
        def reconciler_after_change(self, change, outcome):
            pass

    class Broken:
        @hookimpl(wrapper=True)
        def reconciler_after_change(self, change, outcome):
            yield
            raise RuntimeError("audit log is full")

    reconciler, engine = reconciler_with(("fine", Fine()), ("audit", Broken()))
    with pytest.raises(PluginError, match="plugin 'audit' failed in reconciler_after_change: RuntimeError"):
        reconciler.apply(desired())
    assert writes(engine)  # the apply finished before the failure was raised


def test_each_plugin_registers_through_its_own_view():
    from reconciler.model import Kind
    from reconciler.plugins import load_driver_registry

    class One:
        @hookimpl
        def reconciler_register_drivers(self, registry):
            registry.add_storage_driver("nfs", lambda ctx: None)

    class Two:
        @hookimpl
        def reconciler_register_drivers(self, registry):
            registry.add_network_driver("vxlan", lambda ctx: None)

    pm = plugin_manager(("one", One()), ("two", Two()))
    registry = load_driver_registry(pm)
    assert registry.provider(Kind.VOLUME, "nfs") == "one"
    assert registry.provider(Kind.NETWORK, "vxlan") == "two"
    assert not hasattr(registry, "current_plugin")


def test_the_runtime_driver_is_the_one_the_stack_names(tmp_path, monkeypatch):
    """No driver name is special in the core: a stack runs on the runtime its spec names."""
    from reconciler.errors import SpecError
    from reconciler.spec import load_desired

    monkeypatch.setenv("RECONCILER_LOCK_DIR", str(tmp_path))
    engine = MemoryEngine()

    class Podman:
        @hookimpl
        def reconciler_register_drivers(self, registry):
            registry.add_runtime_driver("podman", lambda ctx: MemoryRuntimeDriver(engine, ctx))

    reconciler = make_reconciler(engine, plugins={"podman": Podman()})
    spec = tmp_path / "stack.yaml"
    spec.write_text("name: s\nruntime: podman\ncontainers:\n  web: {image: img:1}\n")
    desired_state = load_desired([spec], drivers=reconciler.driver_names())
    assert {c.driver for c in desired_state.containers.values()} == {"podman"}
    reconciler.apply(desired_state)
    assert ("create", "s-web-1") in [c[:2] for c in engine.calls]

    spec.write_text("name: s\nruntime: rkt\ncontainers:\n  web: {image: img:1}\n")
    with pytest.raises(SpecError, match=r"stack.yaml:2:\d+: runtime: no plugin provides the runtime driver 'rkt' "
                                        r"\(available: docker, podman\)"):
        load_desired([spec], drivers=reconciler.driver_names())


def test_default_drivers_come_from_one_table(tmp_path):
    """An archive image defaults to the archive driver at validate exactly as in the model."""
    from reconciler.errors import SpecError
    from reconciler.spec import load_desired

    spec = tmp_path / "stack.yaml"
    spec.write_text("name: s\nimages:\n  app: {ref: app:1, archive: ./app.tar}\n")
    only_docker = {"images": ["docker"], "networks": [], "volumes": [], "containers": ["docker"]}
    with pytest.raises(SpecError, match="no plugin provides the image driver 'archive'"):
        load_desired([spec], drivers=only_docker)


def test_hooks_are_told_whether_the_run_applies_or_destroys_and_old_signatures_still_work(tmp_path, monkeypatch):
    from reconciler.plan import Operation

    monkeypatch.setenv("RECONCILER_LOCK_DIR", str(tmp_path))
    seen = []

    class BlastRadius:
        """Refuses an apply that deletes anything; a destroy is what the user asked for."""

        @hookimpl
        def reconciler_plan_ready(self, plan, desired, operation):
            deletes = [c for c in plan.changes if c.action.value == "delete"]
            if operation is Operation.APPLY and deletes:
                return f"{len(deletes)} deletions"

        @hookimpl
        def reconciler_before_change(self, change, operation):
            seen.append(("before", change.name, operation))

        @hookimpl
        def reconciler_after_change(self, outcome, operation):
            seen.append(("after", outcome.change.name, operation))

        @hookimpl
        def reconciler_apply_finished(self, report, operation):
            seen.append(("finished", report.stack, operation))

    class OldStyle:
        """Written before ``operation`` existed: still called, with what it names."""

        @hookimpl
        def reconciler_plan_ready(self, plan):
            seen.append(("old", len(plan.changes)))

    reconciler, engine = reconciler_with(("blast", BlastRadius()), ("old", OldStyle()))
    reconciler.apply(desired())
    assert ("before", "s-web-1", Operation.APPLY) in seen and ("finished", "s", Operation.APPLY) in seen
    with pytest.raises(PlanError, match=r"\[blast\] 1 deletions"):
        reconciler.apply(DesiredState(stack="s"), __import__("reconciler.reconcile").reconcile.ApplyRequest(
            allow_empty=True))
    assert ("start", "s-web-1") in engine.calls and ("delete", "s-web-1") not in engine.calls
    seen.clear()
    reconciler.destroy("s")
    assert ("delete", "s-web-1") in engine.calls
    assert ("after", "s-web-1", Operation.DESTROY) in seen and ("finished", "s", Operation.DESTROY) in seen
    assert ("old", 1) in seen
