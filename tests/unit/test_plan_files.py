"""Configs and secrets in plans: which containers roll, what the plan shows, when files are pruned."""
from __future__ import annotations

import json
from pathlib import Path

from reconciler.plan import REDACTED, Reason
from reconciler.planfile import write_plan
from reconciler.planner import plan_changes
from reconciler.render import plan_json, plan_text
from reconciler.spec import load_desired
from reconciler.testing import MemoryEngine, MemoryRuntimeDriver, make_reconciler

from reconciler.model import Kind

from .builders import actions, live, live_container, owned

OLD, NEW = "old-secret-7f3e9a", "new-secret-c41d02"
SPEC = """\
name: demo
configs:
  app: {content: "${APP}"}
secrets:
  db: {environment: DB}
containers:
  web: {image: "base:1", configs: [app], secrets: [db]}
  worker: {image: "base:1", secrets: [db]}
  plain: {image: "base:1"}
"""


def desired(tmp_path: Path, *, app: str = "listen 80", db: str = OLD, spec: str = SPEC):
    (tmp_path / "stack.yaml").write_text(spec)
    return load_desired([tmp_path / "stack.yaml"], environ={"APP": app, "DB": db})


def live_of(state, **details):
    # The stack's default network exists too: the containers here name no network.
    return live(*(live_container(spec, details=details.get(spec.key)) for spec in state.containers.values()),
                networks=[owned(Kind.NETWORK, n) for n in state.networks.values()])


def test_a_changed_secret_replaces_its_containers_and_shows_only_redacted_values(tmp_path: Path) -> None:
    before, after = desired(tmp_path), desired(tmp_path, db=NEW)
    plan = plan_changes(after, live_of(before))
    assert actions(plan) == [("replace", "container:demo-web-1"), ("replace", "container:demo-worker-1")]
    assert [str(f) for f in plan.changes[0].fields] == [f"secrets.db: {REDACTED} → {REDACTED}"]
    assert plan.changes[0].forced_by == ("secrets.db",)
    out = tmp_path / "plan.json"
    write_plan(out, plan, after, engine=None, prune_volumes=False)
    for text in (repr(plan), plan_text(plan), plan_json(plan), out.read_text()):
        assert OLD not in text and NEW not in text


def test_a_changed_config_replaces_only_the_container_mounting_it_and_shows_short_hashes(tmp_path: Path) -> None:
    before, after = desired(tmp_path), desired(tmp_path, app="listen 8080")
    old_hash = before.containers["demo-web-1"].files[0].content_hash
    new_hash = after.containers["demo-web-1"].files[0].content_hash
    # The driver reads the old content's hash from the file it mounted (16 hex digits).
    plan = plan_changes(after, live_of(before, web={"configs": {"app": old_hash[:16]}}))
    assert actions(plan) == [("replace", "container:demo-web-1")]
    assert [str(f) for f in plan.changes[0].fields] == [f"configs.app: {old_hash[:12]} → {new_hash[:12]}"]
    unexplained = plan_changes(after, live_of(before))
    assert [str(f) for f in unexplained.changes[0].fields] == [f"configs.app: (was different) → {new_hash[:12]}"]


def test_a_secret_newly_mounted_shows_unset_then_secret(tmp_path: Path) -> None:
    before = desired(tmp_path, spec=SPEC.replace("worker: {image: \"base:1\", secrets: [db]}",
                                                 "worker: {image: \"base:1\"}"))
    plan = plan_changes(desired(tmp_path), live_of(before))
    assert actions(plan) == [("replace", "container:demo-worker-1")]
    assert [str(f) for f in plan.changes[0].fields] == [f"secrets.db: (unset) → {REDACTED}"]


def test_a_container_whose_files_are_gone_is_replaced(tmp_path: Path) -> None:
    state = desired(tmp_path)
    plan = plan_changes(state, live_of(state, web={"files_missing": True}))
    assert actions(plan) == [("replace", "container:demo-web-1")]
    assert plan.changes[0].reason is Reason.FILES_MISSING


def test_files_are_pruned_after_applies_that_change_containers_and_after_destroy(tmp_path: Path,
                                                                                 monkeypatch) -> None:
    pruned: list[str] = []
    monkeypatch.setattr(MemoryRuntimeDriver, "prune_files", lambda self, stack: pruned.append(stack), raising=False)
    engine = MemoryEngine()
    reconciler = make_reconciler(engine)
    state = desired(tmp_path, spec=SPEC.replace('"base:1"', '"busybox:1"'))
    assert reconciler.apply(state).ok
    assert pruned == ["demo"]
    assert reconciler.apply(state).outcomes == ()  # converged: nothing to prune, no call made
    assert pruned == ["demo"]
    assert reconciler.destroy("demo").ok
    assert pruned == ["demo", "demo"]


def test_the_plan_json_of_a_secret_change_names_the_field_not_the_value(tmp_path: Path) -> None:
    plan = plan_changes(desired(tmp_path, db=NEW), live_of(desired(tmp_path)))
    fields = json.loads(plan_json(plan))["changes"][0]["fields"]
    assert fields == [{"path": "secrets.db", "old": REDACTED, "new": REDACTED}]
