"""The Docker runtime driver's answer to a container the engine cannot start after a crash. No engine:
the fake Docker API answers what dockerd 20.10 answered in a reproduction (dockerd killed mid-start, restarted)."""
from __future__ import annotations

import pytest

from reconciler.drivers import DriverContext
from reconciler.errors import PermanentError, RecreateRequired
from reconciler.testing.fakedocker import FakeDockerAPI
from reconciler_docker.containers import DockerRuntimeDriver
from reconciler.sdk.docker import use_client

TASK = "f704dbf75cbbde6dfbb7b43df8c6df850f30c91d2f9f38d7b4d08890206567ea"


def _failing_start(status: int, explanation: str) -> FakeDockerAPI:
    """An engine that answers ``start`` with the given error."""
    api = FakeDockerAPI()
    api.fail("start", status, explanation)
    return api


def _driver(api: FakeDockerAPI) -> DockerRuntimeDriver:
    context = DriverContext(stack="s")
    use_client(context, api)
    return DockerRuntimeDriver(context)


@pytest.mark.parametrize("explanation", [
    f"task {TASK}: already exists",  # dockerd 20.10, reproduced here
    f'container "{TASK}": already exists',  # older engines (moby#36145)
    "failed to create shim: OCI runtime create failed: id already in use: unknown",  # runc state left behind
])
def test_a_task_left_by_an_engine_crash_asks_for_a_new_container(explanation):
    with pytest.raises(RecreateRequired, match="start container s-web-1: .*already"):
        _driver(_failing_start(500, explanation)).start("s-web-1")


@pytest.mark.parametrize("status, explanation", [
    (500, "OCI runtime create failed: exec: \"nope\": executable file not found in $PATH"),
    (500, "endpoint with name s-web-1 already exists in network s_back"),
    (404, "No such container: s-web-1"),
])
def test_other_start_failures_stay_ordinary_errors(status, explanation):
    with pytest.raises(PermanentError) as caught:
        _driver(_failing_start(status, explanation)).start("s-web-1")
    assert not isinstance(caught.value, RecreateRequired)


def test_a_paused_container_is_unpaused():
    api = FakeDockerAPI()
    api.add_image("busybox:1")
    api.create_container("busybox:1", name="s-web-1")
    api.start("s-web-1")
    api.pause("s-web-1")
    api.calls.clear()
    _driver(api).start("s-web-1")
    assert [(call.verb, *call.args) for call in api.calls] == [("start", "s-web-1"), ("unpause", "s-web-1")]
    assert api.inspect_container("s-web-1")["State"]["Status"] == "running"
