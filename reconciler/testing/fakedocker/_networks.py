"""The fake engine's network and volume verbs (docker-py's ``NetworkApiMixin`` and ``VolumeApiMixin``).

The answers drivers rely on: a network name in use is a 409 and an overlapping
subnet a 403; a network with running containers, or a predefined one, is not
removed; a volume created under a name that exists is that volume (with its
labels, not the new ones); a volume a container mounts is not removed (409).
"""
from __future__ import annotations

import copy
import ipaddress

from ._engine import PREDEFINED, Engine, Refused, matches

__all__ = ["NetworksAndVolumes"]


class NetworksAndVolumes(Engine):
    """``networks``, ``create_network``, ``remove_network``, ``volumes``, ``create_volume``..."""

    def networks(self, names=None, ids=None, filters=None):
        filters = dict(filters or {}, **({"name": names} if names else {}), **({"id": ids} if ids else {}))
        with self._request("networks", filters=filters):
            return [{**copy.deepcopy(n), "Containers": {}} for n in self._networks.values()
                    if matches(filters, labels=n["Labels"], name=n["Name"], id=n["Id"], driver=n["Driver"])]

    def inspect_network(self, net_id, verbose=None, scope=None):
        with self._request("inspect_network", net_id):
            net = copy.deepcopy(self._network(net_id))
            net["Containers"] = {c["Id"]: {"Name": c["Name"][1:], "EndpointID": e["EndpointID"],
                                           "IPv4Address": e["IPAddress"], "IPv6Address": e["GlobalIPv6Address"]}
                                 for c in self._containers.values()
                                 for name, e in c["NetworkSettings"]["Networks"].items() if name == net["Name"]}
            return net

    def create_network(self, name, driver=None, options=None, ipam=None, check_duplicate=None, internal=False,
                       labels=None, enable_ipv6=False, attachable=None, scope=None, ingress=None):
        """Create a network; 409 for a name in use, 403 for a subnet that overlaps another network's."""
        with self._request("create_network", name, driver=driver, labels=labels):
            if any(n["Name"] == name for n in self._networks.values()):
                raise Refused(409, f"network with name {name} already exists")
            subnets = [ipaddress.ip_network(p["Subnet"]) for p in (ipam or {}).get("Config") or [] if p.get("Subnet")]
            taken = [ipaddress.ip_network(p["Subnet"]) for n in self._networks.values()
                     for p in n["IPAM"]["Config"] if p.get("Subnet")]
            if any(mine.overlaps(other) for mine in subnets for other in taken if mine.version == other.version):
                raise Refused(403, "invalid pool request: Pool overlaps with other one on this address space")
            net = self._add_network(name, driver=driver or "bridge", options=options, ipam=ipam, labels=labels,
                                    internal=internal, attachable=bool(attachable), enable_ipv6=enable_ipv6)
            return {"Id": net["Id"], "Warning": ""}

    def remove_network(self, net_id):
        with self._request("remove_network", net_id):
            net = self._network(net_id)
            if net["Name"] in PREDEFINED:
                raise Refused(403, f"{net['Name']} is a pre-defined network and cannot be removed")
            if any(net["Name"] in c["NetworkSettings"]["Networks"] and c["State"]["Running"]
                   for c in self._containers.values()):
                raise Refused(403, f"error while removing network: network {net['Name']} id {net['Id']} has "
                                   "active endpoints")
            del self._networks[net["Id"]]
            self._emit("network", "destroy", net["Id"], net)

    def volumes(self, filters=None):
        with self._request("volumes", filters=filters):
            return {"Volumes": [copy.deepcopy(v) for v in self._volumes.values()
                                if matches(filters, labels=v["Labels"], name=v["Name"], driver=v["Driver"])],
                    "Warnings": None}

    def inspect_volume(self, name):
        with self._request("inspect_volume", name):
            return copy.deepcopy(self._volume(name))

    def create_volume(self, name=None, driver=None, driver_opts=None, labels=None):
        """Create a volume; one that exists under ``name`` is answered as it is (as the engine does)."""
        with self._request("create_volume", name, driver=driver, driver_opts=driver_opts, labels=labels):
            existing = self._volumes.get(name or "")
            if existing is not None and existing["Driver"] != (driver or "local"):
                raise Refused(409, f"create {name}: volume name {name} already in use with driver "
                                   f"{existing['Driver']}")
            return copy.deepcopy(existing or self._add_volume(name, driver, driver_opts, labels))

    def remove_volume(self, name, force=False):
        with self._request("remove_volume", name, force=force):
            volume = self._volume(name)
            users = self._volume_users(name)
            if users:
                raise Refused(409, f"remove {name}: volume is in use - [{', '.join(users)}]")
            del self._volumes[name]
            self._emit("volume", "destroy", name, volume, driver=volume["Driver"])
