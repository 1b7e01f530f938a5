"""Networks on the engine (bridge, overlay, macvlan, ipvlan): the engine does the work, but for one choice.

A bridge network the spec gives no subnet gets one from the reconciler's address pools
(``DriverContext.address_pools``), not from the engine's own ~31 default pools: see docs/networks.md.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import docker.errors
from docker.types import IPAMConfig, IPAMPool

from reconciler.sdk import (DEFAULT_ADDRESS_POOLS, AddressPool, LiveObject, NetworkDriver, NetworkSpec, PermanentError,
                            allocate_subnet)
from reconciler.sdk.docker import EngineDriver, engine_errors, is_ours, owned_filter

from .adopting import NetworkAdoption
from .subnets import AddressBook, engine_lock, host_routes, is_local_engine, network_subnets

#: How many blocks a create tries when the engine refuses each as taken (other processes allocating too).
_ATTEMPTS = 16
_BOOK = "reconciler_docker.address_book"  # in DriverContext.engine_shared: the daemon's AddressBook


class _BlockTaken(Exception):
    """The engine refused a subnet we chose: another network holds part of it now."""


def _info(net: Mapping) -> dict[str, str]:
    """What ``reconcile status`` shows of a network: the subnets the engine reports."""
    subnets = network_subnets([net])
    return {"subnet": ", ".join(subnets)} if subnets else {}


class DockerNetworkDriver(NetworkAdoption, EngineDriver, NetworkDriver):
    """One list call for the stack's networks; one more only for names not yet owned (a daemon: one for all)."""

    #: The runtime driver's stream reports every network's creation, removal, connects and disconnects.
    changes_reported = True

    def observe(self, stack: str, wanted: Mapping[str, NetworkSpec]) -> list[LiveObject]:
        with engine_errors("list networks"):
            found = self.listed(stack, wanted, owned=lambda: self.api.networks(filters=owned_filter(stack, self.kind)),
                                everything=lambda: self.api.networks(),
                                lookup=lambda names: self.api.networks(names=names), name_of=lambda net: net["Name"])
        return [self.live(net["Name"], net["Id"], net.get("Labels"), info=_info(net)) for net in found.values()]

    def find_labelled(self, selectors: Sequence[str]) -> list[LiveObject]:
        """The networks carrying every one of ``selectors`` (a Compose project's, for adoption)."""
        with engine_errors("list networks"):
            found = self.api.networks(filters={"label": list(selectors)})
        return [self.live(net["Name"], net["Id"], net.get("Labels")) for net in found]

    def create(self, spec: NetworkSpec, labels: Mapping[str, str]) -> str:
        """Create the network; return its engine id.

        A bridge network the spec gives no subnet gets the lowest free block of the context's address
        pools (``reconciler.sdk.allocate_subnet``), sized for its endpoints: one more list call, only here.
        """
        pools = self._pools(spec)
        if not pools:
            return self._create(spec, labels, spec.subnet)
        if self.context.engine_shared is not None:  # the daemon: what this process knows of the engine's subnets
            return self._create_from(self.context.engine_shared.setdefault(_BOOK, AddressBook()), pools, spec, labels)
        with engine_lock(self.engine_id() or self.context.engine_url or ""):
            taken = self._taken()
            for _ in range(_ATTEMPTS):
                subnet = allocate_subnet(pools, taken, spec.endpoints, network=spec.name)
                try:
                    return self._create(spec, labels, str(subnet))
                except _BlockTaken:  # another process made a network there since the list: the next block
                    taken.append(subnet)
        raise PermanentError(f"create network {spec.name}: the engine refused {_ATTEMPTS} blocks of "
                             f"{', '.join(str(p.base) for p in pools)} that looked free, as overlapping other "
                             "networks: is something else allocating from these pools?")

    def _create_from(self, book: AddressBook, pools, spec: NetworkSpec, labels: Mapping[str, str]) -> str:
        """Create with a block the daemon's ``AddressBook`` reserves: no list call per create, none at once."""
        for _ in range(_ATTEMPTS):
            subnet = book.reserve(pools, spec.endpoints, spec.name, self._taken)
            try:
                made = self._create(spec, labels, str(subnet))
            except _BlockTaken:  # another process made a network there since the book read the engine
                book.settle(subnet, taken_elsewhere=True)
                continue
            except BaseException:
                book.settle(subnet, made=False)
                raise
            book.settle(subnet, made=True)
            return made
        raise PermanentError(f"create network {spec.name}: the engine refused {_ATTEMPTS} blocks of "
                             f"{', '.join(str(p.base) for p in pools)} that looked free, as overlapping other "
                             "networks: is something else allocating from these pools?")

    def _taken(self) -> list:
        """The subnets the engine's networks hold, and this machine's routes when the engine runs here."""
        with engine_errors("list networks"):
            taken: list = network_subnets(self.api.networks())
        if is_local_engine(self.context.engine_url):
            taken += host_routes()
        return taken

    def _pools(self, spec: NetworkSpec) -> tuple[AddressPool, ...]:
        """The pools to choose the network's subnet from: none for a subnet of its own or a driver other than bridge."""
        if spec.driver != "bridge" or spec.subnet or spec.external:
            return ()
        pools = self.context.address_pools
        return DEFAULT_ADDRESS_POOLS if pools is None else pools

    def _create(self, spec: NetworkSpec, labels: Mapping[str, str], subnet: str | None) -> str:
        """Create the network with ``subnet`` (None: the engine's choice); raise ``_BlockTaken`` when the engine
        says a subnet we chose overlaps another network's."""
        ipam = None
        if subnet or spec.gateway or spec.ip_range:
            ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=subnet, gateway=spec.gateway, iprange=spec.ip_range)])
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
                if subnet != spec.subnet and "overlaps" in str(exc.explanation or ""):
                    raise _BlockTaken(subnet) from exc
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
