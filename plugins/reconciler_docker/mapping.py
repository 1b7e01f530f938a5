"""From a ``ContainerSpec`` to the engine's create arguments, and from its container data back. Pure.

Why a module of its own: what the runtime sends to the engine (the keywords of
``create_container``, of ``create_host_config`` and of each network endpoint)
and how it reads the engine's answers back (a list entry's status text as
health and exit code, an inspect's config as the "old" values a plan shows)
are data transformations, as the swarm plugin keeps ``mapping.py`` apart from
its driver. Nothing here imports the Docker SDK or reaches an engine: mounts,
ulimits and the log config are the plain dicts the SDK sends as they are (or
turns into its own types, field for field), so unit tests check the mapping
without an engine and validation never pays for the SDK.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from reconciler.sdk import ContainerSpec, HealthCheck, Mount, Port

from .files import parse_file_name

__all__ = ["DEFAULT_NETWORK", "container_arguments", "endpoint_arguments", "explainable",
           "host_config_arguments", "is_anonymous_volume", "read_only_bind", "status_exit_code", "status_health"]

#: Where the engine attaches a container that names no network: observe reports it, the planner knows no engine.
DEFAULT_NETWORK = "bridge"
_ANONYMOUS = re.compile(r"[0-9a-f]{64}")  # the engine names an anonymous volume by 64 hex digits
_EXITED = re.compile(r"Exited \((-?\d+)\)")
_HEALTH = re.compile(r"\((healthy|unhealthy|health: starting)\)")


# -- to the engine -------------------------------------------------------------
def container_arguments(spec: ContainerSpec, labels: Mapping[str, str]) -> dict[str, Any]:
    """The keywords of ``create_container`` but its host and networking configs."""
    return {
        "image": spec.image_ref,
        "name": spec.name,
        "command": list(spec.command) if spec.command is not None else None,
        "entrypoint": list(spec.entrypoint) if spec.entrypoint is not None else None,
        "environment": [f"{e.name}={e.value}" for e in spec.env] or None,
        "labels": dict(labels),
        "ports": _exposed(spec) or None,
        "stdin_open": spec.stdin_open,
        "tty": spec.tty,
        "platform": spec.platform,
        "user": spec.user,
        "working_dir": spec.working_dir,
        "hostname": spec.hostname,
        "stop_signal": spec.stop_signal,
        "stop_timeout": spec.stop_grace_period,
        "healthcheck": _healthcheck(spec),
    }


def host_config_arguments(spec: ContainerSpec, *, inherited: Mapping[str, str] | None = None,
                          files: list[dict] | None = None) -> dict[str, Any]:
    """The keywords of ``create_host_config``.

    ``inherited`` maps a target to the anonymous volume of the container this
    one succeeds (it keeps its data); ``files`` are the read-only binds of the
    container's configs and secrets (``read_only_bind``), mounted after the spec's own.
    """
    inherited = inherited or {}
    first = spec.networks[0][0] if spec.networks else None
    # A short-syntax bind goes as a legacy bind: the engine then makes its missing source a directory.
    binds = [f"{m.source}:{m.target}:{'ro' if m.read_only else 'rw'}" for m in spec.mounts if m.create_host_path]
    return {
        "mounts": [_mount(m, inherited) for m in spec.mounts if not m.create_host_path] + list(files or ()) or None,
        "binds": binds or None,
        "port_bindings": _port_bindings(spec) or None,
        "restart_policy": _restart_policy(spec.restart),
        "init": spec.init or None,
        "privileged": spec.privileged,
        "mem_limit": spec.memory,
        "nano_cpus": spec.nano_cpus,
        "network_mode": spec.network_mode or first,
        **_compose_host_config(spec),
    }


def endpoint_arguments(spec: ContainerSpec, network: str, aliases: tuple[str, ...]) -> dict[str, Any]:
    """The keywords of the container's endpoint on ``network``: its aliases and fixed addresses."""
    addresses = {name: (v4 or None, v6 or None) for name, v4, v6 in spec.addresses}
    v4, v6 = addresses.get(network, (None, None))
    return {"aliases": list(aliases) or None, "ipv4_address": v4, "ipv6_address": v6}


