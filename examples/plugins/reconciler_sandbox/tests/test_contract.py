"""The sandbox runtime passes reconciler's runtime driver contract (needs a Docker engine)."""
from __future__ import annotations

import os
from dataclasses import replace

import pytest

from reconciler.sdk import Kind, PermanentError
from reconciler.testing import RuntimeDriverContract, assert_maps_errors, installed_driver, with_hash
from reconciler_sandbox import NAME, SandboxRuntime


class TestSandboxRuntime(RuntimeDriverContract):
    @pytest.fixture
    def driver(self, driver_context):
        driver = installed_driver(Kind.CONTAINER, NAME, driver_context)  # made as a run makes it, wrapping docker
        assert isinstance(driver, SandboxRuntime)
        return driver

    @pytest.fixture
    def image_ref(self):
        return os.environ.get("RECONCILER_BASE_IMAGE", "reconciler/busybox:latest")

    @pytest.fixture
    def unreachable_driver(self, unreachable_context):
        return installed_driver(Kind.CONTAINER, NAME, unreachable_context)

    def test_privileged_containers_are_refused(self, harness, desired):
        bad = with_hash(replace(desired, privileged=True))
        assert_maps_errors(lambda: harness.create(bad), PermanentError)
        assert harness.observe([bad]) == {}
