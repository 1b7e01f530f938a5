"""The Docker runtime driver's answer to a container the engine cannot start after a crash. No engine:
a fake API client raises what dockerd 20.10 answered in a reproduction (dockerd killed mid-start, restarted)."""
from __future__ import annotations

from types import SimpleNamespace

import docker.errors
import pytest

from reconciler.drivers import DriverContext
from reconciler.errors import PermanentError, RecreateRequired
from reconciler_docker.containers import DockerRuntimeDriver

TASK = "f704dbf75cbbde6dfbb7b43df8c6df850f30c91d2f9f38d7b4d08890206567ea"


class FakeAPI:
    """Answers ``start`` with a given engine error; records what it was asked."""

    def __init__(self, status: int, explanation: str) -> None:
        self.error = docker.errors.APIError(f"{status} Server Error", response=SimpleNamespace(status_code=status),
                                            explanation=explanation)
        self.calls: list[tuple] = []

    def start(self, name):
        self.calls.append(("start", name))
        raise self.error

    def unpause(self, name):
        self.calls.append(("unpause", name))


def _driver(api: FakeAPI) -> DockerRuntimeDriver:
    context = DriverContext(stack="s")
    context.shared["reconciler_docker.api"] = api  # the run's one client (engine.api_client)
    return DockerRuntimeDriver(context)


@pytest.mark.parametrize("explanation", [
    f"task {TASK}: already exists",  # dockerd 20.10, reproduced here
    f'container "{TASK}": already exists',  # older engines (moby#36145)
    "failed to create shim: OCI runtime create failed: id already in use: unknown",  # runc state left behind
])
def test_a_task_left_by_an_engine_crash_asks_for_a_new_container(explanation):
    with pytest.raises(RecreateRequired, match="start container s-web-1: .*already"):
        _driver(FakeAPI(500, explanation)).start("s-web-1")


@pytest.mark.parametrize("status, explanation", [
    (500, "OCI runtime create failed: exec: \"nope\": executable file not found in $PATH"),
    (500, "endpoint with name s-web-1 already exists in network s_back"),
    (404, "No such container: s-web-1"),
])
def test_other_start_failures_stay_ordinary_errors(status, explanation):
    with pytest.raises(PermanentError) as caught:
        _driver(FakeAPI(status, explanation)).start("s-web-1")
    assert not isinstance(caught.value, RecreateRequired)


def test_a_paused_container_is_unpaused():
    api = FakeAPI(409, "Container s-web-1 is paused, unpause the container before stopping or killing")
    _driver(api).start("s-web-1")
    assert api.calls == [("start", "s-web-1"), ("unpause", "s-web-1")]