def read_only_bind(target: str, source: str) -> dict[str, Any]:
    """The mount of a file written on this host, read-only at ``target``."""
    return _mount_body(target, source, "bind", read_only=True)


def _mount(mount: Mount, inherited: Mapping[str, str]) -> dict[str, Any]:
    if mount.type == "tmpfs":
        return _mount_body(mount.target, None, "tmpfs", tmpfs_size=mount.tmpfs_size)
    if mount.type == "volume" and not mount.source:  # anonymous: the predecessor's, else a new one
        return _mount_body(mount.target, inherited.get(mount.target), "volume", read_only=mount.read_only)
    return _mount_body(mount.target, mount.source, mount.type, read_only=mount.read_only)


def _mount_body(target: str, source: str | None, kind: str, *, read_only: bool = False,
                tmpfs_size: int | None = None) -> dict[str, Any]:
    """A ``Mounts`` entry of the host config, as the SDK's ``Mount`` builds it."""
    body: dict[str, Any] = {"Target": target, "Source": source, "Type": kind, "ReadOnly": read_only}
    if tmpfs_size:
        body["TmpfsOptions"] = {"SizeBytes": tmpfs_size}
    return body


def _exposed(spec: ContainerSpec) -> list[tuple[int, str]]:
    """The container's ports: those it publishes, then those it only exposes (``expose``)."""
    ports = [(p.target, p.protocol) for p in spec.ports]
    for text in spec.expose:
        port, _, protocol = text.partition("/")
        if (int(port), protocol) not in ports:
            ports.append((int(port), protocol))
    return ports


def _compose_host_config(spec: ContainerSpec) -> dict[str, Any]:
    """The host config of the fields Compose spells (capabilities, kernel parameters, DNS, logging, …).

    Unset fields are left out, so the engine's defaults apply as before.
    """
    options: dict[str, Any] = {
        "cap_add": list(spec.cap_add), "cap_drop": list(spec.cap_drop), "sysctls": dict(spec.sysctls),
        "extra_hosts": list(spec.extra_hosts), "dns": list(spec.dns), "dns_search": list(spec.dns_search),
        "dns_opt": list(spec.dns_opt), "shm_size": spec.shm_size, "devices": list(spec.devices),
        "security_opt": list(spec.security_opt), "pid_mode": spec.pid, "ipc_mode": spec.ipc,
        "runtime": spec.runtime, "read_only": spec.read_only,
        "ulimits": [{"name": name, "soft": soft, "hard": hard} for name, soft, hard in spec.ulimits],
    }
    if spec.log_driver or spec.log_options:
        options["log_config"] = {"type": spec.log_driver or "", "config": dict(spec.log_options)}
    return {name: value for name, value in options.items() if value}


def _port_bindings(spec: ContainerSpec) -> dict:
    bindings: dict = {}
    for port in spec.ports:
        key = f"{port.target}/{port.protocol}"
        if port.published is None and not port.host_ip:
            bindings.setdefault(key, []).append(None)
        else:
            bindings.setdefault(key, []).append((port.host_ip, port.published) if port.host_ip else port.published)
    return bindings


def _restart_policy(text: str) -> dict | None:
    if text in ("no", ""):
        return None
    name, _, count = text.partition(":")
    policy: dict[str, Any] = {"Name": name}
    if count:
        policy["MaximumRetryCount"] = int(count)
    return policy


def _healthcheck(spec: ContainerSpec) -> dict | None:
    check = spec.healthcheck
    if check is None:
        return None
    return {
        "test": list(check.test),
        "interval": check.interval_ns or None,
        "timeout": check.timeout_ns or None,
        "retries": check.retries or None,
        "start_period": check.start_period_ns or None,
    }


# -- from the engine -------------------------------------------------------------
def is_anonymous_volume(name: str) -> bool:
    """Whether the engine named this volume itself (an anonymous volume: 64 hex digits)."""
    return bool(_ANONYMOUS.fullmatch(name))


