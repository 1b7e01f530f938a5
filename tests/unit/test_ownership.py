"""Labels claim, the record proves: the planner with the reconciler's record as data. Pure."""
from __future__ import annotations

from dataclasses import replace

from reconciler.labels import CONFIG_HASH
from reconciler.model import Kind, LiveObject, NetworkSpec, Record, VolumeSpec
from reconciler.plan import Action, Reason
from reconciler.planner import plan_changes

from .builders import actions, container, live, live_container, owned, state


def _record(*objects: LiveObject, adopted: tuple[LiveObject, ...] = (), missing: bool = False) -> Record:
    return Record(created=frozenset((o.kind, o.name, o.id) for o in objects),
                  adopted=frozenset((o.kind, o.name, o.id) for o in adopted), missing=missing)


def _forged(obj: LiveObject, name: str) -> LiveObject:
    """Someone else's object with labels copied from ``obj``: another name, another engine id."""
    return replace(obj, name=name, id="forged-" + name)


def test_a_container_with_copied_labels_is_reported_not_scaled_down():
    web = container()
    ours = live_container(web)
    forged = _forged(ours, "demo-web-2")  # looks like replica 2 of web
    plan = plan_changes(state(web), live(ours, forged), record=_record(ours))
    [change] = plan.changes
    assert (change.action, change.name, change.reason) == (Action.DELETE, "demo-web-2", Reason.NOT_RECORDED)
    assert "claims this stack by its labels, but the reconciler's record does not list it" in change.error
    assert "--adopt" in change.error and change.live_id == "forged-demo-web-2"


def test_without_the_record_the_old_behaviour_stays():
    web = container()
    ours = live_container(web)
    plan = plan_changes(state(web), live(ours, _forged(ours, "demo-web-2")))
    assert [(c.action, c.name, c.error) for c in plan.changes] == [(Action.DELETE, "demo-web-2", "")]


def test_adopt_takes_the_object_over_and_records_it():
    web = container()
    ours = live_container(web)
    forged = _forged(ours, "demo-web-2")
    plan = plan_changes(state(web), live(ours, forged), record=_record(ours), adopt=True)
    assert [(c.action, c.name, c.error) for c in plan.changes] == [(Action.DELETE, "demo-web-2", "")]
    assert plan.adopted == (forged,)
    assert any("demo-web-2 is adopted" in note for note in plan.notes)


def test_a_forged_object_under_a_wanted_name_is_an_error_not_a_takeover():
    web = container()
    forged = replace(live_container(web), id="forged")  # ours was removed; this one copies its labels
    plan = plan_changes(state(web), live(forged), record=_record(replace(forged, id="the-real-one")))
    [change] = plan.changes
    assert (change.action, change.reason) == (Action.CREATE, Reason.NOT_RECORDED) and "--adopt" in change.error


def test_destroy_deletes_recorded_objects_and_reports_forged_ones():
    web = container()
    net = NetworkSpec(key="back", name="demo_back", config_hash="n1")
    ours_net, ours_web = owned(Kind.NETWORK, net), live_container(web, details={"networks": ["demo_back"]})
    forged_net = _forged(ours_net, "demo_other")
    plan = plan_changes(state(), live(ours_web, networks=[ours_net, forged_net]), record=_record(ours_net, ours_web))
    outcome = {c.name: (c.action, bool(c.error)) for c in plan.changes}
    assert outcome == {"demo_back": (Action.DELETE, False), "demo_other": (Action.DELETE, True),
                       "demo-web-1": (Action.DELETE, False)}


def test_volume_data_is_deleted_only_when_the_record_says_the_reconciler_created_it():
    vol = VolumeSpec(key="data", name="demo_data", config_hash="v1")
    ours = owned(Kind.VOLUME, vol)
    cases = {
        "created": _record(ours),
        "adopted": _record(adopted=(ours,)),
        "not listed": _record(replace(ours, id="another-volume-id")),
    }
    errors = {}
    for case, record in cases.items():
        [change] = plan_changes(state(), live(volumes=[ours]), prune_volumes=True, record=record).changes
        assert change.action is Action.DELETE
        errors[case] = change.error
    assert errors["created"] == ""
    assert "its data is kept; rerun with --prune-volumes --adopt" in errors["adopted"]
    assert "record does not list it" in errors["not listed"]
    adopted = plan_changes(state(), live(volumes=[ours]), prune_volumes=True, record=cases["adopted"], adopt=True)
    assert [c.error for c in adopted.changes] == [""]


