"""One rule for stack names (name:, the directory, --stack) and engine names the engine can take."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.names import MAX_STACK_NAME, STACK_NAME_PATTERN

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "stack.schema.json"


def spec_in(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "stack.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("command", [["validate"], ["plan"], ["status"], ["destroy"], ["apply"]])
@pytest.mark.parametrize("bad", ["../../../tmp/x", "bad/../name", "Upper", "a" * (MAX_STACK_NAME + 1)])
def test_stack_flag_answers_to_the_name_rule(tmp_path, capsys, command, bad):
    spec = spec_in(tmp_path / "shop", "containers: {web: {image: 'x:1'}}\n")
    engine = [] if command == ["validate"] else ["--engine", f"unix://{tmp_path}/no-engine.sock"]
    assert main([*command, "-f", str(spec), "--stack", bad, *engine]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --stack: invalid stack name "), err
    assert "Traceback" not in err
    assert not (tmp_path / "tmp").exists()


def test_an_over_long_name_is_a_located_error_not_a_traceback(tmp_path, capsys):
    spec = spec_in(tmp_path / "shop", "# a long name\nname: " + "a" * 300 + "\ncontainers: {web: {image: 'x:1'}}\n")
    assert main(["validate", "-f", str(spec)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {spec}:2:7: name: "), err
    assert "63" in err and "Traceback" not in err


def test_a_name_made_from_the_directory_answers_to_the_same_rule(tmp_path, capsys):
    spec = spec_in(tmp_path / ("Shop" * 20), "containers: {web: {image: 'x:1'}}\n")
    assert main(["validate", "-f", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"error: {spec}: invalid stack name 'shopshop" in err
    assert "at most 63" in err and "set name: in the spec or pass --stack" in err


def test_a_name_made_from_the_directory_keeps_only_the_allowed_characters(tmp_path, capsys):
    spec = spec_in(tmp_path / "Café Shop", "containers: {web: {image: 'x:1'}}\n")
    assert main(["validate", "-f", str(spec)]) == 0
    assert "valid stack 'cafshop'" in capsys.readouterr().out


def test_a_key_too_long_for_the_engine_names_its_line(tmp_path, capsys):
    key = "k" * 250
    spec = spec_in(tmp_path / "shop", f"name: shop\nnetworks:\n  back: {{}}\ncontainers:\n  {key}:\n"
                                      "    image: 'x:1'\n    replicas: 2\n")
    assert main(["validate", "-f", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:6:" in err and f"containers.{key}:" in err
    assert "container name shop-kkk" in err and "257 characters" in err and "at most 255" in err


@pytest.mark.parametrize("section", ["networks", "volumes"])
def test_an_engine_name_too_long_for_the_engine_names_its_line(tmp_path, capsys, section):
    spec = spec_in(tmp_path / "shop", f"name: shop\n{section}:\n  x: {{name: {'n' * 256}}}\n")
    assert main(["validate", "-f", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:3:" in err and f"{section}.x:" in err and "at most 255" in err


def test_the_schema_states_the_same_rule():
    name = json.loads(SCHEMA.read_text())["properties"]["name"]
    assert name["pattern"] == STACK_NAME_PATTERN and name["maxLength"] == MAX_STACK_NAME


def test_an_empty_stack_flag_is_an_error_not_the_specs_name(tmp_path, capsys):
    spec = spec_in(tmp_path / "shop", "name: shop\ncontainers: {web: {image: 'x:1'}}\n")
    for command in (["validate"], ["plan", "--engine", f"unix://{tmp_path}/no-engine.sock"]):
        assert main([*command, "-f", str(spec), "--stack", ""]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: --stack: invalid stack name '': it is empty"), err


@pytest.mark.parametrize("section, mount", [("networks", "networks: [x]"), ("volumes", "volumes: ['x:/data']")])
def test_an_engine_name_too_long_in_a_used_object_names_its_field_not_a_traceback(tmp_path, capsys, section, mount):
    spec = spec_in(tmp_path / "shop", f"name: shop\n{section}:\n  x:\n    labels: {{a: b}}\n    name: {'n' * 300}\n"
                                      f"containers:\n  web: {{image: 'x:1', {mount}}}\n")
    assert main(["validate", "-f", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "KeyError" not in err
    assert f"{spec}:5:11: {section}.x: name: the {section[:-1]} name nnnn" in err, err
    assert "is 300 characters long; the engine allows at most 255" in err


def test_a_derived_name_too_long_in_a_used_network_is_one_error_at_its_key(tmp_path, capsys):
    key = "k" * 260
    spec = spec_in(tmp_path / "shop", f"name: shop\nnetworks:\n  {key}: {{}}\nvolumes:\n  {key}: {{}}\ncontainers:\n"
                                      f"  web: {{image: 'x:1', networks: [{key}], volumes: ['{key}:/d']}}\n")
    assert main(["validate", "-f", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 2, err
    assert f"{spec}:3:" in err and f"{spec}:5:" in err and "(shorten the key or the stack name)" in err
