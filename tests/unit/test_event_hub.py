"""EventHub: one stream per backend, each event delivered to the keys it concerns (a fake driver, no engine)."""
from __future__ import annotations

import queue
import threading
import time

import pytest

from reconciler.drivers import DriverContext, ObjectDriver, stream_opened
from reconciler.errors import TemporaryError
from reconciler.events import EventHub
from reconciler.model import EngineEvent, Kind
from reconciler.retry import RetryPolicy

FAST = RetryPolicy(base=0.01, cap=0.05)
BREAK = object()  # put on a feed: the stream breaks (TemporaryError)
CRASH = object()  # put on a feed: the driver has a bug (RuntimeError)


class Backend:
    """A backend whose every open stream gets each event ``emit`` is given."""

    def __init__(self) -> None:
        self.feeds: list[queue.SimpleQueue] = []
        self.opened = 0

    def emit(self, item) -> None:
        for feed in list(self.feeds):
            feed.put(item)

    def stream(self, stop) -> queue.SimpleQueue:
        feed: queue.SimpleQueue = queue.SimpleQueue()
        self.feeds.append(feed)
        self.opened += 1
        stream_opened(stop)
        return feed

    def items(self, feed: queue.SimpleQueue, stop):
        try:
            while not stop.is_set():
                try:
                    item = feed.get(timeout=0.01)
                except queue.Empty:
                    continue
                if item is BREAK:
                    raise TemporaryError("the stream broke")
                if item is CRASH:
                    raise RuntimeError("a driver's bug")
                yield item
        finally:
            self.feeds.remove(feed)


class _Fake(ObjectDriver):
    kind = Kind.CONTAINER

    def __init__(self, backend: Backend, url: str | None = None) -> None:
        self.backend = backend
        self.context = DriverContext(stack="", engine_url=url)

    def observe(self, stack, wanted):
        return []

    def delete(self, live) -> None:
        pass


class Streaming(_Fake):
    """A driver with ``engine_events``: every event of the backend."""

    def engine_events(self, stop):
        yield from self.backend.items(self.backend.stream(stop), stop)


class NamesOnly(_Fake):
    """A third-party driver with only ``events(stack, names, stop)``."""

    def events(self, stack, names, stop):
        for event in self.backend.items(self.backend.stream(stop), stop):
            if event.stack == stack or event.name in names:
                yield event.name


class Received:
    """What the hub delivered, by key."""

    def __init__(self) -> None:
        self.items: queue.SimpleQueue = queue.SimpleQueue()

    def __call__(self, key: str, event: EngineEvent | None) -> None:
        self.items.put((key, event))

    def settle(self, quiet: float = 0.15) -> list[tuple[str, EngineEvent | None]]:
        """Everything delivered until nothing came for ``quiet`` seconds."""
        out = []
        while True:
            try:
                out.append(self.items.get(timeout=quiet))
            except queue.Empty:
                return out

    def events(self) -> list[tuple[str, EngineEvent]]:
        return [(key, event) for key, event in self.settle() if event is not None]


@pytest.fixture
def stop():
    stop = threading.Event()
    yield stop
    stop.set()


def _hub(received: Received, stop: threading.Event, **kwargs) -> EventHub:
    hub = EventHub(received, backoff=FAST, **kwargs)
    hub.start(stop)
    return hub


def container(name: str, action: str = "die", *, stack: str = "", id: str = "") -> EngineEvent:
    return EngineEvent(Kind.CONTAINER, name, action, stack=stack, id=id or f"id-{name}")


def test_one_stream_serves_every_key_and_each_opening_is_a_look_for_all(stop):
    backend, received = Backend(), Received()
    hub = EventHub(received, backoff=FAST)
    for n in range(10):
        hub.follow(f"k{n}", f"s{n}", {f"s{n}_app"}, [Streaming(backend)])  # a driver instance per stack
    hub.start(stop)
    looks = received.settle()
    assert hub.streams() == 1 and backend.opened == 1
    assert sorted(key for key, event in looks if event is None) == [f"k{n}" for n in range(10)]
    hub.follow("late", "s-late", {"late_app"}, [Streaming(backend)])  # joins the open stream: its own pass reads
    assert received.settle() == [] and backend.opened == 1


def test_a_stack_label_reaches_the_keys_of_that_stack_only(stop):
    backend, received = Backend(), Received()
    hub = _hub(received, stop)
    hub.follow("k1", "s1", {"s1_app"}, [Streaming(backend)])
    hub.follow("k2", "s2", {"s2_app"}, [Streaming(backend)])
    received.settle()
    backend.emit(container("anything", stack="s2"))
    assert [key for key, _ in received.events()] == ["k2"]


