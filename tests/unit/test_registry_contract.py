"""The registry driver contract: ``observe`` receives the specs, and says through ``LiveObject.content`` whether
the content behind a reference changed; the planner reads only that (no driver's special case)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.model import Content, ContainerSpec, DesiredState, ImageSpec, Kind, LiveObject, LiveState
from reconciler.plan import Action, Reason
from reconciler.planner import plan_changes
from reconciler.testing import MemoryRegistryDriver

REF = "reg.example/team/app:1"


def _state(image: ImageSpec) -> DesiredState:
    return DesiredState(stack="s", images={image.key: image})


def _live(content: Content | None, image_id: str = "sha256:local") -> LiveState:
    return LiveState(images={REF: LiveObject(Kind.IMAGE, REF, image_id, image_id=image_id, content=content)})


@pytest.mark.parametrize("spec, reason, text", [
    (ImageSpec(key="app", ref=REF), Reason.PULL_TAG_MOVED, "pull: tag moved upstream (sha256:aaaa → sha256:bbbb)"),
    (ImageSpec(key="app", ref=REF, driver="archive", pull="never", archive="/x.tar"),
     Reason.CONTENT_CHANGED, "content changed: sha256:aaaa → sha256:bbbb"),
])
def test_the_plan_follows_the_drivers_content_answer(spec, reason, text):
    changed = plan_changes(_state(spec), _live(Content(True, "sha256:aaaa", "sha256:bbbb")))
    (change,) = changed.changes
    assert change.action is Action.UPDATE and change.renews
    assert change.reason is reason and change.reasons == (text,)
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



# -- a third-party registry driver: the core acts on its content answer, and on nothing else ----


class _MirrorDriver(MemoryRegistryDriver):
    """A third-party registry driver ("mirror"): its source is a dict, and it reports what it holds there.

    ``answer`` says how: ``"content"`` (the documented contract) or ``"details"``
    (an undocumented ``upstream_digest``, which the core does not read).
    """

    source: dict[str, str] = {}
    answer = "content"

    def observe(self, stack, wanted):
        out = []
        for live in MemoryRegistryDriver.observe(self, stack, wanted):
            holds = self.source.get(live.name)
            if holds and self.answer == "content":
                live = replace(live, content=Content(live.image_id != holds, live.image_id, holds))
            elif holds:
                live = replace(live, content=None, details={**live.details, "upstream_digest": holds})
            out.append(live)
        return out

    def pull(self, spec):
        with self.engine._call("pull", spec.ref):
            holds = self.source.get(spec.ref) or "sha256:first"
            self._put(LiveObject(Kind.IMAGE, spec.ref, holds, image_id=holds))


def _mirror_stack(tmp_path, monkeypatch, memory_engine, answer: str):
    from reconciler.hookspecs import hookimpl
    from reconciler.testing import make_reconciler

    monkeypatch.setenv("RECONCILER_LOCK_DIR", str(tmp_path))
    driver = type("Mirror", (_MirrorDriver,), {"source": {REF: "sha256:first"}, "answer": answer})

    class Plugin:
        @hookimpl
        def reconciler_register_drivers(self, registry):
            registry.add_registry_driver("mirror", lambda context: driver(memory_engine, context))

    image = ImageSpec(key="app", ref=REF, driver="mirror", config_hash="")
    web = ContainerSpec(key="web", name="s-web-1", replica=1, image_key="app", image_ref=REF, config_hash="c1")
    desired = DesiredState(stack="s", images={"app": image}, containers={web.name: web})
    reconciler = make_reconciler(memory_engine, plugins={"mirror": Plugin()})
    reconciler.apply(desired)
    assert reconciler.plan(desired)[0].empty
    driver.source[REF] = "sha256:second"  # the source now holds other content
    return reconciler, desired


def test_a_third_party_driver_saying_content_changed_gets_a_pull_and_its_containers_replaced(
        tmp_path, monkeypatch, memory_engine):
    reconciler, desired = _mirror_stack(tmp_path, monkeypatch, memory_engine, "content")
    plan, _ = reconciler.plan(desired)
    assert [(c.kind, c.action, c.reason) for c in plan.changes] == [
        (Kind.IMAGE, Action.UPDATE, Reason.PULL_TAG_MOVED), (Kind.CONTAINER, Action.REPLACE, Reason.IMAGE_CHANGED)]
    assert plan.changes[0].reasons == ("pull: tag moved upstream (sha256:first → sha256:second)",)
    before = len(memory_engine.calls)
    reconciler.apply(desired)
    assert ("pull", REF) in memory_engine.calls[before:]
    assert memory_engine.images[REF].image_id == "sha256:second"
    assert memory_engine.containers["s-web-1"].image_id == "sha256:second"
    assert reconciler.plan(desired)[0].empty


def test_a_driver_reporting_only_details_upstream_digest_gets_no_update(tmp_path, monkeypatch, memory_engine):
    """The core does not read an undocumented ``details["upstream_digest"]``: only ``content`` says the content moved."""
    reconciler, desired = _mirror_stack(tmp_path, monkeypatch, memory_engine, "details")
    plan, live = reconciler.plan(desired)
    assert live.images[REF].details["upstream_digest"] == "sha256:second" and live.images[REF].content is None
    assert plan.empty
    before = len(memory_engine.calls)
    reconciler.apply(desired)
    assert [c for c in memory_engine.calls[before:] if c[0] != "observe"] == []
    assert memory_engine.images[REF].image_id == "sha256:first"
