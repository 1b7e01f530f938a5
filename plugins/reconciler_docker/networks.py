"""Networks on the engine (bridge, overlay, macvlan, ipvlan): the engine does the work."""
from __future__ import annotations

from typing import Mapping

import docker.errors
from docker.types import IPAMConfig, IPAMPool

from reconciler.drivers import DriverContext, NetworkDriver
from reconciler.model import STACK_LABEL, Kind, LiveObject, NetworkSpec

from .engine import api_client, engine_errors, is_ours, owned_filter


class DockerNetworkDriver(NetworkDriver):
    """One list call for the stack's networks; one more only for names not yet owned."""

    def __init__(self, context: DriverContext) -> None:
        self.context = context

    @property
    def api(self):
        return api_client(self.context)

    def observe(self, stack: str, wanted: Mapping[str, str]) -> list[LiveObject]:
        with engine_errors("list networks"):
            found = {n["Name"]: n for n in self.api.networks(filters=owned_filter(stack))}
            missing = [name for name in wanted if name not in found]
            if missing:
                for net in self.api.networks(names=missing):
                    if net["Name"] in missing:
                        found[net["Name"]] = net
        return [self._live(stack, net) for net in found.values()]

    @staticmethod
    def _live(stack: str, net: dict) -> LiveObject:
        labels = net.get("Labels") or {}
        return LiveObject(kind=Kind.NETWORK, name=net["Name"], id=net["Id"], labels=labels,
                          owned=labels.get(STACK_LABEL) == stack)

    def create(self, spec: NetworkSpec, labels: Mapping[str, str]) -> None:
        ipam = None
        if spec.subnet or spec.gateway or spec.ip_range:
            ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=spec.subnet, gateway=spec.gateway, iprange=spec.ip_range)])
        with engine_errors(f"create network {spec.name}"):
            try:
                self.api.create_network(
                    spec.name,
                    driver=spec.driver,
                    options=dict(spec.options) or None,
                    ipam=ipam,
                    internal=spec.internal,
                    attachable=spec.attachable or None,
                    labels=dict(labels),
                    check_duplicate=True,
                )
            except docker.errors.APIError as exc:
                # A retry after the engine created it but failed to answer: that one is ours.
                if exc.status_code != 409 or not self._created_before(spec.name, labels):
                    raise

    def _created_before(self, name: str, labels: Mapping[str, str]) -> bool:
        """True when ``name`` exists with exactly these ownership labels (stack and config hash)."""
        for net in self.api.networks(names=[name]):
            if net["Name"] == name:
                return is_ours(net.get("Labels"), labels)
        return False

    def delete(self, live: LiveObject) -> None:
        with engine_errors(f"remove network {live.name}"):
            try:
                self.api.remove_network(live.id)
            except docker.errors.NotFound:
                pass
