"""Our built-in volume and network drivers pass the same contract a plugin author runs."""
from __future__ import annotations

from dataclasses import replace

import docker
import pytest

from reconciler.errors import PermanentError
from reconciler.labels import STACK as STACK_LABEL
from reconciler.model import VolumeSpec
from reconciler.testing import (
    STACK_PREFIX,
    NetworkDriverContract,
    StorageDriverContract,
    assert_maps_errors,
    with_hash,
)
from reconciler_docker.networks import DockerNetworkDriver
from reconciler_docker.volumes import DockerVolumeDriver

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module", autouse=True)
def _no_contract_leftovers():
    """Remove what a crashed earlier run of the kit left (its stacks are all named contract-…)."""
    api = docker.from_env(version="auto").api
    for net in api.networks(filters={"label": [STACK_LABEL]}):
        if (net.get("Labels") or {}).get(STACK_LABEL, "").startswith(STACK_PREFIX):
            api.remove_network(net["Id"])
    for vol in api.volumes(filters={"label": [STACK_LABEL]}).get("Volumes") or []:
        if (vol.get("Labels") or {}).get(STACK_LABEL, "").startswith(STACK_PREFIX):
            api.remove_volume(vol["Name"], force=True)
    api.close()


class TestDockerVolumeDriver(StorageDriverContract):
    driver_name = "local"

    @pytest.fixture
    def driver(self, driver_context):
        return DockerVolumeDriver(driver_context)

    @pytest.fixture
    def spec(self, unique_name):
        return VolumeSpec(key="data", name=unique_name, driver="local",
                          options=(("device", "tmpfs"), ("o", "size=1m"), ("type", "tmpfs")))

    def changed(self, spec):
        return replace(spec, options=(("device", "tmpfs"), ("o", "size=2m"), ("type", "tmpfs")))

    def invalid(self, spec):
        return replace(spec, options=(("bogus", "1"),))  # (an unknown driver also works, but costs 15 s)

    @pytest.fixture
    def unreachable_driver(self, unreachable_context):
        return DockerVolumeDriver(unreachable_context)


class TestDockerNetworkDriver(NetworkDriverContract):
    driver_name = "bridge"

    @pytest.fixture
    def driver(self, driver_context):
        return DockerNetworkDriver(driver_context)

    def changed(self, spec):
        return replace(spec, internal=True)

    def invalid(self, spec):
        return replace(spec, driver="host")  # the engine allows one host network

    @pytest.fixture
    def unreachable_driver(self, unreachable_context):
        return DockerNetworkDriver(unreachable_context)

    def test_an_invalid_subnet_is_a_permanent_error(self, harness, desired):
        bad = with_hash(replace(desired, subnet="not-a-subnet"))
        assert_maps_errors(lambda: harness.create(bad), PermanentError)
