"""Whether an object the reconciler did not create already is what the spec says. Pure.

Why a module of its own: adopting a running Compose project keeps each
container whose live configuration matches the spec and replaces the others,
and that needs a verdict no config-hash label can give (Compose's own hash
covers other things). The verdict compares what our create would send
(``mapping``: ``container_arguments``, ``host_config_arguments``,
``endpoint_arguments``) with what the engine's inspect data shows, by meaning
rather than by spelling:

- what the image supplies counts as unset in the spec: its environment, its
  command and entrypoint, working directory, user, healthcheck, stop signal,
  labels, exposed ports, and the anonymous volumes it declares;
- what Compose (v1 or v2) adds without changing behaviour is ignored: its
  ``com.docker.compose.*`` labels, network aliases beyond the spec's (the
  service name, the short id, the container name), a hostname left at the
  engine's default (the short id);
- what the engine's defaults may be configured to (the ``/dev/shm`` size, the
  IPC mode, the OCI runtime, the log driver) is compared only when the spec
  sets it.

Differences are named as the keys of ``ContainerSpec.field_hashes`` (``env.X``,
``labels.X``, ``ports``, ``mounts``, …), so the plan explains a replacement the
way it explains any other; an engine setting the spec cannot express but
Compose can (``cpu_shares``, ``links``, …) is named by its Compose key. Like
``mapping``, nothing here imports the Docker SDK: unit tests feed it the
inspect data of real containers.
"""
from __future__ import annotations

import posixpath
import re
from typing import Any, Iterable, Mapping

from reconciler.sdk import ContainerSpec, FileMount, NetworkSpec, VolumeSpec
from reconciler.sdk.labels import PREFIX

from .files import parse_file_name
from .mapping import (
    DEFAULT_NETWORK, container_arguments, endpoint_arguments, host_config_arguments, is_anonymous_volume,
)

__all__ = ["container_differences", "network_differences", "volume_differences"]

#: Labels that say who made an object, not what it is: Compose's and our own.
_BOOKKEEPING = ("com.docker.compose.", PREFIX)
_SIZE = re.compile(r"(\d+)([kmgt]?)b?", re.I)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
#: Engine settings our create never makes (the spec has no field for them) but Compose can:
#: a container with one set is not what our create would make. Compose key → host config field.
_NEVER_SET = {
    "cpu_shares": "CpuShares", "cpu_quota": "CpuQuota", "cpu_period": "CpuPeriod", "cpuset": "CpusetCpus",
    "mem_reservation": "MemoryReservation", "pids_limit": "PidsLimit", "oom_score_adj": "OomScoreAdj",
    "oom_kill_disable": "OomKillDisable", "links": "Links", "volumes_from": "VolumesFrom", "group_add": "GroupAdd",
    "userns_mode": "UsernsMode", "cgroup_parent": "CgroupParent", "uts": "UTSMode",
}


