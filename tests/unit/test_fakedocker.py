"""The docker plugin's drivers on the fake Docker API: the driver contract kit, and the engine answers they rely on.

No engine: ``reconciler.testing.fakedocker.FakeDockerAPI`` is handed to the plugin
through its one seam, ``reconciler.sdk.docker.use_client``. The contract runs
prove the fake answers as the plugin expects of an engine (the same kit runs
against a real one in tests/integration/test_contract_docker*.py).
"""
from __future__ import annotations

import inspect
import threading
import time
from dataclasses import replace

import docker
import pytest
import requests

from reconciler.drivers import DriverContext
from reconciler.errors import PermanentError
from reconciler.labels import CONFIG_HASH, KIND, STACK
from reconciler.model import ContainerSpec, Kind, LiveObject, NetworkSpec, VolumeSpec
from reconciler.testing import NetworkDriverContract, RuntimeDriverContract, StorageDriverContract, with_hash
from reconciler.testing.fakedocker import FakeDockerAPI
from reconciler_docker.containers import DockerRuntimeDriver
from reconciler.sdk.docker import use_client
from reconciler_docker.networks import DockerNetworkDriver
from reconciler_docker.volumes import DockerVolumeDriver

IMAGE = "busybox:1"


class _OnTheFake:
    """The contract kit pointed at a docker plugin driver whose run was handed a fake engine."""

    driver_class: type

    @pytest.fixture
    def fake(self, driver_context):
        fake = FakeDockerAPI()
        fake.add_image(IMAGE)
        use_client(driver_context, fake)
        yield fake
        # Torn down after the kit's own clean-up: it must have removed everything it made.
        assert fake.containers(all=True) == []
        assert fake.volumes()["Volumes"] == []
        assert sorted(n["Name"] for n in fake.networks()) == ["bridge", "host", "none"]

    @pytest.fixture
    def driver(self, driver_context, fake):
        return self.driver_class(driver_context)

    @pytest.fixture
    def unreachable_driver(self, unreachable_context):
        down = FakeDockerAPI()
        for verb in ("containers", "networks", "volumes"):
            down.fail(verb, requests.ConnectionError("Connection refused"))
        use_client(unreachable_context, down)
        return self.driver_class(unreachable_context)


class TestDockerVolumesOnTheFake(_OnTheFake, StorageDriverContract):
    driver_name = "local"
    driver_class = DockerVolumeDriver


class TestDockerNetworksOnTheFake(_OnTheFake, NetworkDriverContract):
    driver_name = "bridge"
    driver_class = DockerNetworkDriver

    def changed(self, spec):
        return replace(spec, internal=True)


class TestDockerRuntimeOnTheFake(_OnTheFake, RuntimeDriverContract):
    driver_class = DockerRuntimeDriver

    @pytest.fixture
    def image_ref(self):
        return IMAGE


# -- what the plugin relies on ---------------------------------------------------------------


def _context(fake: FakeDockerAPI, **fields) -> DriverContext:
    context = DriverContext(stack="s", **fields)
    use_client(context, fake, engine_id="E1", swarm={"ControlAvailable": True})
    return context


def test_the_fake_takes_exactly_the_arguments_docker_py_takes():
    """A driver passing an argument the real client refuses must fail in unit tests too."""
    verbs = [name for name in dir(FakeDockerAPI)
             if not name.startswith("_") and callable(getattr(FakeDockerAPI, name)) and hasattr(docker.APIClient, name)]
    assert {"containers", "create_container", "start", "images", "pull", "build", "create_network",
            "create_volume", "events", "create_host_config"} <= set(verbs)
    for verb in verbs:
        real, fake = inspect.signature(getattr(docker.APIClient, verb)), inspect.signature(getattr(FakeDockerAPI, verb))
        assert list(fake.parameters.items()) == list(real.parameters.items()), verb


def test_a_retried_create_finds_the_container_the_first_made():
    """The name in use answers 409, and the runtime driver takes the container it made before."""
    fake = FakeDockerAPI()
    fake.add_image(IMAGE)
    driver = DockerRuntimeDriver(_context(fake))
    spec = with_hash(ContainerSpec(key="web", name="s-web-1", replica=1, image_key=None, image_ref=IMAGE))
    labels = {STACK: "s", CONFIG_HASH: spec.config_hash}
    first = driver.create(spec, labels)
    assert driver.create(spec, labels) == first
    assert [call.verb for call in fake.writes()] == ["create_container", "create_container"]
    with pytest.raises(docker.errors.APIError) as conflict:
        fake.create_container(IMAGE, name="s-web-1")
    assert conflict.value.status_code == 409


