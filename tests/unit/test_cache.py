"""A spec that passed the schema once skips jsonschema next time; anything else is checked."""
from __future__ import annotations

import pytest

from reconciler.spec import validate as validate_module
from reconciler.errors import SpecError
from reconciler.spec.loader import load_stack
from reconciler.spec.validate import validate


def _forbid_schema(monkeypatch):
    def refuse():
        raise AssertionError("jsonschema was consulted")

    monkeypatch.setattr(validate_module, "_validator", refuse)


def test_second_validation_of_the_same_spec_skips_the_schema(tmp_path, monkeypatch):
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(tmp_path / "cache"))
    spec = tmp_path / "stack.yaml"
    spec.write_text("containers: {web: {image: 'x:1'}}\n")
    validate(load_stack([spec]))
    _forbid_schema(monkeypatch)
    validate(load_stack([spec]))


def test_a_changed_spec_is_validated_again(tmp_path, monkeypatch):
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(tmp_path / "cache"))
    spec = tmp_path / "stack.yaml"
    spec.write_text("containers: {web: {image: 'x:1'}}\n")
    validate(load_stack([spec]))
    spec.write_text("containers: {web: {image: 'x:1', replicas: lots}}\n")
    with pytest.raises(SpecError, match="replicas"):
        validate(load_stack([spec]))


def test_semantic_checks_still_run_for_a_cached_spec(tmp_path, monkeypatch):
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "web.env").write_text("A=1\n")
    spec = tmp_path / "stack.yaml"
    spec.write_text("containers: {web: {image: 'x:1', env_file: web.env}}\n")
    validate(load_stack([spec]))
    (tmp_path / "web.env").unlink()
    _forbid_schema(monkeypatch)
    with pytest.raises(SpecError, match="web.env"):
        validate(load_stack([spec]))


def test_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("RECONCILER_CACHE_DIR", "off")
    spec = tmp_path / "stack.yaml"
    spec.write_text("containers: {web: {image: 'x:1'}}\n")
    validate(load_stack([spec]))
    calls = []
    real = validate_module._validator

    def counting():
        calls.append(1)
        return real()

    monkeypatch.setattr(validate_module, "_validator", counting)
    validate(load_stack([spec]))
    assert calls == [1]
