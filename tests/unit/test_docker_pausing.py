"""The Docker runtime's pause and unpause (a start-first release's snapshot), against the fake Docker API."""
from __future__ import annotations

import pytest

from reconciler.drivers import DriverContext
from reconciler.errors import ReconcilerError
from reconciler.sdk.docker import use_client
from reconciler.testing.fakedocker import FakeDockerAPI
from reconciler_docker.containers import DockerRuntimeDriver


def _running() -> tuple[FakeDockerAPI, DockerRuntimeDriver, str]:
    api = FakeDockerAPI()
    context = DriverContext(stack="s")
    use_client(context, api)
    api.add_image("busybox:latest")
    container = api.create_container("busybox:latest", ["sleep", "60"], name="s-db-1")["Id"]
    api.start(container)
    return api, DockerRuntimeDriver(context), container


def test_pause_then_unpause_and_an_unpause_of_a_running_one_is_fine():
    api, driver, container = _running()
    driver.pause(container)
    assert api.inspect_container(container)["State"]["Paused"] is True
    driver.unpause(container)
    driver.unpause(container)  # not paused: nothing to do
    assert api.inspect_container(container)["State"]["Status"] == "running"


def test_pausing_a_container_that_is_gone_is_an_error_and_unpausing_it_is_not():
    api, driver, container = _running()
    api.remove_container(container, force=True)
    with pytest.raises(ReconcilerError, match="pause container"):
        driver.pause(container)
    driver.unpause(container)