def status_health(status: str) -> str:
    """The health a list entry's ``Status`` text shows: ``healthy``, ``unhealthy``, ``starting`` or ""."""
    match = _HEALTH.search(status)
    if not match:
        return ""
    return "starting" if match.group(1) == "health: starting" else match.group(1)


def status_exit_code(status: str) -> int | None:
    """The exit code a list entry's ``Status`` text shows (``Exited (3) 2 minutes ago``), else None."""
    match = _EXITED.search(status)
    return int(match.group(1)) if match else None


def explainable(info: Mapping[str, Any], configs: str) -> dict[str, Any]:
    """The non-derived values a plan shows as "old" for a changed container, from its inspect data.

    ``configs`` is the folder (ending in "/") of the stack's config files on
    this host: the configs a container mounts from there are named with
    their content hash.
    """
    config = info.get("Config") or {}
    host = info.get("HostConfig") or {}
    env = dict(item.partition("=")[::2] for item in config.get("Env") or [])
    return {
        "env": env,
        "labels": config.get("Labels") or {},
        "command": tuple(config.get("Cmd") or ()),
        "entrypoint": tuple(config.get("Entrypoint") or ()),
        "image": config.get("Image"),
        "user": config.get("User") or None,
        "working_dir": config.get("WorkingDir") or None,
        "restart": _restart_text(host.get("RestartPolicy") or {}),
        "memory": host.get("Memory") or None,
        "configs": _config_hashes(info.get("Mounts") or [], configs),
        "mounts": _live_mounts(info.get("Mounts") or [], configs.rstrip("/").rpartition("/")[0] + "/"),
        "ports": _live_ports(host.get("PortBindings") or {}),
        "healthcheck": _live_healthcheck(config.get("Healthcheck")),
    }


def _live_mounts(mounts: list[dict], files: str) -> tuple[Mount, ...]:
    """The container's mounts as the spec's records (its config and secret files left out: shown on their own)."""
    found = []
    for mount in mounts:
        kind, source = mount.get("Type", ""), str(mount.get("Name") or mount.get("Source") or "")
        if kind == "bind" and source.startswith(files):
            continue
        found.append(Mount(type=kind, target=mount.get("Destination", ""), source="" if kind == "tmpfs" else source,
                           read_only=not mount.get("RW", True)))
    return tuple(sorted(found, key=lambda m: m.target))


def _live_ports(bindings: dict[str, Any]) -> tuple[Port, ...]:
    """``HostConfig.PortBindings`` as the spec's records (``"80/tcp": [{"HostIp", "HostPort"}]``)."""
    found = []
    for key, hosts in bindings.items():
        target, _, protocol = key.partition("/")
        for host in hosts or [{}]:
            published = str(host.get("HostPort") or "")
            found.append(Port(target=int(target), published=int(published) if published.isdigit() else None,
                              protocol=protocol or "tcp", host_ip=host.get("HostIp") or ""))
    return tuple(sorted(found, key=lambda p: (p.target, p.protocol, p.host_ip, p.published or 0)))


def _live_healthcheck(check: dict | None) -> HealthCheck | None:
    """``Config.Healthcheck`` as the spec's record (None: the image's, or none)."""
    if not check or not check.get("Test"):
        return None
    return HealthCheck(test=tuple(check["Test"]), interval_ns=check.get("Interval") or 0,
                       timeout_ns=check.get("Timeout") or 0, retries=check.get("Retries") or 0,
                       start_period_ns=check.get("StartPeriod") or 0)


def _restart_text(policy: dict) -> str:
    name = policy.get("Name") or "no"
    count = policy.get("MaximumRetryCount")
    return f"{name}:{count}" if name == "on-failure" and count else name


def _config_hashes(mounts: list[dict], prefix: str) -> dict[str, str]:
    """Config name → short content hash, for the config files a container mounts (from their names)."""
    out = {}
    for mount in mounts:
        source = str(mount.get("Source", ""))
        rest = source[len(prefix):] if source.startswith(prefix) else "/"
        parsed = parse_file_name(rest) if "/" not in rest else None
        if parsed is not None:
            out[parsed[0]] = parsed[1]
    return out
