"""Step ordering is pure: deletes before their holders go, creates after what they require."""
from __future__ import annotations

from reconciler.graph import Lane, build_steps, dependents_of
from reconciler.model import Kind
from reconciler.plan import Action, Change, Rollout


def ids(steps):
    return {s.id: set(s.after) for s in steps}


def test_network_replace_waits_for_old_containers_and_new_containers_wait_for_it():
    net = Change(Action.REPLACE, Kind.NETWORK, "n", "n")
    web = Change(Action.REPLACE, Kind.CONTAINER, "web", "web", requires=("network:n",), holds=("network:n",))
    graph = ids(build_steps([net, web]))
    assert graph["network:n#down"] == {"container:web#down"}
    assert graph["network:n#up"] == {"network:n#down"}
    assert graph["container:web#up"] == {"container:web#down", "network:n#up"}


def test_requirements_without_changes_add_no_edges():
    web = Change(Action.CREATE, Kind.CONTAINER, "web", "web", requires=("image:x", "network:n"))
    assert ids(build_steps([web])) == {"container:web#up": set()}


def test_dependents_are_found_transitively():
    img = Change(Action.CREATE, Kind.IMAGE, "x", "x")
    db = Change(Action.CREATE, Kind.CONTAINER, "db", "db", requires=("image:x",))
    web = Change(Action.CREATE, Kind.CONTAINER, "web", "web", requires=("container:db",))
    other = Change(Action.CREATE, Kind.CONTAINER, "other", "other")
    steps = build_steps([img, db, web, other])
    assert dependents_of(steps, "image:x#up") == {"container:db#up", "container:web#up"}


def test_dependent_container_comes_down_first():
    db = Change(Action.DELETE, Kind.CONTAINER, "db", "db")
    web = Change(Action.DELETE, Kind.CONTAINER, "web", "web", holds=("container:db",))
    assert ids(build_steps([db, web]))["container:db#down"] == {"container:web#down"}


def test_a_cycle_is_a_plan_error_not_a_traceback():
    import pytest

    from reconciler.errors import PlanError

    a = Change(Action.CREATE, Kind.CONTAINER, "a", "a", requires=("container:b",))
    b = Change(Action.CREATE, Kind.CONTAINER, "b", "b", requires=("container:a",))
    with pytest.raises(PlanError, match="cycle"):
        build_steps([a, b])


def test_a_dependency_wait_is_a_step_of_its_own_before_the_up():
    db = Change(Action.CREATE, Kind.CONTAINER, "db", "db")
    web = Change(Action.REPLACE, Kind.CONTAINER, "web", "web", requires=("container:db",),
                 waits=(("db", "healthy"),), holds=("container:db",))
    graph = ids(build_steps([db, web]))
    assert graph["container:web#wait"] == {"container:db#up"}  # it may wait while the old web stops
    assert graph["container:web#up"] == {"container:web#down", "container:web#wait", "container:db#up"}


def test_stops_and_waits_run_in_the_wait_lane_and_engine_work_in_the_work_lane():
    net = Change(Action.DELETE, Kind.NETWORK, "n", "n")
    old = Change(Action.DELETE, Kind.CONTAINER, "old", "old", holds=("network:n",))
    web = Change(Action.REPLACE, Kind.CONTAINER, "web", "web", waits=(("db", "started"),))
    img = Change(Action.CREATE, Kind.IMAGE, "x", "x")
    lanes = {s.id: s.lane for s in build_steps([net, old, web, img])}
    assert lanes == {
        "network:n#down": Lane.WORK,
        "container:old#down": Lane.WAIT,
        "container:web#down": Lane.WAIT,
        "container:web#wait": Lane.WAIT,
        "container:web#up": Lane.WORK,
        "image:x#up": Lane.WORK,
    }


def test_a_container_replaced_directly_does_not_wait_for_a_dependent_that_rolls():
    # A crash-looping db is removed before its successor is created; web rolls once the new db is up,
    # its old container running meanwhile. Waiting for web's roll before db comes down was a cycle.
    db = Change(Action.REPLACE, Kind.CONTAINER, "db", "db")
    web = Change(Action.REPLACE, Kind.CONTAINER, "web", "web", requires=("container:db",),
                 holds=("container:db",), rollout=Rollout(order="start-first"))
    graph = ids(build_steps([db, web]))
    assert graph["container:db#down"] == set()
    assert graph["container:db#up"] == {"container:db#down"}
    assert graph["container:web#roll"] == {"container:db#up"}
