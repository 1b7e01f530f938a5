"""The docker plugin's observe with a shared engine: one unfiltered list per kind for every stack's pass of a moment.

Without one (the CLI) the filtered calls stay exactly as they were. No engine: the fake Docker API counts the calls.
"""
from __future__ import annotations

import time

from reconciler.drivers import DriverContext
from reconciler.labels import DRIVER, KIND, STACK
from reconciler.model import ImageSpec, Kind
from reconciler.sdk.docker import use_client
from reconciler.testing.fakedocker import FakeDockerAPI
from reconciler_docker.containers import DockerRuntimeDriver
from reconciler_docker.hostdir import HostDirDriver
from reconciler_docker.images import DockerRegistryDriver, LocalImages
from reconciler_docker.networks import DockerNetworkDriver
from reconciler_docker.volumes import DockerVolumeDriver


def _labels(stack: str, kind: Kind, **more: str) -> dict:
    return {STACK: stack, KIND: kind.value, **more}


def _engine() -> FakeDockerAPI:
    api = FakeDockerAPI()
    api.add_image("busybox:1")
    for stack in ("a", "b"):
        api.create_container("busybox:1", name=f"{stack}-web-1", labels=_labels(stack, Kind.CONTAINER))
        api.create_network(f"{stack}_back", labels=_labels(stack, Kind.NETWORK))
        api.create_volume(f"{stack}_data", labels=_labels(stack, Kind.VOLUME, **{DRIVER: "local"}))
    # A container run from an image a stack built inherits its labels (kind image): not the stack's.
    api.create_container("busybox:1", name="by-hand", labels=_labels("a", Kind.IMAGE))
    api.create_container("busybox:1", name="stranger")
    api.calls.clear()
    return api


def _pass(api: FakeDockerAPI, stack: str, shared: dict | None) -> DriverContext:
    context = DriverContext(stack, engine_shared=shared)
    use_client(context, api)
    context.fresh_after = time.monotonic()
    return context


def _observe(driver_class, context: DriverContext, wanted=()) -> dict:
    return {live.name: live.owned for live in driver_class(context).observe(context.stack, dict.fromkeys(wanted))}


def test_passes_of_one_moment_share_one_list_per_kind_and_each_sees_its_own_objects():
    api, shared = _engine(), {}
    passes = {stack: _pass(api, stack, shared) for stack in ("a", "b")}
    for context in passes.values():  # both passes started before either listed
        assert _observe(DockerRuntimeDriver, context, ["stranger"]) == {f"{context.stack}-web-1": True,
                                                                        "stranger": False}
        assert _observe(DockerNetworkDriver, context) == {f"{context.stack}_back": True}
        assert _observe(DockerVolumeDriver, context) == {f"{context.stack}_data": True}
        assert _observe(HostDirDriver, context) == {}  # the same list, none of its volumes
    assert [api.count(verb) for verb in ("containers", "networks", "volumes")] == [1, 1, 1]
    assert not any(call.kwargs.get("filters") for call in api.calls)  # unfiltered: one list for every stack


def test_a_pass_that_starts_later_lists_again():
    api, shared = _engine(), {}
    _observe(DockerRuntimeDriver, _pass(api, "a", shared))
    api.remove_container("b-web-1", force=True)
    assert _observe(DockerRuntimeDriver, _pass(api, "b", shared)) == {}
    assert api.count("containers") == 2


def test_without_a_shared_engine_the_calls_stay_filtered():
    api = _engine()
    context = _pass(api, "a", None)
    assert _observe(DockerRuntimeDriver, context, ["stranger"]) == {"a-web-1": True, "stranger": False}
    _observe(DockerVolumeDriver, context)
    _observe(HostDirDriver, context)
    assert api.count("containers") == 2  # the stack's, then the wanted name it does not own
    assert api.count("volumes") == 1  # shared by the two storage drivers within the pass
    assert all(call.kwargs.get("filters") for call in api.calls)


def test_local_images_are_indexed_by_reference_and_by_repository():
    images = LocalImages([
        {"Id": "sha256:1", "RepoTags": ["reg/app:1"], "RepoDigests": ["reg/app@sha256:d1"]},
        {"Id": "sha256:2", "RepoTags": ["reg/app:2", "other:1"], "RepoDigests": ["reg/app@sha256:d2"]},
    ])
    assert images.by_ref["reg/app@sha256:d1"]["Id"] == "sha256:1" and images.by_ref["other:1"]["Id"] == "sha256:2"
    assert images.digests == {"reg/app": {"sha256:1": "sha256:d1", "sha256:2": "sha256:d2"}}


def test_images_share_one_list_with_a_shared_engine():
    api, shared = _engine(), {}
    for context in [_pass(api, stack, shared) for stack in ("a", "b")]:
        found = DockerRegistryDriver(context).observe(context.stack, {"busybox:1": ImageSpec(key="b", ref="busybox:1")})
        assert [live.name for live in found] == ["busybox:1"]
    assert api.count("images") == 1
