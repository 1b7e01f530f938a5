"""The fake engine's container verbs (docker-py's ``ContainerApiMixin``, and network attachments).

A container's life is the engine's state machine without a process: created,
running (until stopped, or until a test calls ``exit_container``), paused,
exited. The answers a driver relies on are the engine's: 409 for a name in use,
for starting a paused container and for removing a running one; 404 for what
does not exist; named volumes a container mounts are made when it is created;
a container carries its image's labels, under the ones it was created with.
"""
from __future__ import annotations

import copy
import re
import time

import docker.types

from ._engine import ZERO, Engine, Refused, matches, now

__all__ = ["Containers"]


class Containers(Engine):
    """``containers``, ``create_container``, ``start``, ``stop``... and what plays a container's process."""

    def containers(self, quiet=False, all=False, trunc=False, latest=False, since=None, before=None, limit=-1,
                   size=False, filters=None):
        """The list shape of the containers ``filters`` select (running and paused only, unless ``all``)."""
        with self._request("containers", all=all, filters=filters):
            out = [self._summary(c) for c in self._containers.values()
                   if (all or c["State"]["Running"])
                   and matches(filters, labels=c["Config"]["Labels"], name=c["Name"], id=c["Id"],
                               status=c["State"]["Status"])]
            return [{"Id": c["Id"]} for c in out] if quiet else out

    def inspect_container(self, container):
        with self._request("inspect_container", container):
            return copy.deepcopy(self._container(container))

    def create_container(self, image, command=None, hostname=None, user=None, detach=False, stdin_open=False,
                         tty=False, ports=None, environment=None, volumes=None, network_disabled=False, name=None,
                         entrypoint=None, working_dir=None, domainname=None, host_config=None, mac_address=None,
                         labels=None, stop_signal=None, networking_config=None, healthcheck=None,
                         stop_timeout=None, runtime=None, use_config_proxy=True, platform=None):
        """Create a container from a local image; ``{"Id": ..., "Warnings": []}``."""
        body = dict(docker.types.ContainerConfig(
            self._version, image, command, hostname, user, detach, stdin_open, tty, ports, environment, volumes,
            network_disabled, entrypoint, working_dir, domainname, host_config, mac_address, labels, stop_signal,
            networking_config, healthcheck, stop_timeout, runtime))
        with self._request("create_container", image=image, name=name):
            name = "/" + (name or f"fake_{next(self._ids)}")
            self._refuse_taken(name)
            found = self._image(image)
            image_id = found["Id"]
            host = dict(body.pop("HostConfig", None) or {})
            endpoints = (body.pop("NetworkingConfig", None) or {}).get("EndpointsConfig") or {}
            mode = host.setdefault("NetworkMode", "default")
            first = None if mode.startswith("container:") else self._network("bridge" if mode == "default" else mode)
            networks = {first["Name"]: self._endpoint(first, **(endpoints.get(first["Name"]) or {}))} if first else {}
            container = {"Id": self._new_id("container"), "Name": name, "Created": now(), "Image": image_id,
                         "Config": {**body, "Labels": _inherited(found, body.get("Labels"))}, "HostConfig": host,
                         "State": {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
                                   "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
                                   "StartedAt": ZERO, "FinishedAt": ZERO},
                         "Mounts": self._mounts(host), "NetworkSettings": {"Networks": networks}}
            self._containers[container["Id"]] = container
            self._emit("container", "create", container["Id"], container)
            return {"Id": container["Id"], "Warnings": []}

    def start(self, container, *args, **kwargs):
        with self._request("start", container):
            found = self._container(container)
            state = found["State"]
            if state["Paused"]:
                raise Refused(409, "cannot start a paused container, try unpause instead")
            if state["Running"]:
                return  # 304 Not Modified: docker-py answers None
            for net in found["NetworkSettings"]["Networks"]:
                self._network(net)  # removed since the container was created: the engine refuses
            state.update(Status="running", Running=True, Pid=next(self._ids), ExitCode=0, StartedAt=now())
            if found["Config"].get("Healthcheck"):
                state["Health"] = {"Status": "starting", "FailingStreak": 0, "Log": []}
            self._emit("container", "start", found["Id"], found)

    def stop(self, container, timeout=None):
        with self._request("stop", container, timeout=timeout):
            found = self._container(container)
            if found["State"]["Paused"]:
                raise Refused(409, f"Container {found['Id']} is paused, unpause the container before stopping "
                                   "or killing")
            if found["State"]["Running"]:  # else 304 Not Modified
                self.exit_container(found["Id"], 137)  # as MemoryEngine: killed after its grace period
                self._emit("container", "stop", found["Id"], found)

    def pause(self, container):
        with self._request("pause", container):
            found = self._container(container)
            if not found["State"]["Running"] or found["State"]["Paused"]:
                raise Refused(409, f"Container {found['Id']} is not running")
            found["State"].update(Status="paused", Paused=True)
            self._emit("container", "pause", found["Id"], found)

    def unpause(self, container):
        with self._request("unpause", container):
            found = self._container(container)
            if not found["State"]["Paused"]:
                raise Refused(409, f"Container {found['Id']} is not paused")
            found["State"].update(Status="running", Paused=False)
            self._emit("container", "unpause", found["Id"], found)

    def remove_container(self, container, v=False, link=False, force=False):
        """Remove it (its anonymous volumes too with ``v``); a running one only with ``force``."""
        with self._request("remove_container", container, v=v, force=force):
            found = self._container(container)
            if found["State"]["Running"] and not force:
                raise Refused(409, f"You cannot remove a {found['State']['Status']} container {found['Id']}. "
                                   "Stop the container before attempting removal or force remove")
            del self._containers[found["Id"]]
            for mount in found["Mounts"] if v else ():
                name = mount.get("Name") or ""
                if name in self._volumes and re.fullmatch(r"[0-9a-f]{64}", name) and not self._volume_users(name):
                    del self._volumes[name]
            self._emit("container", "destroy", found["Id"], found)

    def rename(self, container, name):
        with self._request("rename", container, name):
            found = self._container(container)
            self._refuse_taken("/" + name)
            found["Name"] = "/" + name
            self._emit("container", "rename", found["Id"], found)

    def logs(self, container, stdout=True, stderr=True, stream=False, timestamps=False, tail="all", since=None,
             follow=None, until=None):
        with self._request("logs", container, tail=tail):
            lines = self._logs.get(self._container(container)["Id"], b"").splitlines(keepends=True)
            return b"".join(lines if tail == "all" else lines[len(lines) - int(tail):] if int(tail) else [])

    def connect_container_to_network(self, container, net_id, ipv4_address=None, ipv6_address=None, aliases=None,
                                     links=None, link_local_ips=None, driver_opt=None, mac_address=None):
        with self._request("connect_container_to_network", container, net_id, aliases=aliases):
            found, net = self._container(container), self._network(net_id)
            networks = found["NetworkSettings"]["Networks"]
            if net["Name"] in networks:
                raise Refused(403, f"endpoint with name {found['Name'][1:]} already exists in network {net['Name']}")
            ipam = {"IPv4Address": ipv4_address, "IPv6Address": ipv6_address} if ipv4_address or ipv6_address else None
            networks[net["Name"]] = self._endpoint(net, Aliases=aliases, IPAMConfig=ipam)
            self._emit("network", "connect", net["Id"], net, container=found["Id"])

    def disconnect_container_from_network(self, container, net_id, force=False):
        with self._request("disconnect_container_from_network", container, net_id):
            found, net = self._container(container), self._network(net_id)
            if found["NetworkSettings"]["Networks"].pop(net["Name"], None) is None:
                raise Refused(403, f"container {found['Id']} is not connected to network {net['Name']}")
            self._emit("network", "disconnect", net["Id"], net, container=found["Id"])

    # -- what a container's process does, for tests ---------------------------------------------
    def exit_container(self, container: str, code: int = 0) -> None:
        """The container's process ends with ``code`` (what a crash, a kill or a finished job does)."""
        with self._lock:
            found = self._container(container)
            found["State"].update(Status="exited", Running=False, Paused=False, Pid=0, ExitCode=code,
                                  FinishedAt=now())
            self._emit("container", "die", found["Id"], found, exitCode=str(code))

    def mark_removing(self, container: str) -> None:
        """Play a ``docker rm -f`` in flight: the container is listed as ``removing`` and keeps its name until
        ``remove_container``."""
        with self._lock:
            self._container(container)["State"].update(Status="removing", Running=False)

    def set_health(self, container: str, status: str, output: str = "") -> None:
        """The container's healthcheck now says ``status`` (``healthy``, ``unhealthy``, ``starting``)."""
        with self._lock:
            found = self._container(container)
            health = found["State"].setdefault("Health", {"Status": "starting", "FailingStreak": 0, "Log": []})
            health["Status"] = status
            health["Log"].append({"ExitCode": 0 if status == "healthy" else 1, "Output": output})
            self._emit("container", f"health_status: {status}", found["Id"], found)

    def write_logs(self, container: str, text: str) -> None:
        """Text the container's process printed, for ``logs``."""
        with self._lock:
            key = self._container(container)["Id"]
            self._logs[key] = self._logs.get(key, b"") + text.encode()

    # -- inside -------------------------------------------------------------------------------
    def _refuse_taken(self, name: str) -> None:
        taken = next((c for c in self._containers.values() if c["Name"] == name), None)
        if taken is not None:
            raise Refused(409, f'Conflict. The container name "{name}" is already in use by container '
                               f'"{taken["Id"]}". You have to remove (or rename) that container to be able to '
                               "reuse that name.")

    def _endpoint(self, network: dict, **config) -> dict:
        ipam = config.get("IPAMConfig") or {}
        return {"IPAMConfig": ipam or None, "Aliases": config.get("Aliases"), "NetworkID": network["Id"],
                "EndpointID": self._new_id("endpoint"), "Gateway": "", "IPAddress": ipam.get("IPv4Address") or "",
                "GlobalIPv6Address": ipam.get("IPv6Address") or "", "MacAddress": ""}

    def _mounts(self, host: dict) -> list[dict]:
        """The inspect ``Mounts`` of a host config; volumes that do not exist yet are made (anonymous or named)."""
        mounts = []
        for bind in host.get("Binds") or []:
            source, target, mode = (bind.split(":") + ["rw"])[:3]
            mounts.append({"Type": "bind", "Source": source, "Destination": target, "Mode": mode, "RW": mode != "ro",
                           "Propagation": "rprivate"})
        for mount in host.get("Mounts") or []:
            entry = {"Type": mount["Type"], "Source": mount.get("Source") or "", "Destination": mount["Target"],
                     "Mode": "", "RW": not mount.get("ReadOnly"), "Propagation": ""}
            if mount["Type"] == "volume":
                name = mount.get("Source") or self._new_id("volume")
                volume = self._volumes.get(name) or self._add_volume(name, None, None, None)
                entry.update(Name=name, Source=volume["Mountpoint"], Driver=volume["Driver"], Mode="z")
            mounts.append(entry)
        return mounts

    @staticmethod
    def _summary(c: dict) -> dict:
        """A container as ``containers()`` lists it."""
        state = c["State"]
        health = (state.get("Health") or {}).get("Status")
        status = {"created": "Created", "exited": f"Exited ({state['ExitCode']}) 1 second ago",
                  "paused": "Up 1 second (Paused)"}.get(state["Status"], "Up 1 second")
        if health and state["Status"] == "running":
            status += " (health: starting)" if health == "starting" else f" ({health})"
        return {"Id": c["Id"], "Names": [c["Name"]], "Image": c["Config"]["Image"], "ImageID": c["Image"],
                "Command": " ".join(c["Config"].get("Cmd") or []), "Created": int(time.time()), "Ports": [],
                "Labels": copy.deepcopy(c["Config"]["Labels"]), "State": state["Status"], "Status": status,
                "HostConfig": {"NetworkMode": c["HostConfig"]["NetworkMode"]},
                "NetworkSettings": copy.deepcopy(c["NetworkSettings"]), "Mounts": copy.deepcopy(c["Mounts"])}


def _inherited(image: dict, labels: dict | None) -> dict:
    """A new container's labels, as the engine gives them: its image's, then its own over them."""
    return {**((image.get("Config") or {}).get("Labels") or {}), **(labels or {})}