# -- containers ----------------------------------------------------------------
def container_differences(spec: ContainerSpec, info: Mapping[str, Any], image: Mapping[str, Any] | None) -> list[str]:
    """The fields in which the container ``info`` (``inspect_container``) differs from what we would create.

    ``image`` is the ``inspect_image`` of the image the container runs (None
    when it is gone: nothing then counts as the image's). Sorted paths, named
    as the keys of ``spec.field_hashes``; [] when the container already is
    what the spec says.
    """
    config, host = info.get("Config") or {}, info.get("HostConfig") or {}
    own = (image or {}).get("Config") or {}
    args, wanted = container_arguments(spec, {}), host_config_arguments(spec)
    found = _per_key("env", _env(own.get("Env")) | spec.env_dict(), _env(config.get("Env")))
    found += _per_key("labels", _labels(own.get("Labels")) | dict(spec.labels), _labels(config.get("Labels")))
    checks = {
        "image": _same_image(spec.image_ref, config.get("Image") or "", image),
        "ports": _bindings(_wanted_bindings(wanted["port_bindings"])) == _bindings(host.get("PortBindings")),
        "expose": _exposed(args, own, wanted) == _exposed_live(config, host),
        "mounts": _wanted_mounts(wanted) == _live_mounts(info, own, spec),
        "healthcheck": _health(_wanted_health(args["healthcheck"], own.get("Healthcheck")))
        == _health(config.get("Healthcheck")),
        "restart": _policy(wanted["restart_policy"]) == _policy(host.get("RestartPolicy")),
        "user": (args["user"] or own.get("User") or "") == (config.get("User") or ""),
        "working_dir": (args["working_dir"] or own.get("WorkingDir") or "") == (config.get("WorkingDir") or ""),
        "hostname": _same_hostname(spec, info),
        "stop_signal": _same_stop_signal(spec.stop_signal, own.get("StopSignal"), config.get("StopSignal")),
        "stop_grace_period": config.get("StopTimeout") == spec.stop_grace_period,
        "tty": bool(config.get("Tty")) == spec.tty,
        "stdin_open": bool(config.get("OpenStdin")) == spec.stdin_open,
        **_command_checks(args, own, config),
        **_network_checks(spec, info),
        **_host_checks(spec, host),
        **_file_checks(spec, info.get("Mounts") or []),
    }
    found += [path for path, same in checks.items() if not same]
    found += [key for key, field in _NEVER_SET.items() if host.get(field)]
    return sorted(found)


