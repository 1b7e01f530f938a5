"""Builds: secret build args (hashed, never shown), pushes planned without a rebuild, progress redaction."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from reconciler.labels import (
    BUILD_HASH as BUILD_HASH_LABEL,
    CONFIG_HASH as HASH_LABEL,
    NAME as NAME_LABEL,
    STACK as STACK_LABEL,
)
from reconciler.model import DesiredState, Kind, LiveObject, LiveState
from reconciler.plan import Action, Reason
from reconciler.planfile import write_plan
from reconciler.planner import plan_changes
from reconciler.reconcile import load_desired
from reconciler.render import plan_json, plan_text

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))
from reconciler_docker.images import _StatusLines, redact  # noqa: E402

SECRET = "s3cr3t-token-value"
SPEC = """
name: demo
images:
  app:
    build:
      context: ./app
      args:
        TOKEN: {value: "${TOKEN}", secret: true}
        PLAIN: x
    ref: 127.0.0.1:5000/team/app:1
    push: PUSH
containers:
  web: {image: app}
"""


def desired(tmp_path: Path, token: str = SECRET, push: str = "true") -> DesiredState:
    (tmp_path / "app").mkdir(exist_ok=True)
    (tmp_path / "app" / "Dockerfile").write_text("FROM busybox\nARG TOKEN\nRUN echo $TOKEN\n")
    spec = tmp_path / "stack.yaml"
    spec.write_text(SPEC.replace("PUSH", push))
    return load_desired([spec], environ={"TOKEN": token})


def built(spec, *, repo_digests=()) -> LiveObject:
    labels = {STACK_LABEL: "demo", NAME_LABEL: spec.key, HASH_LABEL: spec.config_hash,
              BUILD_HASH_LABEL: spec.build_hash}
    return LiveObject(Kind.IMAGE, spec.ref, "sha256:" + "b" * 64, labels, owned=True, image_id="sha256:" + "b" * 64,
                      details={"repo_digests": tuple(repo_digests)})


# -- redaction -------------------------------------------------------------------------
def test_redact_replaces_every_occurrence():
    assert redact(f"token is {SECRET}; again {SECRET}", (SECRET,)) == "token is (secret); again (secret)"


def test_redact_longest_first_and_skips_empty():
    assert redact("abcdef abc", ("abcdef", "abc", "")) == "(secret) (secret)"


def test_redact_short_values_still_redacted():
    assert redact("id=ab", ("ab",)) == "id=(secret)"


def test_secret_values_come_longest_first(tmp_path):
    spec = desired(tmp_path).images["app"]
    assert spec.secret_args == frozenset({"TOKEN"})
    assert spec.secret_values == (SECRET,)
    assert dict(spec.build_args) == {"PLAIN": "x", "TOKEN": SECRET}  # the engine still gets it


def test_status_lines_show_changes_only():
    lines = _StatusLines()
    events = [{"status": "Preparing", "id": "l1"}, {"status": "Pushing", "id": "l1", "progress": "[=> ]"},
              {"status": "Pushing", "id": "l1", "progress": "[==> ]"}, {"status": "Pushed", "id": "l1"},
              {"status": "1: digest: sha256:abc size: 527"}, {"progressDetail": {}}]
    assert [x for x in map(lines.line, events) if x] == [
        "l1: Preparing", "l1: Pushing", "l1: Pushed", "1: digest: sha256:abc size: 527"]


# -- desired ---------------------------------------------------------------------------
def test_a_changed_secret_changes_the_build_hash(tmp_path):
    one = desired(tmp_path).images["app"]
    two = desired(tmp_path, token="another-secret").images["app"]
    assert one.build_hash != two.build_hash
    assert one.config_hash == one.build_hash


def test_push_does_not_change_the_build_hash(tmp_path):
    assert desired(tmp_path).images["app"].build_hash == desired(tmp_path, push="false").images["app"].build_hash


def test_secret_never_in_repr_plan_or_plan_file(tmp_path):
    state = desired(tmp_path)
    assert SECRET not in repr(state) and SECRET not in repr(state.images["app"])
    plan = plan_changes(state, LiveState())
    assert SECRET not in repr(plan) + plan_text(plan) + plan_json(plan)
    changed = desired(tmp_path, token="another-secret")
    plan = plan_changes(changed, LiveState(images={state.images["app"].ref: built(state.images["app"])}))
    assert [c.reasons for c in plan.changes if c.kind is Kind.IMAGE] == [("build: inputs changed",)]
    write_plan(tmp_path / "plan.json", plan, changed, engine=None, prune_volumes=False)
    assert "another-secret" not in (tmp_path / "plan.json").read_text() + repr(plan) + plan_text(plan)


def test_schema_accepts_secret_args_and_push_needs_ref(tmp_path):
    from reconciler.errors import SpecError

    (tmp_path / "app").mkdir()
    spec = tmp_path / "stack.yaml"
    spec.write_text("name: demo\nimages:\n  app: {build: {context: ./app}, push: true}\n")
    with pytest.raises(SpecError, match="ref"):
        load_desired([spec])


# -- plan: push ------------------------------------------------------------------------
def test_built_image_missing_from_registry_is_pushed_without_rebuild(tmp_path):
    state = desired(tmp_path)
    spec = state.images["app"]
    plan = plan_changes(state, LiveState(images={spec.ref: built(spec)}))
    image = [c for c in plan.changes if c.kind is Kind.IMAGE]
    assert [(c.action, c.reason) for c in image] == [(Action.UPDATE, Reason.PUSH_MISSING)]
    assert image[0].reasons == ("push: not in the registry",)  # the text a user reads
    # The image itself does not change: its containers are not replaced for a push.
    assert all(c.action is Action.CREATE for c in plan.changes if c.kind is Kind.CONTAINER)


def test_built_image_in_registry_plans_nothing(tmp_path):
    state = desired(tmp_path)
    spec = state.images["app"]
    live = built(spec, repo_digests=["127.0.0.1:5000/team/app@sha256:" + "c" * 64])
    plan = plan_changes(state, LiveState(images={spec.ref: live}))
    assert [c for c in plan.changes if c.kind is Kind.IMAGE] == []


def test_a_digest_of_another_repository_does_not_count(tmp_path):
    state = desired(tmp_path)
    spec = state.images["app"]
    live = built(spec, repo_digests=["127.0.0.1:5000/team/other@sha256:" + "c" * 64])
    assert [c.reason for c in plan_changes(state, LiveState(images={spec.ref: live})).changes
            if c.kind is Kind.IMAGE] == [Reason.PUSH_MISSING]


def test_without_push_a_local_build_plans_nothing(tmp_path):
    state = desired(tmp_path, push="false")
    spec = state.images["app"]
    assert [c for c in plan_changes(state, LiveState(images={spec.ref: built(spec)})).changes
            if c.kind is Kind.IMAGE] == []


def test_changed_inputs_rebuild_rather_than_push(tmp_path):
    old = desired(tmp_path, token="old-secret").images["app"]
    state = desired(tmp_path)
    plan = plan_changes(state, LiveState(images={old.ref: built(old)}))
    assert [c.reasons for c in plan.changes if c.kind is Kind.IMAGE] == [("build: inputs changed",)]


# -- apply: build then push, or push alone ---------------------------------------------
def _apply(state, live):
    """The engine's calls when the images of ``state`` are applied to an engine holding ``live``."""
    from reconciler.apply import apply_plan
    from reconciler.testing import MemoryEngine

    engine = MemoryEngine()
    engine.add(*live.images.values())
    plan = plan_changes(DesiredState(stack=state.stack, images=state.images), live)
    report = apply_plan(plan, state, engine.drivers("demo"))
    assert report.ok, [o.error for o in report.outcomes]
    return engine.calls


def test_apply_builds_then_pushes(tmp_path):
    state = desired(tmp_path)
    ref = state.images["app"].ref
    assert _apply(state, LiveState()) == [("build", ref), ("push", ref)]


def test_apply_of_a_push_change_does_not_rebuild(tmp_path):
    state = desired(tmp_path)
    spec = state.images["app"]
    assert _apply(state, LiveState(images={spec.ref: built(spec)})) == [("push", spec.ref)]
