"""The sandbox runtime passes reconciler's runtime driver contract (needs a Docker engine)."""
from __future__ import annotations

import os
from dataclasses import replace

import pytest

from reconciler.errors import PermanentError
from reconciler.testing import RuntimeDriverContract, assert_maps_errors, with_hash
from reconciler_sandbox import SandboxRuntime


class TestSandboxRuntime(RuntimeDriverContract):
    @pytest.fixture
    def driver(self, driver_context):
        return SandboxRuntime(driver_context)

    @pytest.fixture
    def image_ref(self):
        return os.environ.get("RECONCILER_BASE_IMAGE", "reconciler/busybox:latest")

    @pytest.fixture
    def unreachable_driver(self, unreachable_context):
        return SandboxRuntime(unreachable_context)

    def test_privileged_containers_are_refused(self, harness, desired):
        bad = with_hash(replace(desired, privileged=True))
        assert_maps_errors(lambda: harness.create(bad), PermanentError)
        assert harness.observe([bad]) == {}
