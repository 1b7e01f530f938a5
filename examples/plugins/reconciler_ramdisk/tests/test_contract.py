"""The ramdisk driver passes reconciler's storage driver contract (needs a Docker engine)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.sdk import PermanentError, VolumeSpec
from reconciler.testing import StorageDriverContract, assert_maps_errors, with_hash
from reconciler_ramdisk import RamdiskDriver


class TestRamdiskDriver(StorageDriverContract):
    @pytest.fixture
    def driver(self, driver_context):
        return RamdiskDriver(driver_context)

    @pytest.fixture
    def spec(self, unique_name):
        return VolumeSpec(key="scratch", name=unique_name, driver="ramdisk", options=(("size", "4m"),))

    def changed(self, spec):
        return replace(spec, options=(("size", "8m"),))

    def invalid(self, spec):
        return replace(spec, options=(("size", "lots"),))

    @pytest.fixture
    def unreachable_driver(self, unreachable_context):
        return RamdiskDriver(unreachable_context)

    def test_unknown_options_are_refused(self, harness, desired):
        bad = with_hash(replace(desired, options=(("mode", "1777"),)))
        assert_maps_errors(lambda: harness.create(bad), PermanentError)

    def test_a_local_volume_of_the_stack_is_not_reported(self, harness, desired):
        # A volume labelled for the local driver is that driver's to report: each driver reports its own.
        harness.create(replace(desired, driver="local", options=()))
        assert harness.observe() == {}
