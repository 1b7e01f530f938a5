"""The isolated driver passes reconciler's network driver contract (needs a Docker engine)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.testing import NetworkDriverContract
from reconciler_isolated import IsolatedNetworkDriver


class TestIsolatedNetworkDriver(NetworkDriverContract):
    driver_name = "isolated"

    @pytest.fixture
    def driver(self, driver_context):
        return IsolatedNetworkDriver(driver_context)

    def changed(self, spec):
        return replace(spec, options=(("mtu", "1400"),))

    def invalid(self, spec):
        return replace(spec, options=(("mtu", "1"),))  # the engine refuses an MTU below 68

    @pytest.fixture
    def unreachable_driver(self, unreachable_context):
        return IsolatedNetworkDriver(unreachable_context)

    def test_its_networks_are_internal(self, harness, desired):
        harness.create(desired)
        live = harness.observe_one(desired)
        assert harness.driver.api.inspect_network(live.id)["Internal"] is True
        assert live.info.get("subnet"), "status shows the subnet"
