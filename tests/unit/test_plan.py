"""plan_changes is pure: every case here builds desired and live state by hand."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from reconciler import labels
from reconciler.model import EnvVar, ImageSpec, Kind, LiveObject, Mount, NetworkSpec, VolumeSpec
from reconciler.plan import REDACTED, Action
from reconciler.planner import plan_changes

from .builders import STACK, actions, container, live, live_container, live_image, owned, state


def test_from_nothing_creates_everything_in_kind_order():
    net = NetworkSpec(key="back", name="demo_back", config_hash="n1")
    vol = VolumeSpec(key="data", name="demo_data", config_hash="v1")
    web = container(networks=(("demo_back", ()),), mounts=(Mount("volume", "/d", "demo_data", volume_key="data"),))
    plan = plan_changes(state(web, networks=[net], volumes=[vol]), live(images=()))
    assert actions(plan) == [
        ("create", "image:base:1"),
        ("create", "network:demo_back"),
        ("create", "volume:demo_data"),
        ("create", "container:demo-web-1"),
    ]
    web_change = plan.changes[-1]
    assert set(web_change.requires) == {"image:base:1", "network:demo_back", "volume:demo_data"}


def test_converged_stack_plans_nothing():
    web = container(env=[EnvVar("A", "1")])
    assert plan_changes(state(web), live(live_container(web))).empty


def test_one_env_change_replaces_only_that_container_and_names_the_field():
    web = container(env=[EnvVar("LOG_LEVEL", "debug")])
    old = container(env=[EnvVar("LOG_LEVEL", "info")])
    db = container(key="db")
    current = live(live_container(old, details={"env": {"LOG_LEVEL": "info"}}), live_container(db))
    plan = plan_changes(state(web, db), current)
    assert actions(plan) == [("replace", "container:demo-web-1")]
    change = plan.changes[0]
    assert change.forced_by == ("env.LOG_LEVEL",)
    assert str(change.fields[0]) == 'env.LOG_LEVEL: "info" → "debug"'


def test_secret_values_never_appear_in_the_plan():
    web = container(env=[EnvVar("PASSWORD", "hunter22", secret=True)])
    old = container(env=[EnvVar("PASSWORD", "hunter11", secret=True)])
    current = live(live_container(old, details={"env": {"PASSWORD": "hunter11"}},
                                  labels_extra={labels.SECRET_ENV: "PASSWORD"}))
    plan = plan_changes(state(web), current)
    text = repr(plan)
    assert "hunter" not in text
    assert plan.changes[0].fields[0].new == REDACTED


def test_stopped_container_is_started_and_completed_one_shot_is_left_alone():
    web = container()
    job = container(key="job")
    current = live(live_container(web, state="exited", exit_code=137), live_container(job, state="exited", exit_code=0))
    plan = plan_changes(state(web, job), current)
    assert actions(plan) == [("start", "container:demo-web-1")]
    assert plan.changes[0].reasons == ("state: exited → running",)


def test_failed_one_shot_is_restarted():
    job = container(key="job")
    plan = plan_changes(state(job), live(live_container(job, state="exited", exit_code=1)))
    assert actions(plan) == [("start", "container:demo-job-1")]


def test_removed_container_is_recreated():
    web = container()
    assert actions(plan_changes(state(web), live())) == [("create", "container:demo-web-1")]


def test_unmanaged_name_collision_is_an_error_not_a_takeover():
    web = container()
    plan = plan_changes(state(web), live(live_container(web, owned=False)))
    assert plan.changes[0].error == "container demo-web-1 exists and is not managed by this stack; rename it or remove it by hand"


def test_pruned_container_deleted_volume_kept_network_deleted():
    web = container()
    gone = container(key="old")
    net = NetworkSpec(key="old", name="demo_old", config_hash="n1")
    vol = VolumeSpec(key="data", name="demo_data", config_hash="v1")
    current = live(live_container(web), live_container(gone),
                   networks=[owned(Kind.NETWORK, net)], volumes=[owned(Kind.VOLUME, vol)])
    plan = plan_changes(state(web), current)
    assert actions(plan) == [("delete", "network:demo_old"), ("delete", "container:demo-old-1")]
    assert any("demo_data is no longer in the spec and is kept" in note for note in plan.notes)
    with_volumes = plan_changes(state(web), current, prune_volumes=True)
    assert ("delete", "volume:demo_data") in actions(with_volumes)


def test_scale_down_deletes_highest_replicas():
    one = container(replica=1)
    two = container(replica=2)
    plan = plan_changes(state(one), live(live_container(one), live_container(two)))
    assert actions(plan) == [("delete", "container:demo-web-2")]
    assert "scaled down" in plan.changes[0].reasons[0]


def test_changed_network_is_blocked_and_names_the_field_and_replaces_its_containers():
    old = NetworkSpec(key="back", name="demo_back", subnet="10.9.0.0/24", config_hash="old")
    new = replace(old, subnet="10.9.1.0/24", config_hash="new")
    web = container(networks=(("demo_back", ()),))
    current = live(live_container(web, details={"networks": ["demo_back"]}), networks=[owned(Kind.NETWORK, old)])
    plan = plan_changes(state(web, networks=[new]), current)
    net_change = plan.changes[0]
    assert net_change.action is Action.REPLACE
    assert net_change.forced_by == ("subnet",)
    assert "--recreate-networks" in net_change.blocked
    web_change = plan.changes[1]
    assert web_change.action is Action.REPLACE
    assert "network demo_back is recreated" in web_change.reasons
    assert "network:demo_back" in web_change.holds


def test_rebuilt_image_replaces_its_containers():
    image = ImageSpec(key="app", ref="demo-app:latest", build_context="/ctx", build_hash="new", config_hash="new")
    web = replace(container(image_ref="demo-app:latest"), image_key="app")
    current = live(live_container(web), images=[live_image("demo-app:latest", labels={labels.BUILD_HASH: "old"})])
    plan = plan_changes(state(web, images=[image]), current)
    assert actions(plan) == [("update", "image:demo-app:latest"), ("replace", "container:demo-web-1")]
    assert plan.changes[1].forced_by == ("image",)


def test_image_moved_under_the_container_replaces_it_with_both_ids():
    web = container()
    newer = "sha256:" + "b" * 64
    plan = plan_changes(state(web), live(live_container(web), images=[live_image(image_id=newer)]))
    change = plan.changes[0]
    assert change.action is Action.REPLACE
    assert str(change.fields[0]).startswith("image: sha256:aaaa")
    assert "sha256:bbbb" in str(change.fields[0])


def test_pull_never_and_missing_is_an_error():
    image = ImageSpec(key="base", ref="base:1", pull="never")
    plan = plan_changes(state(container(), images=[image]), live(images=()))
    assert "pull policy is never" in plan.changes[0].error


def test_depends_on_creates_waits_and_reverse_holds():
    db = container(key="db")
    web = container(depends_on=(("db", "healthy"),))
    plan = plan_changes(state(db, web), live())
    web_change = next(c for c in plan.changes if c.name == "demo-web-1")
    assert web_change.waits == (("demo-db-1", "healthy"),)
    assert "container:demo-db-1" in web_change.requires
    assert "container:demo-db-1" in web_change.holds


@pytest.mark.parametrize("state_name", ["running", "restarting"])
def test_running_states_are_converged(state_name):
    web = container()
    assert plan_changes(state(web), live(live_container(web, state=state_name))).empty


def test_plan_is_plain_data_that_serializes():
    from reconciler.render import plan_json

    web = container(env=[EnvVar("A", "2")])
    data = json.loads(plan_json(plan_changes(state(web), live())))
    assert [c["action"] for c in data["changes"]] == ["create"]
    assert data["changes"][0]["id"] == "container:demo-web-1"


def test_container_rewired_by_hand_is_replaced():
    web = container(networks=(("demo_back", ()),))
    current = live(live_container(web, details={"networks": ["bridge"]}))
    change = plan_changes(state(web), current).changes[0]
    assert change.action is Action.REPLACE
    assert str(change.fields[0]) == 'networks: ["bridge"] → ["demo_back"]'


def test_container_without_networks_expects_the_default_bridge():
    web = container()
    on_default = {"networks": ["bridge"], "default_network": "bridge"}  # as the docker runtime reports it
    assert plan_changes(state(web), live(live_container(web, details=on_default))).empty


def test_container_without_networks_moved_off_its_runtime_default_is_replaced():
    web = container()
    moved = {"networks": ["elsewhere"], "default_network": "bridge"}
    change = plan_changes(state(web), live(live_container(web, details=moved))).changes[0]
    assert change.action is Action.REPLACE and "networks" in change.forced_by
    assert str(change.fields[0]) == 'networks: ["elsewhere"] → ["bridge"]'


def test_a_runtime_that_names_no_default_network_is_not_checked_for_it():
    web = container()
    assert plan_changes(state(web), live(live_container(web, details={"networks": ["anything"]}))).empty


def test_fields_at_their_defaults_do_not_change_the_hash():
    from reconciler.hashing import config_hash

    base = {"image": "x:1", "command": ["a"]}
    assert config_hash(base) == config_hash({**base, "privileged": False, "network_mode": None, "labels": {}})
    assert config_hash({**base, "stop_grace_period": 0}) != config_hash(base)


def test_a_volume_moving_to_another_driver_is_removed_by_its_old_driver():
    old = VolumeSpec(key="data", name="demo_data", driver="local", config_hash="old")
    new = replace(old, driver="hostdir", options=(("path", "/srv/d"),), config_hash="new")
    current = live(volumes=[owned(Kind.VOLUME, old, **{labels.DRIVER: "local"})])
    change = plan_changes(state(volumes=[new]), current).changes[0]
    assert change.action is Action.REPLACE
    assert (change.driver, change.live_driver) == ("hostdir", "local")
    assert "driver" in change.forced_by


def test_every_change_carries_a_reason_code_the_json_renders():
    from reconciler.plan import Reason
    from reconciler.render import plan_data

    old = container(env=(EnvVar("A", "1"),))
    new = container(env=(EnvVar("A", "2"),))
    gone = container(key="old")
    stopped = container(key="job")
    plan = plan_changes(state(new, stopped, container(key="fresh")),
                        live(live_container(old), live_container(gone), live_container(stopped, state="exited",
                                                                                          exit_code=1)))
    codes = {c.name: c.reason for c in plan.changes}
    assert codes == {"demo-web-1": Reason.CONFIG_CHANGED, "demo-old-1": Reason.NO_LONGER_IN_SPEC,
                     "demo-job-1": Reason.NOT_RUNNING, "demo-fresh-1": Reason.NEW}
    assert {c["name"]: c["reason"] for c in plan_data(plan)["changes"]} == {
        "demo-web-1": "config-changed", "demo-old-1": "no-longer-in-spec", "demo-job-1": "not-running",
        "demo-fresh-1": "new"}


def test_a_build_is_judged_by_the_labels_the_core_gave_it():
    """Any registry driver that stores the labels it is handed is up to date: no docker-only label."""
    from reconciler.labels import object_labels

    image = ImageSpec(key="app", ref="demo-app:latest", pull="never", build_context="/src", build_hash="h1",
                      config_hash="h1", driver="third-party")
    stored = object_labels(STACK, Kind.IMAGE, image)  # what a driver got in build() and reports back
    current = LiveObject(Kind.IMAGE, image.ref, "sha256:1", stored, owned=True, image_id="sha256:1")
    assert plan_changes(state(images=(image,)), live(images=(current,))).empty
    rebuilt = replace(image, build_hash="h2", config_hash="h2")
    assert actions(plan_changes(state(images=(rebuilt,)), live(images=(current,)))) == [
        ("update", "image:demo-app:latest")]


def test_the_planner_is_pure_and_knows_no_engine():
    """The planner's modules import the plan, the model and pure helpers only: no I/O, no engine client."""
    import ast
    from pathlib import Path

    import reconciler

    pure = {"plan", "planner", "imageplan", "containerplan", "explain", "model", "labels", "hashing", "defaults",
            "ownership", "redact", "values", "fsdrift", "units"}
    for module in ("plan", "planner", "imageplan", "containerplan", "explain", "fsdrift", "ownership"):
        tree = ast.parse((Path(reconciler.__file__).parent / f"{module}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                names = [node.module] if node.module else [a.name for a in node.names]
                assert set(names) <= pure, (module, names)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                roots = {a.name.split(".")[0] for a in node.names} if isinstance(node, ast.Import) else {node.module}
                assert roots <= {"__future__", "dataclasses", "enum", "typing"}, (module, roots)
