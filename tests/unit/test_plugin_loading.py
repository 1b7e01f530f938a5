"""One broken plugin is contained: named, skipped with a warning, shown by ``plugins list``; strict makes it an error.

Installed plugins are faked the way Python finds real ones: a ``*.dist-info``
folder with an ``entry_points.txt`` on ``sys.path``, beside the plugin's module.
"""
from __future__ import annotations

import json
import logging
import textwrap
import uuid

import pytest

from reconciler.cli import main
from reconciler.errors import PluginError
from reconciler.plugins import PluginState, load_driver_registry, make_plugin_manager

GOOD = """
from reconciler.hookspecs import hookimpl

RECONCILER_API_VERSION = 2

@hookimpl
def reconciler_register_drivers(registry):
    registry.add_storage_driver("{driver}", lambda context: None)
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    """Install fake distributions: ``site(dist, entry_point, module, source)``."""
    monkeypatch.delenv("RECONCILER_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("RECONCILER_DISABLED_PLUGINS", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))

    def install(dist: str, entry_point: str, module: str, source: str) -> None:
        module = f"{module}_{uuid.uuid4().hex[:8]}"  # a fresh import each test: sys.modules remembers
        info = tmp_path / f"{dist.replace('-', '_')}-1.2.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2\n")
        (info / "entry_points.txt").write_text(f"[reconciler]\n{entry_point} = {module}\n")
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))

    return install


def _unloaded(pm, name):
    return pm.unloaded[name]


@pytest.mark.parametrize("source, reason", [
    ("import no_such_sdk_xyz\n", "failed to import: ModuleNotFoundError: No module named 'no_such_sdk_xyz'"),
    ("import sys\nsys.exit(3)\n", "failed to import: it called sys.exit(3)"),
    ("RECONCILER_API_VERSION = 99\n", "needs plugin API version 99, but this reconciler speaks plugin API version 2 "
                                      "only: upgrade reconciler"),
    ("RECONCILER_API_VERSION = 1\n", "written for plugin API version 1, but this reconciler speaks plugin API "
                                     "version 2 only: upgrade the plugin"),
    ("from reconciler.hookspecs import hookimpl\n", "declares no RECONCILER_API_VERSION: this reconciler speaks "
                                                    "plugin API version 2 only"),
    ("from reconciler.hookspecs import hookimpl\nRECONCILER_API_VERSION = 2\n"
     "@hookimpl\ndef reconciler_plan_redy(plan):\n    pass\n", "implements unknown hook 'reconciler_plan_redy'"),
])
def test_a_broken_installed_plugin_is_named_and_skipped_and_the_rest_load(site, caplog, source, reason):
    site("acme-broken", "broken", "acme_broken_plugin", source)
    site("acme-good", "good", "acme_good_plugin", GOOD.format(driver="good-store"))
    with caplog.at_level(logging.WARNING, logger="reconciler.plugins"):
        pm = make_plugin_manager()
    status = _unloaded(pm, "broken")
    assert status.state is PluginState.FAILED and reason in status.reason
    assert (status.distribution, status.version) == ("acme-broken", "1.2")
    assert not pm.has_plugin("broken") and pm.has_plugin("good") and pm.has_plugin("docker")
    assert "plugin 'broken' (acme-broken 1.2)" in caplog.text and "skipped" in caplog.text
    assert "good-store" in load_driver_registry(pm).names(__import__("reconciler.model").model.Kind.VOLUME)


def test_strict_mode_makes_a_broken_plugin_an_error(site, monkeypatch):
    site("acme-broken", "broken", "acme_broken_plugin", "raise RuntimeError('half-installed')\n")
    with pytest.raises(PluginError, match=r"plugin 'broken' \(acme-broken 1.2\) failed to import: RuntimeError: "
                                          r"half-installed"):
        make_plugin_manager(strict=True)
    monkeypatch.setenv("RECONCILER_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="half-installed"):
        make_plugin_manager()


def test_a_plugin_failing_to_register_drivers_is_skipped_whole(site):
    site("acme-half", "half", "acme_half_plugin", """
        from reconciler.hookspecs import hookimpl

        RECONCILER_API_VERSION = 2

        @hookimpl
        def reconciler_register_drivers(registry):
            registry.add_storage_driver("half-store", lambda context: None)
            raise ImportError("no module named fancy_sdk")
    """)
    pm = make_plugin_manager()
    registry = load_driver_registry(pm)
    from reconciler.model import Kind

    assert "half-store" not in registry.names(Kind.VOLUME), "a plugin failing half-way must leave nothing behind"
    assert "local" in registry.names(Kind.VOLUME)
    assert "failed to register its drivers: no module named fancy_sdk" in _unloaded(pm, "half").reason
    with pytest.raises(PluginError, match="fancy_sdk"):
        load_driver_registry(make_plugin_manager(strict=True))


def test_plugins_list_shows_failed_disabled_and_conflicting_plugins(site, monkeypatch, capsys, caplog):
    site("acme-broken", "broken", "acme_broken_plugin", "import sys\nsys.exit('no licence')\n")
    site("nfs-one", "nfs-one", "acme_nfs_one", GOOD.format(driver="nfs"))
    site("nfs-two", "nfs-two", "acme_nfs_two", GOOD.format(driver="nfs"))
    monkeypatch.setenv("RECONCILER_DISABLED_PLUGINS", "notify,no-such-plugin")
    with caplog.at_level(logging.WARNING, logger="reconciler.plugins"):
        assert main(["plugins", "list", "--output", "json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["broken"]["state"] == "failed" and "sys.exit('no licence')" in rows["broken"]["reason"]
    assert rows["broken"]["distribution"] == "acme-broken"
    assert rows["notify"]["state"] == "disabled" and rows["notify"]["distribution"] == "reconciler"
    assert rows["notify"]["module"] is None
    assert "RECONCILER_DISABLED_PLUGINS names 'no-such-plugin', but no plugin has that name" in caplog.text
    for name in ("nfs-one", "nfs-two"):
        assert rows[name]["state"] == "loaded" and rows[name]["drivers"] == ["storage:nfs"]
        assert rows[name]["conflicts"] == ["storage driver 'nfs' is registered twice: by nfs-one and by nfs-two"]
    assert rows["docker"]["state"] == "loaded" and rows["docker"]["conflicts"] == []

    assert main(["plugins", "list"]) == 0
    text = capsys.readouterr().out
    assert "broken  (acme-broken 1.2)  FAILED: failed to import: it called sys.exit('no licence')" in text
    assert "notify  (reconciler 0.1.0)  DISABLED: disabled by RECONCILER_DISABLED_PLUGINS" in text
    assert "CONFLICT: storage driver 'nfs' is registered twice" in text

    assert main(["plugins", "list", "--strict-plugins"]) == 1
    assert "sys.exit('no licence')" in capsys.readouterr().err


def test_a_driver_name_two_plugins_claim_fails_only_a_spec_using_it(site, tmp_path, capsys):
    site("nfs-one", "nfs-one", "acme_nfs_one", GOOD.format(driver="nfs"))
    site("nfs-two", "nfs-two", "acme_nfs_two", GOOD.format(driver="nfs"))
    fine = tmp_path / "fine.yaml"
    fine.write_text("name: s\nvolumes:\n  data: {}\n")
    assert main(["validate", "-f", str(fine)]) == 0
    capsys.readouterr()
    clash = tmp_path / "clash.yaml"
    clash.write_text("name: s\nvolumes:\n  data:\n    driver: nfs\n")
    assert main(["validate", "-f", str(clash)]) == 1
    err = capsys.readouterr().err
    assert f"{clash}:4:" in err and "volumes.data.driver" in err
    assert "storage driver 'nfs' is registered twice: by nfs-one and by nfs-two" in err
    assert "Traceback" not in err


def test_a_conflicting_name_is_an_error_when_a_driver_is_made_not_when_registering(site):
    from reconciler.drivers import DriverContext
    from reconciler.model import Kind

    site("nfs-one", "nfs-one", "acme_nfs_one", GOOD.format(driver="nfs"))
    site("nfs-two", "nfs-two", "acme_nfs_two", GOOD.format(driver="nfs"))
    registry = load_driver_registry(make_plugin_manager())
    drivers = registry.instantiate(DriverContext(stack="s"))
    with pytest.raises(PluginError, match="storage driver 'nfs' is registered twice: by nfs-(one|two) and by "
                                          "nfs-(one|two)"):
        drivers.get(Kind.VOLUME, "nfs")
    assert "nfs" not in registry.usable_names(Kind.VOLUME)
    with pytest.raises(PluginError, match="registered twice"):
        load_driver_registry(make_plugin_manager(strict=True))


def test_a_driver_wraps_another_plugins_driver_by_name_whatever_order_they_register_in():
    from reconciler.drivers import DriverContext, DriverRegistry
    from reconciler.model import Kind

    registry = DriverRegistry()
    wrapper = registry.view("sandbox")
    inner = wrapper.lookup(Kind.CONTAINER, "docker")  # before the docker plugin registered it
    wrapper.add_runtime_driver("sandbox", lambda context: ("wrapped", inner(context)))
    wrapper.add_runtime_driver("orphan", wrapper.lookup(Kind.CONTAINER, "nobody"))
    registry.view("docker").add_runtime_driver("docker", lambda context: ("docker", context.stack))
    drivers = registry.instantiate(DriverContext(stack="s"))
    assert drivers.get(Kind.CONTAINER, "sandbox") == ("wrapped", ("docker", "s"))
    with pytest.raises(PluginError, match="no runtime driver named 'nobody'"):
        drivers.get(Kind.CONTAINER, "orphan")


def test_a_module_an_entry_point_loaded_may_be_named_again() -> None:
    """RECONCILER_PLUGINS=reconciler_docker where the distribution is installed: loaded once, no error."""
    from reconciler.plugins import make_plugin_manager

    pm = make_plugin_manager(modules=["reconciler_docker"])
    import reconciler_docker

    assert pm.is_registered(reconciler_docker)
    assert pm.get_plugin("docker") is reconciler_docker and not pm.has_plugin("reconciler_docker")  # once