def test_an_unlabelled_object_reaches_the_keys_whose_names_hold_it_and_a_stranger_reaches_nobody(stop):
    backend, received = Backend(), Received()
    hub = _hub(received, stop)
    hub.follow("k1", "s1", {"s1_app", "s1_net"}, [Streaming(backend)])
    hub.follow("k2", "s2", {"s2_app"}, [Streaming(backend)])
    received.settle()
    backend.emit(EngineEvent(Kind.NETWORK, "s1_net", "destroy", id="n1"))
    backend.emit(EngineEvent(Kind.NETWORK, "someone_elses", "destroy", id="n2"))
    backend.emit(EngineEvent(Kind.CONTAINER, "s2_app-renamed", "rename", old_name="s2_app", id="c"))
    assert [(key, event.name) for key, event in received.events()] == [("k1", "s1_net"), ("k2", "s2_app-renamed")]


def test_a_network_connect_goes_to_the_stack_of_its_container_not_to_the_networks(stop):
    backend, received = Backend(), Received()
    hub = _hub(received, stop)
    hub.follow("k1", "s1", {"s1_app", "s1_net"}, [Streaming(backend)])
    hub.follow("k2", "s2", {"s2_app"}, [Streaming(backend)])
    received.settle()
    backend.emit(container("s2_app", "start", stack="s2", id="c2"))  # the hub learns c2 is s2's
    backend.emit(EngineEvent(Kind.NETWORK, "s1_net", "connect", id="n1", container="c2"))
    assert [(key, event.action) for key, event in received.events()] == [("k2", "start"), ("k2", "connect")]


def test_a_container_the_hub_was_told_about_and_one_it_never_saw(stop):
    backend, received = Backend(), Received()
    hub = _hub(received, stop)
    hub.follow("k1", "s1", {"s1_data"}, [Streaming(backend)])
    hub.follow("k3", "s3", {"s3_app"}, [Streaming(backend)])
    received.settle()
    hub.known("c9", "s3")
    backend.emit(EngineEvent(Kind.VOLUME, "s1_data", "mount", container="c9"))
    backend.emit(EngineEvent(Kind.VOLUME, "s1_data", "unmount", container="never-seen"))  # unknown: by name
    assert [(key, event.action) for key, event in received.events()] == [("k3", "mount"), ("k1", "unmount")]


def test_a_destroyed_container_is_forgotten(stop):
    backend, received = Backend(), Received()
    hub = _hub(received, stop)
    hub.follow("k1", "s1", {"s1_net"}, [Streaming(backend)])
    hub.follow("k2", "s2", {"s2_app"}, [Streaming(backend)])
    received.settle()
    backend.emit(container("s2_app", "create", stack="s2", id="c2"))
    backend.emit(container("s2_app", "destroy", stack="s2", id="c2"))
    backend.emit(EngineEvent(Kind.NETWORK, "s1_net", "disconnect", container="c2"))
    assert [(key, event.action) for key, event in received.events()] == [
        ("k2", "create"), ("k2", "destroy"), ("k1", "disconnect")]


def test_names_follow_each_load_and_a_forgotten_key_hears_nothing_more(stop):
    backend, received = Backend(), Received()
    hub = _hub(received, stop)
    hub.follow("k1", "s1", {"old"}, [Streaming(backend)])
    hub.follow("k2", "s2", {"x"}, [Streaming(backend)])
    hub.follow("k1", "s1", {"new"}, [Streaming(backend)])
    received.settle()
    backend.emit(EngineEvent(Kind.NETWORK, "old", "destroy"))
    backend.emit(EngineEvent(Kind.NETWORK, "new", "destroy"))
    assert [(key, event.name) for key, event in received.events()] == [("k1", "new")]
    hub.forget("k1")
    backend.emit(EngineEvent(Kind.NETWORK, "new", "destroy"))
    backend.emit(container("any", stack="s1"))
    assert received.events() == [] and hub.streams() == 1
    hub.forget("k2")
    _eventually(lambda: hub.streams() == 0 and not backend.feeds)  # nobody follows it: closed


def test_backends_apart_get_a_stream_each_and_deliver_only_their_own_events(stop):
    a, b, received = Backend(), Backend(), Received()
    hub = _hub(received, stop)
    hub.follow("k1", "s1", {"app"}, [Streaming(a, "unix:///a.sock")])
    hub.follow("k2", "s2", {"app"}, [Streaming(b, "unix:///b.sock")])
    received.settle()
    assert hub.streams() == 2
    a.emit(EngineEvent(Kind.CONTAINER, "app", "die"))
    assert [key for key, _ in received.events()] == ["k1"]


