"""The Docker runtime's engine events as EngineEvents: the stack a container claims, the container a connect names."""
from __future__ import annotations

from reconciler.labels import KIND, STACK
from reconciler.model import EngineEvent, Kind
from reconciler_docker.eventstream import engine_event, event_name

CID = "c" * 64


def raw(type_: str, action: str, id: str, **attributes: str) -> dict:
    return {"Type": type_, "Action": action, "Actor": {"ID": id, "Attributes": attributes}}


def test_a_container_event_carries_the_stack_its_labels_claim_for_a_container():
    labels = {STACK: "s", KIND: "container"}
    event = engine_event(raw("container", "die", CID, name="s-web-1", exitCode="137", **labels))
    assert event == EngineEvent(Kind.CONTAINER, "s-web-1", "die", stack="s", id=CID)


def test_labels_inherited_from_an_image_claim_no_stack():
    assert engine_event(raw("container", "start", CID, name="x", **{STACK: "s", KIND: "image"})).stack == ""


def test_a_rename_names_both_names():
    event = engine_event(raw("container", "rename", CID, name="s-web-1-old-cccccccccccc", oldName="/s-web-1"))
    assert (event.name, event.old_name) == ("s-web-1-old-cccccccccccc", "s-web-1")


def test_a_network_connect_and_a_volume_mount_name_their_container_and_a_volume_has_no_id():
    assert engine_event(raw("network", "connect", "n1", name="s_back", container=CID, type="bridge")) == \
        EngineEvent(Kind.NETWORK, "s_back", "connect", id="n1", container=CID)
    assert engine_event(raw("volume", "mount", "s_data", container=CID, destination="/data")) == \
        EngineEvent(Kind.VOLUME, "s_data", "mount", container=CID)


def test_quiet_events_and_types_not_followed_are_dropped():
    assert engine_event(raw("container", "exec_start: sh -c true", CID, name="s-web-1")) is None
    assert engine_event(raw("container", "health_status: healthy", CID, name="s-web-1")) is None
    assert engine_event(raw("image", "pull", "busybox:1", name="busybox")) is None


def test_a_stacks_name_filter_keeps_its_own_containers_and_its_names():
    mine = raw("container", "die", CID, name="s-web-1", **{STACK: "s", KIND: "container"})
    assert event_name(mine, "s", set()) == "s-web-1" and event_name(mine, "other", set()) == ""
    assert event_name(raw("network", "destroy", "n1", name="s_back"), "s", {"s_back"}) == "s_back"
