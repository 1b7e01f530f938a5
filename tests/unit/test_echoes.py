"""is_echo: which events a pass's own changes produce (dropped), and which are drift (a pass), row by row."""
from __future__ import annotations

import pytest

from reconciler.events import is_echo
from reconciler.model import EngineEvent, Kind
from reconciler.ownership import aside_name
from reconciler.plan import Action, Change
from reconciler.report import Outcome, Status

OLD = "a" * 64  # the live container a change replaces, starts or deletes
NEW = "b" * 64  # the container a change creates
C, N, V = Kind.CONTAINER, Kind.NETWORK, Kind.VOLUME


def outcome(action: Action, kind: Kind = C, name: str = "s_web", *, live_id: str = "",
            status: Status = Status.OK) -> Outcome:
    return Outcome(Change(action, kind, name, name, live_id=live_id), status)


def event(action: str, kind: Kind = C, name: str = "s_web", *, id: str = "", old_name: str = "",
          container: str = "") -> EngineEvent:
    return EngineEvent(kind, name, action, stack="s", id=id, old_name=old_name, container=container)


CREATE = outcome(Action.CREATE)
START = outcome(Action.START, live_id=OLD)
REPLACE = outcome(Action.REPLACE, live_id=OLD)
DELETE = outcome(Action.DELETE, live_id=OLD)
ASIDE = aside_name("s_web", OLD)


@pytest.mark.parametrize("made", [CREATE, START, REPLACE, outcome(Action.UPDATE, live_id=OLD)],
                         ids=lambda o: o.change.action)
@pytest.mark.parametrize("action", ["create", "start", "unpause", "rename", "attach", "update", "connect"])
def test_what_a_change_that_brings_a_container_up_does_to_it_is_an_echo(made, action):
    assert is_echo(event(action, id=NEW), [made])


@pytest.mark.parametrize("made", [CREATE, START, REPLACE], ids=lambda o: o.change.action)
@pytest.mark.parametrize("action", ["die", "oom"])
def test_a_container_the_pass_created_or_started_dying_is_never_an_echo(made, action):
    assert not is_echo(event(action, id=NEW), [made])
    assert not is_echo(event(action), [made])  # a backend that gives no id: the name alone never excuses it


def test_a_started_container_dying_is_drift_whatever_its_id():
    assert not is_echo(event("die", id=OLD), [START])


@pytest.mark.parametrize("action", ["destroy", "kill", "stop"])
def test_what_removes_a_container_the_pass_only_created_is_not_an_echo(action):
    assert not is_echo(event(action, id=NEW), [CREATE])


@pytest.mark.parametrize("action", ["kill", "stop", "die", "destroy", "rename", "disconnect"])
def test_the_old_container_of_a_replacement_going_away_is_an_echo_by_its_id_or_its_aside_name(action):
    assert is_echo(event(action, id=OLD), [REPLACE])
    assert is_echo(event(action, name=ASIDE), [REPLACE])


def test_the_rename_aside_and_the_rollbacks_restart_of_the_old_container_are_echoes():
    assert is_echo(event("rename", name=ASIDE, old_name="s_web", id=OLD), [REPLACE])
    assert is_echo(event("rename", id=OLD, old_name=ASIDE), [outcome(Action.REPLACE, live_id=OLD,
                                                                      status=Status.FAILED)])
    assert is_echo(event("start", id=OLD), [REPLACE])


@pytest.mark.parametrize("action", ["kill", "stop", "die", "destroy", "remove", "rename", "disconnect"])
def test_a_deleted_container_going_away_is_an_echo(action):
    assert is_echo(event(action, id=OLD), [DELETE])
    assert is_echo(event(action), [DELETE])


@pytest.mark.parametrize("action", ["create", "start"])
def test_a_deleted_container_coming_back_is_not_an_echo(action):
    assert not is_echo(event(action, id=NEW), [DELETE])


def test_a_change_explains_only_its_own_container():
    assert not is_echo(event("start", name="s_other", id=NEW), [CREATE])
    assert not is_echo(event("destroy", name="s_other", id=NEW), [DELETE])


def test_a_skipped_change_did_nothing_and_a_failed_one_did_what_it_did():
    assert not is_echo(event("create", id=NEW), [outcome(Action.CREATE, status=Status.SKIPPED)])
    assert is_echo(event("create", id=NEW), [outcome(Action.CREATE, status=Status.FAILED)])


@pytest.mark.parametrize("kind", [N, V])
@pytest.mark.parametrize("change", [Action.CREATE, Action.REPLACE, Action.DELETE])
@pytest.mark.parametrize("action", ["create", "destroy"])
def test_a_network_or_volume_change_echoes_its_create_and_destroy(kind, change, action):
    made = outcome(change, kind, "s_net", live_id="x")
    assert is_echo(event(action, kind, "s_net"), [made])
    assert not is_echo(event(action, kind, "s_other"), [made])
    assert not is_echo(event(action, Kind.VOLUME if kind is N else N, "s_net"), [made])


@pytest.mark.parametrize("kind, action", [(N, "connect"), (N, "disconnect"), (V, "mount"), (V, "unmount"),
                                          (V, "create")])
def test_connects_mounts_and_volume_creates_are_echoes_when_the_pass_changed_a_container(kind, action):
    # The engine reports a volume's create for each named volume a container is created with, even one that exists.
    attach = event(action, kind, "s_net", container=NEW)
    assert is_echo(attach, [CREATE]) and is_echo(attach, [DELETE]) and is_echo(attach, [START])
    assert not is_echo(attach, [outcome(Action.CREATE, N, "s_other")])
    assert not is_echo(attach, [outcome(Action.CREATE, status=Status.SKIPPED)])
    assert not is_echo(attach, [])


def test_anything_else_is_not_an_echo():
    assert not is_echo(event("die", id=OLD), [])
    assert not is_echo(event("restart", id=NEW), [CREATE])  # the engine's restart policy, not the pass
    assert not is_echo(event("", id=NEW), [CREATE])  # a name from a driver with only ``events``: no verb
    assert not is_echo(event("create", Kind.IMAGE, "busybox"), [outcome(Action.CREATE, Kind.IMAGE, "busybox")])
    assert not is_echo(event("create", N, "s_web"), [CREATE])  # a network named as the container
    assert not is_echo(event("destroy", V, "s_data"), [CREATE])  # a volume removed: only its own change explains it
