"""reconciler-isolated: networks its containers cannot leave, as engine bridge networks marked internal.

A spec asks for one with ``networks: {back: {driver: isolated, options: {mtu: 1400}}}``.
Containers on it reach each other by name, and nothing outside: no route out, no
published ports through it. It shows the network driver contract in one small
module, with typed options (``mtu`` is an integer; a change forces the network
to be recreated, which the plan says) and ``info`` that ``reconcile status`` shows.
"""
from __future__ import annotations

from typing import Mapping

from reconciler.sdk import (
    DriverContext, Kind, LiveObject, NetworkDriver, NetworkSpec, PermanentError, hookimpl, owned_plus_wanted,
)
from reconciler.sdk.labels import DRIVER, is_owned

__all__ = ["RECONCILER_API_VERSION", "IsolatedNetworkDriver", "reconciler_register_drivers"]
__version__ = "0.1.0"

RECONCILER_API_VERSION = 2
NAME = "isolated"
_MTU = "com.docker.network.driver.mtu"


def _engine():
    # Imported on first use: loading plugins (say, for `reconcile validate`) must not pay for the Docker SDK.
    from reconciler.sdk import docker as engine_kit

    return engine_kit


class IsolatedNetworkDriver(NetworkDriver):
    """Owned networks are the stack's networks labelled ``io.reconciler.driver=isolated``."""

    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "mtu": {"description": "The network's MTU, 68 to 9000 (default: the engine's)", "type": "integer",
                    "minimum": 68, "maximum": 9000},
        },
    }

    def __init__(self, context: DriverContext) -> None:
        self.context = context

    @property
    def api(self):
        return _engine().api_client(self.context)

    def observe(self, stack: str, wanted: Mapping[str, NetworkSpec]) -> list[LiveObject]:
        """One list call; a second only for wanted names the stack does not own."""
        engine = _engine()
        with engine.engine_errors("list isolated networks"):
            found = owned_plus_wanted(
                self.api.networks(filters=engine.owned_filter(stack, self.kind)), wanted,
                lambda names: self.api.networks(filters={"name": names}), lambda net: net["Name"])
        return [LiveObject(kind=Kind.NETWORK, name=n["Name"], id=n["Id"], labels=n.get("Labels") or {},
                           owned=is_owned(n.get("Labels"), stack, kind=self.kind), info=_info(n))
                for n in found.values()
                if not is_owned(n.get("Labels"), stack, kind=self.kind) or (n.get("Labels") or {}).get(DRIVER) == NAME]

    def create(self, spec: NetworkSpec, labels: Mapping[str, str]) -> str:
        """An internal bridge network; returns its id. (Options arrive as strings: ``mtu`` is "1400".)

        The options were validated against ``options_schema`` already; a spec built by
        hand was not, and a mistake caught here beats a network the engine half-accepts.
        """
        mtu = dict(spec.options).get("mtu")
        if mtu is not None and not (mtu.isdigit() and 68 <= int(mtu) <= 9000):
            raise PermanentError(f"network {spec.name}: mtu {mtu!r} is not a number from 68 to 9000")
        options = {_MTU: mtu} if mtu is not None else {}
        with _engine().engine_errors(f"create isolated network {spec.name}"):
            created = self.api.create_network(spec.name, driver="bridge", internal=True, labels=dict(labels),
                                              options=options or None, check_duplicate=True)
        return created["Id"]

    def delete(self, live: LiveObject) -> None:
        """Remove the network; one already gone is fine."""
        with _engine().engine_errors(f"remove isolated network {live.name}", missing_ok=True):
            self.api.remove_network(live.id)


def _info(network: dict) -> dict[str, str]:
    """What ``reconcile status`` shows: the subnet the engine gave the network."""
    configs = (network.get("IPAM") or {}).get("Config") or []
    return {"subnet": configs[0]["Subnet"]} if configs and configs[0].get("Subnet") else {}


@hookimpl
def reconciler_register_drivers(registry) -> None:
    """Offer ``driver: isolated`` for networks."""
    registry.add_network_driver(NAME, IsolatedNetworkDriver)
