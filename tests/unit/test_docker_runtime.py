"""The Docker runtime driver's answer to a container the engine cannot start after a crash, or cannot rename
or remove while it restarts one. No engine: the fake Docker API answers what dockerd answered in a reproduction
(dockerd 20.10 killed mid-start, restarted; a container crash-looping under ``restart: unless-stopped``)."""
from __future__ import annotations

import pytest

from reconciler.drivers import DriverContext
from reconciler.errors import PermanentError, RecreateRequired
from reconciler.model import Kind, LiveObject
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


def _running(api: FakeDockerAPI, name: str = "s-web-1") -> str:
    api.add_image("busybox:1")
    container_id = api.create_container("busybox:1", name=name)["Id"]
    api.start(name)
    api.calls.clear()
    return container_id


def test_a_container_the_engine_is_restarting_is_stopped_then_renamed():
    api = FakeDockerAPI()
    container_id = _running(api)
    api.fail("rename", 404, f"sandbox {TASK} not found", times=1)  # dockerd 24, a crash-looping container
    _driver(api).rename(container_id, "s-web-1-old-1")
    assert [call.verb for call in api.calls] == ["rename", "stop", "rename"]
    assert api.inspect_container(container_id)["Name"] == "/s-web-1-old-1"


def test_a_rename_refused_for_another_reason_is_not_retried():
    api = FakeDockerAPI()
    container_id = _running(api)
    api.fail("rename", 409, "Conflict. The container name \"/s-web-1-old-1\" is already in use", times=1)
    with pytest.raises(PermanentError, match="already in use"):
        _driver(api).rename(container_id, "s-web-1-old-1")
    assert [call.verb for call in api.calls] == ["rename"]


def test_a_container_that_runs_again_since_it_was_observed_is_stopped_then_removed():
    api = FakeDockerAPI()
    container_id = _running(api)  # observed exited; its restart policy brought it back
    _driver(api).delete(LiveObject(Kind.CONTAINER, "s-web-1", container_id, state="exited"))
    assert [call.verb for call in api.calls] == ["remove_container", "stop", "remove_container"]
    assert not api.containers(all=True)
