"""Taking a running Compose project over (``reconcile adopt``): what becomes of each object, and the plan after. Pure."""
from __future__ import annotations

from reconciler import labels as L
from reconciler.adoption import plan_adoption
from reconciler.hashing import config_hash
from reconciler.model import Kind, LiveObject, NetworkSpec, Record, VolumeSpec
from reconciler.ownership import vet
from reconciler.plan import Action, Reason
from reconciler.planner import plan_changes
from reconciler.state import StateStore

from .builders import STACK, container, live, state

PROJECT = STACK


def _volume(key="data") -> VolumeSpec:
    return VolumeSpec(key=key, name=f"{STACK}_{key}", config_hash=config_hash({"driver": "local"}))


def _network(key="default") -> NetworkSpec:
    return NetworkSpec(key=key, name=f"{STACK}_{key}", config_hash=config_hash({"driver": "bridge"}))


def _compose(kind: Kind, name: str, key: str, *, project=PROJECT, number=1, oneoff=False, id="") -> LiveObject:
    """An object as Compose made it: its labels only, none of ours."""
    labels = {L.COMPOSE_PROJECT: project, L.COMPOSE_VERSION: "1.29.2"}
    if kind is Kind.CONTAINER:
        labels.update({L.COMPOSE_SERVICE: key, L.COMPOSE_NUMBER: str(number), L.COMPOSE_ONEOFF: str(oneoff)})
    else:
        labels[L.COMPOSE_VOLUME if kind is Kind.VOLUME else L.COMPOSE_NETWORK] = key
    return LiveObject(kind, name, id or (name if kind is Kind.VOLUME else "id-" + name), labels, owned=False,
                      state="running", image_id="sha256:" + "a" * 64,
                      details={"networks": [f"{STACK}_default"]} if kind is Kind.CONTAINER else {})


def _same(spec, obj):
    return []


def _found(*objects):
    out = {}
    for obj in objects:
        out.setdefault(obj.kind, []).append(obj)
    return out


def _adopt(desired, *objects, compare=_same, observed=None, record=None):
    record = record if record is not None else Record()
    adoption = plan_adoption(desired, PROJECT, _found(*objects), observed or live(), record, compare)
    view, recorded = adoption.view(observed or live(), record)
    return adoption, plan_changes(desired, view, record=recorded)


def test_a_v1_project_matching_the_file_is_taken_over_with_no_change():
    web, data, net = container("web", networks=((f"{STACK}_default", ("web",)),)), _volume(), _network()
    desired = state(web, networks=(net,), volumes=(data,))
    objs = (_compose(Kind.CONTAINER, f"{STACK}_web_1", "web"), _compose(Kind.VOLUME, data.name, "data"),
            _compose(Kind.NETWORK, net.name, "default"))
    adoption, plan = _adopt(desired, *objs)
    verdicts = {(t.kind, t.name): (t.verdict, t.renamed_from) for t in adoption.takeovers}
    assert verdicts == {(Kind.CONTAINER, web.name): ("keep", f"{STACK}_web_1"),
                        (Kind.VOLUME, data.name): ("adopt", ""), (Kind.NETWORK, net.name): ("adopt", "")}
    assert plan.changes == () and adoption.renames() == [(f"id-{STACK}_web_1", web.name)]


def test_a_container_that_differs_is_replaced_naming_the_fields():
    web = container("web")
    adoption, plan = _adopt(state(web), _compose(Kind.CONTAINER, web.name, "web"),
                            compare=lambda spec, obj: ["env.MODE", "command"])
    [taken] = adoption.takeovers
    assert taken.verdict == "replace" and "env.MODE, command" in taken.reasons[0]
    [change] = plan.changes
    assert (change.action, change.reason) == (Action.REPLACE, Reason.CONFIG_CHANGED)
    assert set(change.forced_by) == {"env.MODE", "command"}


def test_a_runtime_that_cannot_compare_replaces_the_container():
    web = container("web")
    adoption, plan = _adopt(state(web), _compose(Kind.CONTAINER, web.name, "web"), compare=lambda s, o: None)
    assert adoption.takeovers[0].verdict == "replace"
    assert [c.action for c in plan.changes] == [Action.REPLACE]


