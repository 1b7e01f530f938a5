"""Typed driver options: each driver's JSON Schema joins validation, so a bad option fails ``validate`` and
``plan`` at its file and line, before any engine is reached; ``reconcile schema`` prints the merged schema."""
from __future__ import annotations

import json
import textwrap

import pytest

from reconciler.cli import main

PLUGIN = '''
from reconciler.drivers import StorageDriver
from reconciler.hookspecs import hookimpl

RECONCILER_API_VERSION = 2


class RamStore(StorageDriver):
    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["size"],
        "properties": {
            "size": {"type": "string", "pattern": "^[0-9]+[kmg]$", "description": "A size like 64m"},
            "copies": {"type": "integer", "minimum": 1, "x-reconciler-change": "in-place"},
            "token": {"type": "string", "minLength": 20, "writeOnly": True},
        },
    }

    def __init__(self, context):
        self.context = context

    def observe(self, stack, wanted):
        return []

    def create(self, spec, labels):
        return spec.name

    def delete(self, live):
        pass


@hookimpl
def reconciler_register_drivers(registry):
    registry.add_storage_driver("ram", RamStore)
    registry.add_registry_driver("mirror", lambda context: None,
                                 schema={"type": "object", "properties": {"host": {"type": "string"}},
                                         "additionalProperties": False})
    registry.add_network_driver("broken-schema", lambda context: None, schema={"type": "no-such-type"})
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("RECONCILER_STRICT_PLUGINS", raising=False)
    (tmp_path / "ram_options_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "ram_options_plugin"


def write(path, text):
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_a_bad_option_is_a_located_error_at_validate(tmp_path, plugin, capsys):
    spec = write(tmp_path / "stack.yaml", """
        name: s
        images:
          app: {ref: "example.org/app:1", driver: mirror, options: {hots: x}}
        volumes:
          data:
            driver: ram
            options: {size: lots, copies: 0, token: short-secret-value}
          fine: {driver: ram, options: {size: 64m, copies: 2}}
    """)
    assert main(["validate", "-f", str(spec), "--plugin", plugin]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:3:" in err and "images.app.options.hots: the registry driver 'mirror' has no option 'hots' " \
                                    "(expected one of: host)" in err
    assert f"{spec}:7:" in err and "volumes.data.options.size: expected a size like 64m, got 'lots'" in err
    assert "volumes.data.options.copies: expected a number >= 1, got 0" in err
    assert "volumes.data.options.token: invalid value (not shown: the option is write-only)" in err
    assert "short-secret-value" not in err
    assert "volumes.fine" not in err


def test_a_missing_required_option_and_typed_values(tmp_path, plugin, capsys):
    spec = write(tmp_path / "stack.yaml", """
        name: s
        volumes:
          data: {driver: ram, options: {copies: "2"}}
    """)
    assert main(["validate", "-f", str(spec), "--plugin", plugin]) == 1
    err = capsys.readouterr().err
    assert "volumes.data.options: missing required field 'size'" in err
    assert "volumes.data.options.copies: expected an integer, got a string" in err


def test_plan_refuses_a_bad_option_before_reaching_any_engine(tmp_path, plugin, capsys):
    spec = write(tmp_path / "stack.yaml", """
        name: s
        volumes:
          data: {driver: ram, options: {size: 64m, colour: blue}}
    """)
    # Nothing listens on port 9: had the plan reached for the engine, the error would say so.
    assert main(["plan", "-f", str(spec), "--plugin", plugin, "--engine", "tcp://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:3:" in err and "the storage driver 'ram' has no option 'colour'" in err
    assert "127.0.0.1" not in err


def test_a_spec_known_valid_is_checked_again_when_a_plugin_brings_a_schema(tmp_path, plugin, capsys):
    spec = write(tmp_path / "stack.yaml", """
        name: s
        images:
          app: {ref: "example.org/app:1", options: {mirror: x}}
    """)
    assert main(["validate", "-f", str(spec), "--plugin", plugin]) == 1  # the docker registry driver takes none
    assert "the registry driver 'docker' has no option 'mirror' (it takes none)" in capsys.readouterr().err
    assert main(["validate", "-f", str(spec), "--plugin", plugin]) == 1, "a failure must not be remembered"


def test_a_plugin_with_a_broken_schema_is_named(tmp_path, plugin, capsys):
    spec = write(tmp_path / "stack.yaml", """
        name: s
        networks:
          back: {driver: broken-schema}
    """)
    assert main(["validate", "-f", str(spec), "--plugin", plugin]) == 1
    err = capsys.readouterr().err
    assert "networks.back.options: the network driver 'broken-schema' declares an invalid options schema" in err


def test_image_options_reach_the_image_spec(tmp_path, plugin):
    from reconciler.reconcile import Reconciler
    from reconciler.spec import load_desired

    reconciler = Reconciler(plugin_modules=[plugin])
    spec = write(tmp_path / "stack.yaml", """
        name: s
        images:
          app: {ref: "example.org/app:1", driver: mirror, options: {host: mirror.local}}
    """)
    desired = load_desired([spec], drivers=reconciler.driver_catalog())
    assert desired.images["app"].options == (("host", "mirror.local"),)


def test_schema_command_prints_the_stack_schema_with_each_drivers_options(tmp_path, plugin, capsys):
    import jsonschema
    import yaml

    assert main(["schema", "--plugin", plugin]) == 0
    schema = json.loads(capsys.readouterr().out)
    validator = jsonschema.Draft202012Validator(schema)

    def errors(text):
        return [e.message for e in validator.iter_errors(yaml.safe_load(textwrap.dedent(text)))]

    assert errors("volumes: {d: {driver: ram, options: {size: 64m}}}") == []
    assert errors("volumes: {d: {driver: ram, options: {size: lots}}}")
    assert errors("volumes: {d: {options: {devce: tmpfs}}}"), "an entry without driver: gets local's options"
    assert errors("volumes: {d: {options: {type: tmpfs, device: tmpfs, o: size=1m}}}") == []
    assert errors("images: {a: {ref: x, options: {any: thing}}}"), "docker images take no options"
    assert errors("images: {a: {ref: x, driver: mirror, options: {host: h}}}") == []


# -- options changed in place or forcing a replacement, against the in-memory engine ------------------


class _InPlacePlugin:
    """A ``ram`` storage driver (the memory engine's) whose ``copies`` option changes in place."""

    SCHEMA = {"type": "object", "additionalProperties": False,
              "properties": {"size": {"type": "string"},
                             "copies": {"type": "integer", "x-reconciler-change": "in-place"}}}

    def __init__(self, engine):
        self.engine = engine

    @__import__("reconciler.hookspecs").hookspecs.hookimpl
    def reconciler_register_drivers(self, registry):
        from reconciler.testing import MemoryStorageDriver

        registry.add_storage_driver("ram", lambda context: MemoryStorageDriver(self.engine, context),
                                    schema=self.SCHEMA)


def _apply(tmp_path, reconciler, text):
    from reconciler.spec import load_desired

    spec = write(tmp_path / "stack.yaml", text)
    desired = load_desired([spec], drivers=reconciler.driver_catalog())
    return desired, reconciler.plan(desired)[0]


def test_an_in_place_option_is_an_update_and_others_force_a_replacement(tmp_path, monkeypatch, memory_engine):
    from reconciler.plan import Action, Reason
    from reconciler.render import plan_text
    from reconciler.testing import make_reconciler

    monkeypatch.setenv("RECONCILER_LOCK_DIR", str(tmp_path))
    reconciler = make_reconciler(memory_engine, plugins={"ram": _InPlacePlugin(memory_engine)})
    first, _ = _apply(tmp_path, reconciler, "name: s\nvolumes:\n  data: {driver: ram, options: {size: 1m, copies: 1}}\n")
    reconciler.apply(first)
    volume_id = memory_engine.volumes["s_data"].id

    desired, plan = _apply(tmp_path, reconciler,
                           "name: s\nvolumes:\n  data: {driver: ram, options: {size: 1m, copies: 3}}\n")
    (change,) = plan.changes
    assert (change.action, change.reason, change.blocked) == (Action.UPDATE, Reason.OPTIONS_CHANGED, "")
    assert "~ volume s_data" in plan_text(plan) and "options changed in place: options.copies" in plan_text(plan)
    del memory_engine.calls[:]
    report = reconciler.apply(desired)
    assert report.ok
    assert [c for c in memory_engine.calls if c[0] != "observe"] == [("update-volume", "s_data")]
    assert memory_engine.volumes["s_data"].id == volume_id, "an in-place change keeps the object"
    assert reconciler.plan(desired)[0].empty, "after the update, the live config hash is the desired one"

    _, plan = _apply(tmp_path, reconciler, "name: s\nvolumes:\n  data: {driver: ram, options: {size: 2m, copies: 4}}\n")
    (change,) = plan.changes
    assert change.action is Action.REPLACE and change.forced_by == ("options.size",)
    assert "options.size (forces replacement); options.copies could change in place" in change.reasons[0]
    assert change.blocked, "replacing a volume still needs --recreate-volumes"
