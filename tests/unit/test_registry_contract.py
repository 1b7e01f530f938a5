"""The registry driver contract: ``observe`` receives the specs, and says through ``LiveObject.content`` whether
the content behind a reference changed; the planner reads only that (no driver's special case)."""
from __future__ import annotations

import pytest

from reconciler.drivers import Wanted, wanted_specs
from reconciler.model import Content, ContainerSpec, DesiredState, ImageSpec, Kind, LiveObject, LiveState
from reconciler.plan import Action, Reason, plan_changes

REF = "reg.example/team/app:1"


def _state(image: ImageSpec) -> DesiredState:
    return DesiredState(stack="s", images={image.key: image})


def _live(content: Content | None, image_id: str = "sha256:local") -> LiveState:
    return LiveState(images={REF: LiveObject(Kind.IMAGE, REF, image_id, image_id=image_id, content=content)})


def test_wanted_carries_the_specs_and_still_maps_names_to_hashes():
    spec = ImageSpec(key="app", ref=REF, config_hash="h")
    wanted = Wanted({REF: spec})
    assert wanted == {REF: "h"} and wanted_specs(wanted)[REF] is spec
    assert wanted_specs({REF: "h"}) == {}, "a plain mapping (an older caller) has no specs"


@pytest.mark.parametrize("spec", [
    ImageSpec(key="app", ref=REF),
    ImageSpec(key="app", ref=REF, driver="archive", pull="never", archive="/x.tar", build_hash="sha256:new"),
])
def test_the_plan_follows_the_drivers_content_answer(spec):
    changed = plan_changes(_state(spec), _live(Content(True, "sha256:aaaa", "sha256:bbbb")))
    (change,) = changed.changes
    assert change.action is Action.UPDATE and change.renews
    assert change.reason in (Reason.PULL_TAG_MOVED, Reason.LOAD_CHANGED)
    if change.reason is Reason.PULL_TAG_MOVED:
        assert change.reasons == ("pull: tag moved upstream (sha256:aaaa → sha256:bbbb)",)
    same = plan_changes(_state(spec), _live(Content(False, "sha256:aaaa", "sha256:aaaa"), image_id="sha256:other"))
    assert same.empty, "a driver saying 'unchanged' is believed, whatever the ids look like"


def test_pull_always_pulls_only_when_the_driver_cannot_tell():
    spec = ImageSpec(key="app", ref=REF, pull="always")
    assert [c.reason for c in plan_changes(_state(spec), _live(None)).changes] == [Reason.PULL_ALWAYS]
    assert plan_changes(_state(spec), _live(Content(False, "d", "d"))).empty


def test_memory_engine_reports_a_moved_tag_and_an_apply_pulls_and_replaces(tmp_path, monkeypatch, memory_engine):
    from reconciler.testing import make_reconciler

    monkeypatch.setenv("RECONCILER_LOCK_DIR", str(tmp_path))
    image = ImageSpec(key="app", ref=REF)
    web = ContainerSpec(key="web", name="s-web-1", replica=1, image_key="app", image_ref=REF, config_hash="c1")
    desired = DesiredState(stack="s", images={"app": image}, containers={web.name: web})
    reconciler = make_reconciler(memory_engine)
    reconciler.apply(desired)
    assert reconciler.plan(desired)[0].empty
    new_id = memory_engine.publish(REF)
    plan, live = reconciler.plan(desired)
    assert live.images[REF].content.changed and live.images[REF].content.source == new_id
    assert {(c.kind, c.action) for c in plan.changes} == {(Kind.IMAGE, Action.UPDATE), (Kind.CONTAINER, Action.REPLACE)}
    reconciler.apply(desired)
    assert memory_engine.images[REF].image_id == new_id
    assert reconciler.plan(desired)[0].empty