def test_one_offs_other_services_and_extra_replicas_are_left_alone():
    web = container("web")
    objs = (_compose(Kind.CONTAINER, f"{STACK}_web_run_1", "web", oneoff=True),
            _compose(Kind.CONTAINER, f"{STACK}_old_1", "old"),
            _compose(Kind.CONTAINER, f"{STACK}_web_2", "web", number=2),
            _compose(Kind.VOLUME, f"{STACK}_gone", "gone"))
    adoption, plan = _adopt(state(web), *objs)
    assert adoption.takeovers == ()
    left = "\n".join(adoption.left_alone)
    assert "one-off" in left and "no service old" in left and "no replica web #2" in left and "no volume gone" in left
    assert [(c.action, c.name) for c in plan.changes] == [(Action.CREATE, web.name)]


def test_another_projects_objects_are_never_taken():
    web = container("web")
    stranger = _compose(Kind.CONTAINER, web.name, "web", project="other")
    adoption, plan = _adopt(state(web), stranger, observed=live(stranger))
    assert adoption.takeovers == () and adoption.left_alone == ()
    [change] = plan.changes
    assert change.action is Action.CREATE and "belongs to Compose project other" in change.error


def test_a_rename_onto_a_name_another_container_holds_is_a_clash():
    web = container("web")
    holder = LiveObject(Kind.CONTAINER, web.name, "id-holder", {}, owned=False)
    adoption = plan_adoption(state(web), PROJECT, _found(_compose(Kind.CONTAINER, f"{STACK}_web_1", "web")),
                             live(holder), Record(), _same)
    assert adoption.takeovers == () and "which container id-holder holds" in adoption.clashes[0]


def test_a_volume_that_differs_is_adopted_and_its_change_blocked():
    data = _volume()
    adoption, plan = _adopt(state(volumes=(data,)), _compose(Kind.VOLUME, data.name, "data"),
                            compare=lambda s, o: ["options.type"])
    assert adoption.takeovers[0].verdict == "adopt"
    [change] = plan.changes
    assert change.action is Action.REPLACE and change.blocked


def test_the_claim_holds_only_while_the_object_keeps_its_compose_labels():
    data = _volume()
    adoption, _ = _adopt(state(volumes=(data,)), _compose(Kind.VOLUME, data.name, "data"))
    _, record = adoption.view(live(), Record())
    impostor = LiveObject(Kind.VOLUME, data.name, data.name, {L.COMPOSE_PROJECT: "other"}, owned=False)
    vetted = vet(state(volumes=(data,)), live(volumes=(impostor,)), record)
    assert not vetted.live.volumes[data.name].owned


def test_adopted_volumes_data_may_be_pruned_on_request():
    data = _volume()
    found = _compose(Kind.VOLUME, data.name, "data")
    adoption, _ = _adopt(state(volumes=(data,)), found)
    view, record = adoption.view(live(volumes=(found,)), Record())
    plan = plan_changes(state(), view, record=record, prune_volumes=True)
    [change] = plan.changes
    assert (change.action, change.name, change.blocked, change.error) == (Action.DELETE, data.name, "", "")


def test_the_record_keeps_claims_and_a_second_adoption_takes_nothing():
    web, data = container("web"), _volume()
    desired = state(web, volumes=(data,))
    objs = (_compose(Kind.CONTAINER, f"{STACK}_web_1", "web"), _compose(Kind.VOLUME, data.name, "data"))
    adoption, _ = _adopt(desired, *objs)
    store = StateStore.in_memory()
    book = store.stack("engine", STACK)
    book.taken_over((t.adopted, t.driver, t.claim) for t in adoption.taken)
    renamed = (adoption.taken[0].adopted if adoption.taken[0].found.kind is Kind.CONTAINER
               else adoption.taken[1].adopted)
    observed = live(renamed, volumes=(objs[1],))
    record = book.record(observed)
    assert {k for k in record.claims} == {(Kind.CONTAINER, web.name, renamed.id), (Kind.VOLUME, data.name, data.name)}
    assert plan_changes(desired, observed, record=record).changes == ()
    again = plan_adoption(desired, PROJECT, _found(renamed, objs[1]), observed, record, _same)
    assert again.takeovers == ()
