"""Networks on the engine (bridge, overlay, macvlan, ipvlan): the engine does the work."""
from __future__ import annotations

from typing import Mapping, Sequence

import docker.errors
from docker.types import IPAMConfig, IPAMPool

from reconciler.sdk import LiveObject, NetworkDriver, NetworkSpec, owned_plus_wanted
from reconciler.sdk.docker import EngineDriver, engine_errors, is_ours, owned_filter

from .adopting import NetworkAdoption


class DockerNetworkDriver(NetworkAdoption, EngineDriver, NetworkDriver):
    """One list call for the stack's networks; one more only for names not yet owned."""

    def observe(self, stack: str, wanted: Mapping[str, NetworkSpec]) -> list[LiveObject]:
        with engine_errors("list networks"):
            found = owned_plus_wanted(self.api.networks(filters=owned_filter(stack, self.kind)), wanted,
                                      lambda names: self.api.networks(names=names), lambda net: net["Name"])
        return [self.live(net["Name"], net["Id"], net.get("Labels")) for net in found.values()]

    def find_labelled(self, selectors: Sequence[str]) -> list[LiveObject]:
        """The networks carrying every one of ``selectors`` (a Compose project's, for adoption)."""
        with engine_errors("list networks"):
            found = self.api.networks(filters={"label": list(selectors)})
        return [self.live(net["Name"], net["Id"], net.get("Labels")) for net in found]

    def create(self, spec: NetworkSpec, labels: Mapping[str, str]) -> str:
        """Create the network; return its engine id."""
        ipam = None
        if spec.subnet or spec.gateway or spec.ip_range:
            ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=spec.subnet, gateway=spec.gateway, iprange=spec.ip_range)])
        with engine_errors(f"create network {spec.name}"):
            try:
                created = self.api.create_network(
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
                existing = self._created_before(spec.name, labels) if exc.status_code == 409 else ""
                if not existing:
                    raise
                return existing
        return created["Id"]

    def _created_before(self, name: str, labels: Mapping[str, str]) -> str:
        """The id of network ``name`` when it exists with exactly these ownership labels (stack and config hash)."""
        for net in self.api.networks(names=[name]):
            if net["Name"] == name and is_ours(net.get("Labels"), labels):
                return net["Id"]
        return ""

    def delete(self, live: LiveObject) -> None:
        with engine_errors(f"remove network {live.name}", missing_ok=True):
            self.api.remove_network(live.id)