def _per_key(section: str, wanted: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    return [f"{section}.{key}" for key in sorted(wanted.keys() | live.keys()) if wanted.get(key) != live.get(key)]


def _env(items: Iterable[str] | None) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        out[name] = value if sep else None
    return out


def _labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    return {key: value for key, value in (labels or {}).items() if not key.startswith(_BOOKKEEPING)}


def _normal_ref(ref: str) -> str:
    """``postgres`` → ``postgres:latest``, ``docker.io/library/x:1`` → ``x:1``, ``x:1@sha256:…`` → ``x@sha256:…``."""
    name, at, digest = ref.partition("@")
    if digest:
        slash = name.rfind("/")
        name = name[:slash + 1] + name[slash + 1:].partition(":")[0]
    elif ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    for prefix in ("docker.io/", "index.docker.io/", "library/"):
        name = name.removeprefix(prefix)
    return name + at + digest


def _same_image(ref: str, live_ref: str, image: Mapping[str, Any] | None) -> bool:
    """The container runs what ``ref`` names now: the image it runs carries that tag or digest.

    A container whose tag has since moved to another image is behind (Compose
    would recreate it too); without the image, only the names can be compared.
    """
    wanted = _normal_ref(ref)
    if image is None:
        return _normal_ref(live_ref) == wanted
    names = [*(image.get("RepoTags") or ()), *(image.get("RepoDigests") or ())]
    return wanted in {_normal_ref(name) for name in names}


def _command_checks(args: Mapping[str, Any], own: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, bool]:
    """Command and entrypoint as the engine merges them with the image's (a new entrypoint drops its command)."""
    entrypoint, command = args["entrypoint"], args["command"]
    if not entrypoint:
        command = command or own.get("Cmd")
        if entrypoint is None:
            entrypoint = own.get("Entrypoint")
    return {"command": list(command or ()) == list(config.get("Cmd") or ()),
            "entrypoint": list(entrypoint or ()) == list(config.get("Entrypoint") or ())}


def _wanted_bindings(bindings: Mapping[str, list] | None) -> dict[str, list[dict]]:
    """Our create's port bindings as the engine stores them (what docker-py's conversion makes of them)."""
    out: dict[str, list[dict]] = {}
    for key, values in (bindings or {}).items():
        for value in values:
            ip, port = value if isinstance(value, tuple) else ("", value)
            out.setdefault(key, []).append({"HostIp": ip, "HostPort": "" if port is None else str(port)})
    return out


def _bindings(bindings: Mapping[str, list] | None) -> list[tuple[str, str, str]]:
    return sorted((key, b.get("HostIp") or "", b.get("HostPort") or "")
                  for key, values in (bindings or {}).items() for b in values or ())


def _exposed(args: Mapping[str, Any], own: Mapping[str, Any], wanted: Mapping[str, Any]) -> set[str]:
    """The ports we would expose but do not publish, with the image's own."""
    ours = {f"{port}/{protocol}" for port, protocol in args["ports"] or ()}
    return (ours | set(own.get("ExposedPorts") or {})) - set(wanted["port_bindings"] or {})


def _exposed_live(config: Mapping[str, Any], host: Mapping[str, Any]) -> set[str]:
    return set(config.get("ExposedPorts") or {}) - set(host.get("PortBindings") or {})


def _wanted_mounts(wanted: Mapping[str, Any]) -> list[tuple]:
    """(type, target, source, read-only, tmpfs size) of the mounts we would create ("" source: anonymous)."""
    out = []
    for mount in wanted["mounts"] or ():
        size = (mount.get("TmpfsOptions") or {}).get("SizeBytes")
        out.append((mount["Type"], mount["Target"], _source(mount["Type"], mount.get("Source") or ""),
                    mount["ReadOnly"], size))
    for bind in wanted["binds"] or ():
        source, target, mode = bind.rsplit(":", 2)
        out.append(("bind", target, _source("bind", source), mode == "ro", None))
    return sorted(out, key=repr)


def _live_mounts(info: Mapping[str, Any], own: Mapping[str, Any], spec: ContainerSpec) -> list[tuple]:
    """The same of the container, but its configs' and secrets' files and the image's anonymous volumes."""
    host = info.get("HostConfig") or {}
    files = {m.target for m in spec.files}
    declared = set(own.get("Volumes") or {}) - {m.target for m in spec.mounts}
    sizes = {m.get("Target"): (m.get("TmpfsOptions") or {}).get("SizeBytes") for m in host.get("Mounts") or ()}
    out = []
    for mount in info.get("Mounts") or ():
        kind, target = mount.get("Type"), mount.get("Destination")
        source = _source(kind, (mount.get("Name") if kind == "volume" else mount.get("Source")) or "")
        if target in files or (kind == "volume" and not source and target in declared):
            continue
        out.append((kind, target, source, kind != "tmpfs" and not mount.get("RW", True),
                    sizes.get(target) if kind == "tmpfs" else None))
    for target, options in (host.get("Tmpfs") or {}).items():  # Compose's ``tmpfs:``: not among the mounts
        out.append(("tmpfs", target, "", False, _tmpfs_size(options)))
    return sorted(out, key=repr)


def _source(kind: str, source: str) -> str:
    if kind == "volume":
        return "" if is_anonymous_volume(source) else source
    return posixpath.normpath(source) if source else ""


def _tmpfs_size(options: str) -> int | str | None:
    for option in options.split(","):
        name, _, value = option.partition("=")
        if name == "size":
            match = _SIZE.fullmatch(value.strip())
            return int(match[1]) * _UNITS[match[2].lower()] if match else value
    return None


def _wanted_health(check: Mapping[str, Any] | None, own: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Our healthcheck as the engine stores it: what the spec leaves unset comes from the image's."""
    own = own or {}
    if check is None:
        return own
    return {"Test": check["test"] or own.get("Test"), "Interval": check["interval"] or own.get("Interval"),
            "Timeout": check["timeout"] or own.get("Timeout"), "Retries": check["retries"] or own.get("Retries"),
            "StartPeriod": check["start_period"] or own.get("StartPeriod")}


def _health(check: Mapping[str, Any] | None) -> tuple:
    check = check or {}
    test = tuple(check.get("Test") or ())
    if test[:1] == ("NONE",) or not test:
        return test[:1]
    return test, *(check.get(name) or 0 for name in ("Interval", "Timeout", "Retries", "StartPeriod"))


def _policy(policy: Mapping[str, Any] | None) -> tuple[str, int]:
    policy = policy or {}
    return policy.get("Name") or "no", policy.get("MaximumRetryCount") or 0


def _same_hostname(spec: ContainerSpec, info: Mapping[str, Any]) -> bool:
    live = (info.get("Config") or {}).get("Hostname") or ""
    if spec.hostname:
        return live == spec.hostname
    # The engine's default is the short id; on the host's network it is the host's name.
    return (info.get("HostConfig") or {}).get("NetworkMode") == "host" or live == str(info.get("Id", ""))[:12]


def _same_stop_signal(wanted: str | None, own: str | None, live: str | None) -> bool:
    """The spec's stop signal, else the image's (which the engine may copy into the container's config or not)."""
    return (live or "") == wanted if wanted else (live or "") in ("", own or "")


def _network_checks(spec: ContainerSpec, info: Mapping[str, Any]) -> dict[str, bool]:
    """The networks joined (engine names), each with at least the spec's aliases, and static addresses."""
    mode = (info.get("HostConfig") or {}).get("NetworkMode") or ""
    live_mode = mode if mode in ("host", "none") or mode.startswith("container:") else None
    if spec.network_mode or live_mode:
        return {"network_mode": live_mode == spec.network_mode}
    joined = (info.get("NetworkSettings") or {}).get("Networks") or {}
    wanted = dict(spec.networks) or {DEFAULT_NETWORK: ()}
    same = set(joined) == set(wanted) and all(
        set(aliases) <= set((joined[name] or {}).get("Aliases") or ()) for name, aliases in wanted.items())
    addresses = all(_addresses(spec, name, joined.get(name) or {}) for name in wanted)
    return {"networks": same, "addresses": addresses}


def _addresses(spec: ContainerSpec, network: str, endpoint: Mapping[str, Any]) -> bool:
    wanted = endpoint_arguments(spec, network, ())
    fixed = endpoint.get("IPAMConfig") or {}
    return ((wanted["ipv4_address"] or "") == (fixed.get("IPv4Address") or "")
            and (wanted["ipv6_address"] or "") == (fixed.get("IPv6Address") or ""))


def _host_checks(spec: ContainerSpec, host: Mapping[str, Any]) -> dict[str, bool]:
    """The host config's fields: always when the engine's default is fixed, else when the spec sets them."""
    checks = {
        "memory": (host.get("Memory") or 0) == (spec.memory or 0),
        "nano_cpus": (host.get("NanoCpus") or 0) == (spec.nano_cpus or 0),
        "privileged": bool(host.get("Privileged")) == spec.privileged,
        "init": bool(host.get("Init")) == spec.init,
        "read_only": bool(host.get("ReadonlyRootfs")) == spec.read_only,
        "cap_add": _capabilities(host.get("CapAdd")) == _capabilities(spec.cap_add),
        "cap_drop": _capabilities(host.get("CapDrop")) == _capabilities(spec.cap_drop),
        "sysctls": dict(host.get("Sysctls") or {}) == dict(spec.sysctls),
        "extra_hosts": set(host.get("ExtraHosts") or ()) == set(spec.extra_hosts),
        "dns": list(host.get("Dns") or ()) == list(spec.dns),
        "dns_search": list(host.get("DnsSearch") or ()) == list(spec.dns_search),
        "dns_opt": list(host.get("DnsOptions") or ()) == list(spec.dns_opt),
        "ulimits": {(u.get("Name"), u.get("Soft"), u.get("Hard")) for u in host.get("Ulimits") or ()}
        == set(spec.ulimits),
        "devices": {(d.get("PathOnHost"), d.get("PathInContainer"), d.get("CgroupPermissions"))
                    for d in host.get("Devices") or ()} == {_device(text) for text in spec.devices},
        "security_opt": set(host.get("SecurityOpt") or ()) == set(spec.security_opt),
        "pid": (host.get("PidMode") or "") == (spec.pid or ""),
    }
    log = host.get("LogConfig") or {}
    optional = {
        "shm_size": (spec.shm_size, host.get("ShmSize")), "ipc": (spec.ipc, host.get("IpcMode")),
        "runtime": (spec.runtime, host.get("Runtime")),
        "logging": ((spec.log_driver or log.get("Type"), dict(spec.log_options))
                    if spec.log_driver or spec.log_options else None, (log.get("Type"), log.get("Config") or {})),
    }
    checks.update({path: wanted is None or wanted == live for path, (wanted, live) in optional.items()})
    return checks


def _capabilities(names: Iterable[str] | None) -> set[str]:
    return {name.upper().removeprefix("CAP_") for name in names or ()}


def _device(text: str) -> tuple[str, str, str]:
    """``host[:container[:permissions]]`` as the engine stores it."""
    parts = text.split(":")
    host = parts[0]
    container = parts[1] if len(parts) > 1 and parts[1] else host
    return host, container, parts[2] if len(parts) > 2 else "rwm"


def _file_checks(spec: ContainerSpec, mounts: Iterable[Mapping[str, Any]]) -> dict[str, bool]:
    """Configs and secrets: only files the reconciler wrote (named after their content) are ours."""
    binds = {m.get("Destination"): m for m in mounts if m.get("Type") == "bind"}
    checks = {}
    for kind in ("config", "secret"):
        wanted = [m for m in spec.files if m.kind == kind]
        if wanted:
            checks[f"{kind}s"] = all(_our_file(m, binds.get(m.target)) for m in wanted)
    return checks


def _our_file(mount: FileMount, live: Mapping[str, Any] | None) -> bool:
    if not live or live.get("RW", True):
        return False
    parsed = parse_file_name(posixpath.basename(str(live.get("Source", ""))))
    return parsed == (mount.name, mount.content_hash[:16]) and live["Source"].endswith(f"-{mount.mode:04o}")


# -- networks and volumes ----------------------------------------------------------
def network_differences(spec: NetworkSpec, info: Mapping[str, Any]) -> list[str]:
    """The fields in which the network ``info`` (``inspect_network``) differs from ``spec``.

    The address pool (subnet, gateway, range) only when the spec sets it; an
    attachable network the spec does not ask to be attachable is fine (only a
    Swarm overlay reads it, and Compose v1 makes every network attachable).
    """
    pools = ((info.get("IPAM") or {}).get("Config")) or [{}]
    checks = {
        "driver": info.get("Driver") == spec.driver,
        "internal": bool(info.get("Internal")) == spec.internal,
        "attachable": bool(info.get("Attachable")) or not spec.attachable,
        "subnet": not spec.subnet or any(p.get("Subnet") == spec.subnet for p in pools),
        "gateway": not spec.gateway or any(p.get("Gateway") == spec.gateway for p in pools),
        "ip_range": not spec.ip_range or any(p.get("IPRange") == spec.ip_range for p in pools),
    }
    found = [path for path, same in checks.items() if not same]
    return sorted(found + _options_and_labels(spec, info))


def volume_differences(spec: VolumeSpec, info: Mapping[str, Any]) -> list[str]:
    """The fields in which the volume ``info`` (a list entry or ``inspect_volume``) differs from ``spec``."""
    return sorted((["driver"] if info.get("Driver") != spec.driver else []) + _options_and_labels(spec, info))


def _options_and_labels(spec: NetworkSpec | VolumeSpec, info: Mapping[str, Any]) -> list[str]:
    """Driver options and labels, per key (as their field hashes name them), without Compose's and ours."""
    return (_per_key("options", dict(spec.options), dict(info.get("Options") or {}))
            + _per_key("labels", dict(spec.labels), _labels(info.get("Labels"))))
