"""The localtag driver passes reconciler's registry driver contract (needs a Docker engine)."""
from __future__ import annotations

import io
import os
import uuid

import docker
import pytest

from reconciler.sdk import ImageSpec
from reconciler.testing import RegistryDriverContract
from reconciler_localtag import LocalTagDriver

BASE = os.environ.get("RECONCILER_BASE_IMAGE", "reconciler/busybox:latest")


@pytest.fixture
def api():
    client = docker.APIClient(base_url=os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock", version="auto")
    yield client
    client.close()


class TestLocalTagDriver(RegistryDriverContract):
    @pytest.fixture
    def driver(self, driver_context, api):
        self.api = api
        return LocalTagDriver(driver_context)

    @pytest.fixture
    def source(self, api, unique_name):
        """A source tag of its own, on the base image."""
        repo = f"{unique_name}-source"
        api.tag(BASE, repo, tag="1")
        yield f"{repo}:1"
        api.remove_image(f"{repo}:1", force=True)

    @pytest.fixture
    def spec(self, unique_name, source):
        return ImageSpec(key="app", ref=f"{unique_name}-app:1", driver="localtag", options=(("from", source),))

    @pytest.fixture
    def missing_spec(self, unique_name):
        return ImageSpec(key="app", ref=f"{unique_name}-gone:1", driver="localtag",
                         options=(("from", f"{unique_name}-no-such-source:1"),))

    @pytest.fixture
    def change_source(self, api, source):
        def move(spec: ImageSpec) -> None:
            dockerfile = f"FROM {BASE}\nLABEL moved={uuid.uuid4().hex}\n".encode()
            for _ in api.build(fileobj=io.BytesIO(dockerfile), tag=source, rm=True, decode=True):
                pass
            self.moved.append(source)
        self.moved = []
        return move

    @pytest.fixture
    def unreachable_driver(self, unreachable_context):
        return LocalTagDriver(unreachable_context)

    def remove_local(self, ref: str) -> None:
        self.api.remove_image(ref, force=True)