def test_streams_start_with_the_hub_and_end_with_its_stop():
    backend, received, stop = Backend(), Received(), threading.Event()
    hub = EventHub(received, backoff=FAST)
    hub.follow("k1", "s1", {"a"}, [Streaming(backend), NamesOnly(backend)])
    assert hub.streams() == 0 and backend.opened == 0
    hub.start(stop)
    received.settle()
    assert hub.streams() == 2 and backend.opened == 2
    stop.set()
    _eventually(lambda: hub.streams() == 0)
    hub.follow("k2", "s2", {"b"}, [Streaming(backend, "unix:///other.sock")])  # after stop: nothing starts
    assert hub.streams() == 0


def test_a_driver_with_only_events_gets_a_follower_per_key_reading_the_names_of_the_last_load(stop):
    backend, received = Backend(), Received()
    hub = _hub(received, stop)
    hub.follow("k1", "s1", {"s1_app"}, [NamesOnly(backend)])
    hub.follow("k2", "s2", {"s2_app"}, [NamesOnly(backend)])
    received.settle()
    assert hub.streams() == 2 and backend.opened == 2
    hub.follow("k1", "s1", {"s1_app", "s1_new"}, [NamesOnly(backend)])  # the same follower, new names
    backend.emit(EngineEvent(Kind.NETWORK, "s1_new", "create"))
    backend.emit(container("x", stack="s2"))
    assert sorted((key, event.name, event.action, event.stack) for key, event in received.events()) == [
        ("k1", "s1_new", "", "s1"), ("k2", "x", "", "s2")]
    assert backend.opened == 2
    hub.forget("k2")
    _eventually(lambda: hub.streams() == 1)


def test_no_stream_dies_of_a_broken_stream_a_driver_bug_or_a_receiver_bug(stop, caplog):
    backend, errors = Backend(), []
    got = Received()

    def deliver(key, event):
        if event is not None and event.name == "poison":
            raise ValueError("the receiver's bug")
        got(key, event)

    hub = _hub(deliver, stop, on_error=errors.append)
    hub.follow("k1", "s1", {"poison", "fine"}, [Streaming(backend)])
    got.settle()
    backend.emit(BREAK)
    assert [event for _, event in got.settle()] == [None]  # opened again: a look
    backend.emit(CRASH)
    assert [event for _, event in got.settle()] == [None]
    backend.emit(EngineEvent(Kind.NETWORK, "poison", "destroy"))
    backend.emit(EngineEvent(Kind.NETWORK, "fine", "destroy"))
    assert [event.name for _, event in got.events()] == ["fine"]
    assert backend.opened == 3 and hub.streams() == 1
    assert errors == ["events-Streaming", "events-Streaming"]  # the driver's bug and the receiver's, counted
    assert "RuntimeError: a driver's bug" in caplog.text and "ValueError: the receiver's bug" in caplog.text


def test_a_source_without_events_is_not_followed(stop):
    received = Received()
    hub = _hub(received, stop)
    hub.follow("k1", "s1", {"a"}, [_Fake(Backend())])
    assert received.settle() == [] and hub.streams() == 0


def _eventually(check, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the timeout"
        time.sleep(0.01)


class Silent(_Fake):
    """A driver whose stream never says it is open (no ``stream_opened``)."""

    def engine_events(self, stop):
        stop.wait()
        return iter(())


def test_unbroken_since_is_when_every_stream_of_a_key_last_opened_and_none_while_one_is_not(stop):
    backend, received = Backend(), Received()
    hub = _hub(received, stop)
    assert hub.unbroken_since("k1") is None  # follows nothing
    before = time.monotonic()
    hub.follow("k1", "s1", {"s1_app"}, [Streaming(backend)])
    received.settle()
    opened = hub.unbroken_since("k1")
    assert opened is not None and opened >= before
    backend.emit(container("s1_app", stack="s1"))
    received.settle()
    assert hub.unbroken_since("k1") == opened  # events do not break it
    backend.emit(BREAK)
    received.settle()
    again = hub.unbroken_since("k1")
    assert again is not None and again > opened  # opened again since: a break in between
    hub.follow("k2", "s2", {"s2_app"}, [Streaming(backend), Silent(Backend(), url="unix:///other")])
    received.settle()
    assert hub.unbroken_since("k2") is None  # one of its streams never said it is open


def test_a_stream_that_breaks_is_not_unbroken_until_it_opens_again(stop):
    backend, received = Backend(), Received()
    hub = EventHub(received, backoff=RetryPolicy(base=0.5, cap=0.5))
    hub.follow("k1", "s1", {"s1_app"}, [Streaming(backend)])
    hub.start(stop)
    _eventually(lambda: hub.unbroken_since("k1") is not None)
    backend.emit(BREAK)
    _eventually(lambda: hub.unbroken_since("k1") is None)  # during the backoff
    _eventually(lambda: hub.unbroken_since("k1") is not None)