def test_recreating_an_adopted_volume_needs_adopt_and_its_containers_stay():
    old = VolumeSpec(key="data", name="demo_data", options=(("type", "tmpfs"),), config_hash="old")
    new = replace(old, options=(("type", "nfs"),), config_hash="new")
    from reconciler.model import Mount

    web = container(mounts=(Mount("volume", "/data", "demo_data"),))
    current = live(live_container(web), volumes=[owned(Kind.VOLUME, old)])
    record = _record(current.containers["demo-web-1"], adopted=(current.volumes["demo_data"],))
    plan = plan_changes(state(web, volumes=[new]), current, record=record)
    [change] = plan.changes
    assert change.action is Action.REPLACE and change.blocked and "--recreate-volumes --adopt" in change.error
    allowed = plan_changes(state(web, volumes=[new]), current, record=record, adopt=True)
    assert actions(allowed) == [("replace", "volume:demo_data"), ("replace", "container:demo-web-1")]


def test_a_missing_record_is_rebuilt_from_matching_objects_and_nothing_is_deleted():
    web, db = container(), container(key="db")
    stale = replace(live_container(db), labels={**live_container(db).labels, CONFIG_HASH: "old"})
    gone = live_container(container(key="old"))
    vol = VolumeSpec(key="data", name="demo_data", config_hash="v1")
    plan = plan_changes(state(web, db, volumes=[vol]),
                        live(live_container(web), stale, gone, volumes=[owned(Kind.VOLUME, vol)]),
                        prune_volumes=True, record=Record(missing=True))
    assert {o.name for o in plan.adopted} == {"demo-web-1", "demo_data"}
    outcome = {c.name: (c.action, c.reason) for c in plan.changes}
    assert outcome == {"demo-db-1": (Action.CREATE, Reason.NOT_RECORDED),  # its config differs: not adopted
                       "demo-old-1": (Action.DELETE, Reason.NOT_RECORDED)}  # not in the spec: nothing to match
    assert all(c.error for c in plan.changes)
    assert any("record of stack demo on this engine was empty: 2 objects" in note for note in plan.notes)


def test_a_rebuilding_pass_leaves_replacements_for_the_next_one():
    web = container()
    moved = live_container(web, image_id="sha256:" + "b" * 64)  # its image moved: a replace
    plan = plan_changes(state(web), live(moved), record=Record(missing=True))
    assert plan.changes == () and plan.adopted == (moved,)
    assert any("demo-web-1 is replaced on the next apply" in note for note in plan.notes)
    recorded = plan_changes(state(web), live(moved), record=_record(adopted=(moved,)))
    assert actions(recorded) == [("replace", "container:demo-web-1")]


def test_a_stranger_without_our_labels_is_still_not_managed():
    web = container()
    stranger = live_container(web, owned=False)
    [change] = plan_changes(state(web), live(stranger), record=Record(missing=True)).changes
    assert change.reason is Reason.NEW and "is not managed by this stack" in change.error


def _aside(obj: LiveObject) -> LiveObject:
    """``obj`` as an interrupted replacement leaves it: renamed to ``<name>-old-<id>``, same engine id."""
    return replace(obj, name=f"{obj.name}-old-{obj.id[:12]}")


def test_a_container_left_aside_is_ours_by_its_id_and_replaced_under_its_name():
    web = container()
    ours = replace(live_container(web), id="0123456789abcdef")
    plan = plan_changes(state(web), live(_aside(ours)), record=_record(ours))
    [change] = plan.changes
    assert (change.action, change.name, change.reason, change.error) == (Action.REPLACE, web.name,
                                                                          Reason.INTERRUPTED, "")
    assert change.live_id == ours.id and change.rollout is not None


def test_a_container_left_aside_whose_successor_exists_is_removed_before_it_starts():
    web = container()
    old = replace(live_container(web), id="0123456789abcdef")
    new = replace(live_container(web, state="created"), id="fedcba9876543210")
    plan = plan_changes(state(web), live(_aside(old), new), record=_record(old, new))
    by_name = {c.name: c for c in plan.changes}
    gone = by_name[_aside(old).name]
    assert (gone.action, gone.reason, gone.error) == (Action.DELETE, Reason.INTERRUPTED, "")
    assert f"container:{gone.name}" in by_name[web.name].requires


def test_a_forged_name_in_the_aside_form_is_not_ours():
    web = container()
    ours = replace(live_container(web), id="0123456789abcdef")
    forged = replace(_aside(ours), id="forged-0123456789")  # the name copied, not the engine id
    plan = plan_changes(state(web), live(forged), record=_record(ours))
    assert {(c.action, c.reason) for c in plan.changes} == {(Action.CREATE, Reason.NEW),
                                                            (Action.DELETE, Reason.NOT_RECORDED)}
