"""Saved plans: round trip, staleness, and no secrets in the file."""
from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.errors import SpecError, StalePlanError
from reconciler.model import EnvVar
from reconciler.planfile import check_fresh, plan_fingerprint, read_plan, write_plan
from reconciler.planner import plan_changes

from .builders import container, live, live_container, state


def saved_for(tmp_path, desired, current):
    plan = plan_changes(desired, current)
    path = tmp_path / "plan.json"
    write_plan(path, plan, desired, engine=None, prune_volumes=False)
    return path, read_plan(path)


def test_round_trip_and_fresh_plan_passes(tmp_path):
    desired = state(container(env=[EnvVar("A", "1")]))
    _, saved = saved_for(tmp_path, desired, live())
    check_fresh(saved, plan_changes(desired, live()), desired)
    assert saved.stack == "demo" and saved.summary == "create container:demo-web-1"


def test_live_object_replaced_underneath_makes_it_stale(tmp_path):
    web = container()
    desired = state(web)
    current = live(live_container(web, state="exited", exit_code=1))
    _, saved = saved_for(tmp_path, desired, current)
    moved = live(replace(live_container(web, state="exited", exit_code=1), id="someone-else"))
    with pytest.raises(StalePlanError, match="stale"):
        check_fresh(saved, plan_changes(desired, moved), desired)


def test_changed_secret_makes_it_stale_without_the_file_holding_it(tmp_path):
    desired = state(container(env=[EnvVar("TOKEN", "first-secret", secret=True)]))
    path, saved = saved_for(tmp_path, desired, live())
    assert "first-secret" not in path.read_text()
    other = state(container(env=[EnvVar("TOKEN", "second-secret", secret=True)]))
    assert plan_fingerprint(plan_changes(other, live()), other) != saved.fingerprint
    with pytest.raises(StalePlanError):
        check_fresh(saved, plan_changes(other, live()), other)


def test_garbage_plan_file_is_a_clear_error(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text("{not json")
    with pytest.raises(SpecError, match="not a readable plan file"):
        read_plan(path)


def test_a_plan_made_with_adopt_is_applied_with_adopt(tmp_path):
    web = container()
    desired = state(web)
    plan = plan_changes(desired, live())
    path = tmp_path / "plan.json"
    write_plan(path, plan, desired, engine=None, prune_volumes=False, adopt=True)
    assert read_plan(path).adopt
    write_plan(path, plan, desired, engine=None, prune_volumes=False)
    assert not read_plan(path).adopt
