"""EventHub against the real engine: one stream for five stacks, each event delivered to its stack only.

The stacks are applied with the real ``Reconciler`` in this process, then one
hub follows them all, as the daemon's scheduler does with its stack workers.
"""
from __future__ import annotations

import queue
import random
import threading
import time

import pytest

from reconciler.events import EventHub, is_echo
from reconciler.model import EngineEvent, Kind
from reconciler.reconcile import Reconciler
from reconciler.spec import load_desired

from .conftest import BASE_IMAGE

SPEC = """
name: NAME
volumes:
  data: {}
containers:
  app:
    image: BASE
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
    volumes: ["data:/data"]
    env: {LEVEL: "one"}
    NETWORKS
"""
# Only stacks 1, 2 and 4 have a network, with a small subnet of its own, the others none: the engine's
# default address pools are few, and shared with every other test on the engine.
OWN_NETWORK = "networks: [net]\nnetworks:\n  net: {ipam: {subnet: SUBNET}}"
NO_NETWORK = "network_mode: none"
COUNT = 5


class Deliveries:
    """What the hub delivered, by key, in order."""

    def __init__(self) -> None:
        self.got: queue.SimpleQueue = queue.SimpleQueue()

    def __call__(self, key: str, event: EngineEvent | None) -> None:
        self.got.put((key, event))

    def settle(self, quiet: float = 1.5) -> list[tuple[str, EngineEvent | None]]:
        """Everything delivered until nothing came for ``quiet`` seconds (the engine's events come in bursts)."""
        out = []
        while True:
            try:
                out.append(self.got.get(timeout=quiet))
            except queue.Empty:
                return out


@pytest.fixture
def five(stack):
    """Five stacks of one container with a volume (three: and a network), converged; a started hub."""
    reconciler = Reconciler()
    names = [f"{stack.name}s{n}" for n in range(1, COUNT + 1)]
    specs = {}
    for name in names:
        path = stack.dir / f"{name}.yaml"
        path.write_text(SPEC.replace("NAME", name).replace("BASE", BASE_IMAGE)
                        .replace("NETWORKS", OWN_NETWORK if name in (names[0], names[1], names[3]) else NO_NETWORK)
                        .replace("SUBNET", f"10.247.{random.randrange(256)}.{16 * random.randrange(16)}/28"))
        specs[name] = path
        report = reconciler.apply(_load(reconciler, path))
        assert report.ok, [o.error for o in report.outcomes if o.error]
    deliveries, stop = Deliveries(), threading.Event()
    hub = EventHub(deliveries)
    hub.start(stop)
    try:
        yield reconciler, hub, deliveries, names, specs
    finally:
        stop.set()


def _load(reconciler: Reconciler, path):
    return load_desired([path], drivers=reconciler.driver_names())


def _follow(hub: EventHub, reconciler: Reconciler, name: str, path) -> None:
    desired = _load(reconciler, path)
    hub.follow(name, name, [n for kind in Kind for n in desired.of(kind)], reconciler.event_sources(name))


def _follow_all(hub, reconciler, names, specs, engine) -> None:
    """Follow the five, and tell the hub whose their containers are (as a scheduler does from a pass's state)."""
    for name in names:
        _follow(hub, reconciler, name, specs[name])
        for container in engine.containers(all=True, filters={"name": f"^/{name}-app-1$"}):
            hub.known(container["Id"], name)


def test_one_stream_per_backend_follows_five_stacks_and_opening_it_is_a_look_for_each(five, engine):
    reconciler, hub, deliveries, names, specs = five
    _follow(hub, reconciler, names[0], specs[names[0]])
    first = deliveries.settle()
    one = hub.streams()
    _follow_all(hub, reconciler, names, specs, engine)
    got = deliveries.settle()
    # One stream per driver class on the engine: the docker runtime's (containers, networks, volumes), and the
    # swarm plugin's (services; on an engine that manages no Swarm it waits, with no connection).
    backends = {type(d).__name__ for d in reconciler.event_sources(names[0])}
    assert "DockerRuntimeDriver" in backends and hub.streams() == one == len(backends)
    assert first == [(names[0], None)] * len(backends)  # each stream, once open, asks its keys to look
    assert got == []  # the others joined open streams: their next pass reads the state after they joined
def test_a_container_removed_by_hand_is_delivered_to_its_stack_only(five, engine):
    reconciler, hub, deliveries, names, specs = five
    _follow_all(hub, reconciler, names, specs, engine)
    deliveries.settle()
    engine.remove_container(f"{names[2]}-app-1", force=True)
    got = deliveries.settle()
    assert got and {key for key, _ in got} == {names[2]}
    assert {"die", "destroy"} <= {event.action for _, event in got}
    assert not any(is_echo(event, ()) for _, event in got)  # no pass caused it: drift


def test_a_container_connected_by_hand_to_another_stacks_network_is_its_own_stacks_news(five, engine):
    reconciler, hub, deliveries, names, specs = five
    _follow_all(hub, reconciler, names, specs, engine)
    deliveries.settle()
    engine.connect_container_to_network(f"{names[1]}-app-1", f"{names[0]}_net")
    got = deliveries.settle()
    assert [(key, event.kind, event.action) for key, event in got] == [(names[1], Kind.NETWORK, "connect")]


def test_every_event_of_a_pass_is_an_echo_of_its_report(five, engine):
    reconciler, hub, deliveries, names, specs = five
    _follow_all(hub, reconciler, names, specs, engine)
    deliveries.settle()
    path = specs[names[3]]
    path.write_text(path.read_text().replace('"one"', '"two"'))  # the container is replaced
    report = reconciler.apply(_load(reconciler, path))
    assert report.ok and [o.change.action.value for o in report.outcomes] == ["replace"]
    got = deliveries.settle()
    assert {key for key, _ in got} == {names[3]}
    actions = {(event.kind, event.action) for _, event in got}
    assert {(Kind.CONTAINER, "create"), (Kind.CONTAINER, "start"), (Kind.CONTAINER, "destroy"),
            (Kind.NETWORK, "connect"), (Kind.VOLUME, "mount")} <= actions, actions
    assert [event for _, event in got if not is_echo(event, report.outcomes)] == []


def test_threads_do_not_grow_with_the_keys_followed(five, engine):
    reconciler, hub, deliveries, names, specs = five
    _follow_all(hub, reconciler, names, specs, engine)
    deliveries.settle()
    five_keys = threading.active_count()
    for n in range(45):
        other = f"{names[0]}x{n}"  # stacks that exist only in the hub: the same engine, the same stream
        hub.follow(other, other, [f"{other}-app-1"], reconciler.event_sources(other))
    deliveries.settle(quiet=0.5)
    time.sleep(0.5)
    assert threading.active_count() == five_keys and hub.streams() == len(reconciler.event_sources(names[0]))