def test_a_retried_network_or_volume_create_answers_the_first():
    fake = FakeDockerAPI()
    context = _context(fake)
    labels = {STACK: "s", CONFIG_HASH: "h1"}
    network = with_hash(NetworkSpec(key="back", name="s_back"))
    first = DockerNetworkDriver(context).create(network, labels)
    assert DockerNetworkDriver(context).create(network, labels) == first  # a 409, then the one that is ours
    volume = with_hash(VolumeSpec(key="data", name="s_data"))
    assert DockerVolumeDriver(context).create(volume, labels) == DockerVolumeDriver(context).create(volume, {})
    assert fake.inspect_volume("s_data")["Labels"] == labels  # the engine keeps the first labels


def test_deleting_a_gone_network_or_volume_is_quiet_and_any_other_refusal_fails():
    """``engine_errors(missing_ok=True)``: the engine's 404 ends the delete quietly; a 409 is still an error."""
    fake = FakeDockerAPI()
    context = _context(fake)
    gone_network = LiveObject(kind=Kind.NETWORK, name="s_back", id="s_back")
    gone_volume = LiveObject(kind=Kind.VOLUME, name="s_data", id="s_data")
    DockerNetworkDriver(context).delete(gone_network)
    DockerVolumeDriver(context).delete(gone_volume)
    assert [call.verb for call in fake.writes()] == ["remove_network", "remove_volume"]
    fake.fail("remove_volume", 409, "remove s_data: volume is in use")
    with pytest.raises(PermanentError, match="remove volume s_data: remove s_data: volume is in use"):
        DockerVolumeDriver(context).delete(gone_volume)


def test_the_seam_counts_reads_and_writes_and_answers_the_engine_identity():
    fake = FakeDockerAPI()
    context = _context(fake, address_pools=())  # the engine picks the subnet: no list before the create
    driver = DockerNetworkDriver(context)
    assert (driver.engine_id(), context.stats["read"], context.stats["write"]) == ("E1", 0, 0)
    network = with_hash(NetworkSpec(key="back", name="s_back"))
    driver.create(network, {STACK: "s", KIND: "network"})
    driver.observe("s", {network.name: network})  # the network driver reads only the names wanted
    assert (context.stats["read"], context.stats["write"]) == (1, 1)
    assert [call.verb for call in fake.calls] == ["create_network", "networks"]


def test_the_runtime_driver_follows_the_stacks_containers_in_the_event_stream():
    fake = FakeDockerAPI()
    fake.add_image(IMAGE)
    driver, stop, names = DockerRuntimeDriver(_context(fake)), threading.Event(), []
    follower = threading.Thread(target=lambda: names.extend(driver.events("s", {"s_back"}, stop)))
    follower.start()
    for _ in range(200):
        if fake.count("events"):
            break
        time.sleep(0.01)
    fake.create_container(IMAGE, name="s-web-1", labels={STACK: "s", KIND: "container"})
    fake.create_container(IMAGE, name="other-web-1", labels={STACK: "other", KIND: "container"})
    fake.create_network("s_back")
    fake.start("s-web-1")
    stop.set()
    follower.join(timeout=10)
    assert not follower.is_alive() and names == ["s-web-1", "s_back", "s-web-1"]


def test_a_container_being_removed_is_not_observed_and_its_successor_waits_for_the_name():
    """A `docker rm -f` in flight: the engine lists the container as ``removing`` and still holds its name. A pass
    sees it gone (it plans the successor), and the successor's create waits until the name is free."""
    fake = FakeDockerAPI()
    fake.add_image(IMAGE)
    driver = DockerRuntimeDriver(_context(fake))
    spec = with_hash(ContainerSpec(key="web", name="s-web-1", replica=1, image_key=None, image_ref=IMAGE))
    labels = {STACK: "s", KIND: "container", CONFIG_HASH: spec.config_hash}
    old = driver.create(spec, labels)
    fake.mark_removing(old)
    assert driver.observe("s", {spec.name: spec}) == []
    threading.Timer(0.5, lambda: fake.remove_container(old, force=True)).start()
    started = time.monotonic()
    new = driver.create(spec, labels)
    assert new != old and 0.4 < time.monotonic() - started < 5
    assert fake.inspect_container("s-web-1")["Id"] == new
