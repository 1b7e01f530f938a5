"""A spec file's parsed text is remembered: the next read skips PyYAML and gives the same data, marks and errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.errors import SpecError
from reconciler.spec.loader import load_stack
from reconciler.spec.yamlsafe import compose_file

SPEC = """\
name: demo
containers:
  web:
    image: "busybox:${TAG:-1}"
    command: [sleep, "3600"]
    environment: {A: "${NOPE:?say why}"}
"""


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(folder))
    return folder


def _entries(cache: Path) -> list[Path]:
    return sorted((cache / "yaml").iterdir()) if (cache / "yaml").exists() else []


def test_a_second_read_gives_the_same_data_marks_and_problems(cache):
    first = compose_file(SPEC, "stack.yaml", on_string=lambda value, path: value.upper(), remember=True)
    [entry] = _entries(cache)
    second = compose_file(SPEC, "stack.yaml", on_string=lambda value, path: value.upper(), remember=True)
    assert second == first
    assert second.data["containers"]["web"]["image"] == "BUSYBOX:${TAG:-1}"
    assert oct(entry.stat().st_mode)[-3:] == "600"


def test_a_remembered_spec_loads_without_importing_pyyaml(cache, tmp_path):
    spec = tmp_path / "stack.yaml"
    spec.write_text(SPEC.replace('environment: {A: "${NOPE:?say why}"}', "environment: {A: '${A}'}"))
    probe = ("import sys; from reconciler.spec.loader import load_stack; "
             f"raw = load_stack([{str(spec)!r}]); "
             "print(raw.data['containers']['web']['environment']['A'], 'yaml' in sys.modules)")
    env = {**os.environ, "RECONCILER_CACHE_DIR": str(cache), "A": "from-env", "PYTHONPATH": os.pathsep.join(sys.path)}
    runs = [subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    assert runs == ["from-env True\n", "from-env False\n"]
    assert b"from-env" not in b"".join(p.read_bytes() for p in _entries(cache))  # variables are substituted after


def test_an_interpolation_error_points_at_its_line_when_read_from_the_cache(cache, tmp_path):
    spec = tmp_path / "stack.yaml"
    spec.write_text(SPEC)
    for _ in range(2):
        with pytest.raises(SpecError) as caught:
            load_stack([spec])
        assert f"{spec}:6:" in str(caught.value) and "say why" in str(caught.value)
    assert len(_entries(cache)) == 1


def test_a_file_with_problems_or_secrets_is_not_remembered(cache):
    duplicate = "containers: {web: {image: a}}\ncontainers: {}\n"
    for _ in range(2):
        assert "duplicate key 'containers'" in compose_file(duplicate, "s.yaml", remember=True).problems[0].message
    compose_file("containers: {web: {environment: {P: {value: hunter2, secret: true}}}}\n", "s.yaml", remember=True)
    compose_file("secrets: {db: {content: hunter2}}\n", "s.yaml", remember=True)
    assert _entries(cache) == []


def test_an_entry_someone_else_may_write_is_not_believed(cache):
    compose_file("name: demo\n", "stack.yaml", remember=True)
    [entry] = _entries(cache)
    entry.write_text(json.dumps({"data": {"name": "forged"}, "marks": [[[], 1, 1]]}))
    entry.chmod(0o666)
    assert compose_file("name: demo\n", "stack.yaml", remember=True).data == {"name": "demo"}
    assert json.loads(entry.read_text())["data"] == {"name": "demo"}  # parsed again, and written anew
    assert oct(entry.stat().st_mode)[-3:] == "600"


def test_a_damaged_entry_is_parsed_again(cache):
    compose_file("name: demo\n", "stack.yaml", remember=True)
    [entry] = _entries(cache)
    entry.write_text("{not json")
    entry.chmod(0o600)
    assert compose_file("name: demo\n", "stack.yaml", remember=True).data == {"name": "demo"}
    assert json.loads(entry.read_text())["data"] == {"name": "demo"}


def test_another_file_name_or_text_misses(cache):
    compose_file("name: demo\n", "a.yaml", remember=True)
    compose_file("name: demo\n", "b.yaml", remember=True)
    compose_file("name: other\n", "a.yaml", remember=True)
    assert len(_entries(cache)) == 3
    assert compose_file("name: demo\n", "b.yaml", remember=True).marks[("name",)].file == "b.yaml"
