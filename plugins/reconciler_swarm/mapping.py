"""From a ``ContainerSpec`` to a Swarm ``ServiceSpec``, and the comparison that finds drift. Pure.

Why a module of its own: what the reconciler sends to the Swarm and what it
compares the live service with must be one function, or a field added to one
side and not the other would read as drift forever (or never). ``service_spec``
builds the exact body of ``POST /services/create`` and ``/update``;
``drifted_fields`` compares a live ``Spec`` with it, field by field, looking
only at what we send (the Swarm adds defaults of its own: ``Isolation``,
``ForceUpdate``, ``Runtime``...) and treating empty values as unset. Nothing
here imports the Docker SDK or reaches an engine, so validation and unit
tests use it freely.
"""
from __future__ import annotations

from typing import Any, Mapping

from reconciler.sdk import ContainerSpec, FileMount

__all__ = ["DRIFT_FIELDS", "drifted_fields", "file_object_name", "service_name_problems", "service_problems",
           "service_spec", "update_config"]

#: Swarm's own default monitor period (seconds), sent when the spec's update policy gives no ``min_ready``.
DEFAULT_MONITOR = 5.0

#: The spec's field → where a service holds it: what drift is reported as, and what it covers.
DRIFT_FIELDS: dict[str, tuple[str, ...]] = {
    "image": ("TaskTemplate", "ContainerSpec", "Image"),
    "entrypoint": ("TaskTemplate", "ContainerSpec", "Command"),
    "command": ("TaskTemplate", "ContainerSpec", "Args"),
    "env": ("TaskTemplate", "ContainerSpec", "Env"),
    "labels": ("Labels",),
    "container_labels": ("TaskTemplate", "ContainerSpec", "Labels"),
    "user": ("TaskTemplate", "ContainerSpec", "User"),
    "working_dir": ("TaskTemplate", "ContainerSpec", "Dir"),
    "hostname": ("TaskTemplate", "ContainerSpec", "Hostname"),
    "mounts": ("TaskTemplate", "ContainerSpec", "Mounts"),
    "stop_signal": ("TaskTemplate", "ContainerSpec", "StopSignal"),
    "stop_grace_period": ("TaskTemplate", "ContainerSpec", "StopGracePeriod"),
    "init": ("TaskTemplate", "ContainerSpec", "Init"),
    "healthcheck": ("TaskTemplate", "ContainerSpec", "Healthcheck"),
    "tty": ("TaskTemplate", "ContainerSpec", "TTY"),
    "stdin_open": ("TaskTemplate", "ContainerSpec", "OpenStdin"),
    "read_only": ("TaskTemplate", "ContainerSpec", "ReadOnly"),
    "extra_hosts": ("TaskTemplate", "ContainerSpec", "Hosts"),
    "dns": ("TaskTemplate", "ContainerSpec", "DNSConfig"),
    "cap_add": ("TaskTemplate", "ContainerSpec", "CapabilityAdd"),
    "cap_drop": ("TaskTemplate", "ContainerSpec", "CapabilityDrop"),
    "sysctls": ("TaskTemplate", "ContainerSpec", "Sysctls"),
    "configs": ("TaskTemplate", "ContainerSpec", "Configs"),
    "secrets": ("TaskTemplate", "ContainerSpec", "Secrets"),
    "resources": ("TaskTemplate", "Resources"),
    "restart": ("TaskTemplate", "RestartPolicy"),
    "placement": ("TaskTemplate", "Placement"),
    "networks": ("TaskTemplate", "Networks"),
    "logging": ("TaskTemplate", "LogDriver"),
    "replicas": ("Mode",),
    "update": ("UpdateConfig",),
    "rollback": ("RollbackConfig",),
    "ports": ("EndpointSpec",),
}
# Maps compared whole: a key the Swarm holds and the spec does not is drift (a label added by hand).
_EXACT_MAPS = frozenset({"Labels", "Sysctls", "Options"})

# What a service cannot do, as the field the spec spells and why.
_REFUSED = (
    ("privileged", lambda s: s.privileged, "a Swarm service cannot run privileged"),
    ("devices", lambda s: s.devices, "a Swarm service cannot map host devices"),
    ("network_mode", lambda s: s.network_mode, "a Swarm service joins networks (overlay), not a network mode"),
    ("pid", lambda s: s.pid, "a Swarm service cannot share a PID namespace"),
    ("ipc", lambda s: s.ipc, "a Swarm service cannot choose its IPC namespace"),
    ("runtime", lambda s: s.runtime, "a Swarm service runs with each node's default OCI runtime"),
    ("platform", lambda s: s.platform, "a Swarm service takes the image's platform (use placement constraints)"),
    ("shm_size", lambda s: s.shm_size, "a Swarm service cannot size /dev/shm"),
    ("ulimits", lambda s: s.ulimits, "ulimits are not mapped to Swarm services by this runtime"),
    ("security_opt", lambda s: s.security_opt, "a Swarm service cannot take security options"),
    ("ipv4_address", lambda s: s.addresses, "a Swarm service's tasks cannot have static addresses"),
    ("ports.host_ip", lambda s: any(p.host_ip for p in s.ports), "a Swarm service publishes on every node's address"),
    ("endpoint_mode", lambda s: s.endpoint_mode == "dnsrr" and s.ports,
     "a Swarm service publishes ports through its virtual IP: dnsrr publishes none (use vip, or drop ports)"),
)


def service_problems(spec: ContainerSpec) -> list[str]:
    """What in ``spec`` a Swarm service cannot honour, one message naming each field."""
    problems = [f"{field}: {why}" for field, present, why in _REFUSED if present(spec)]
    problems += [f"depends_on.{key}: a Swarm service cannot wait for another to complete (condition completed)"
                 for key, condition in spec.depends_on if condition == "completed"]
    return problems


def service_name_problems(name: str) -> list[str]:
    """A Swarm service name is at most 63 characters."""
    return [f"the service name {name} is longer than the 63 characters Swarm allows"] if len(name) > 63 else []


def file_object_name(stack: str, mount: FileMount) -> str:
    """The Swarm config or secret holding one version of a file: ``<stack>_<name>_<content hash[:12]>``.

    Swarm configs and secrets cannot change: a new content is a new object
    (rotation), and the old one goes once no service references it.
    """
    return f"{stack}_{mount.name}_{mount.content_hash[:12]}"


def service_spec(spec: ContainerSpec, labels: Mapping[str, str], *, stack: str,
                 file_ids: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ServiceSpec body for ``spec``, with ``labels`` on the service (the core's ownership labels).

    ``file_ids`` maps each config's or secret's object name to its Swarm ID;
    None leaves the IDs out (what drift compares: the names say it all).
    Networks are named, not given by ID: the engine resolves them.
    """
    return {
        "Name": spec.name,
        "Labels": dict(labels),
        "TaskTemplate": {
            "ContainerSpec": _container_spec(spec, stack, file_ids),
            "Resources": {"Limits": _drop_empty({"NanoCPUs": spec.nano_cpus, "MemoryBytes": spec.memory})},
            "RestartPolicy": _restart_policy(spec.restart),
            "Placement": {
                "Constraints": list(spec.placement_constraints),
                "Preferences": [{"Spread": {"SpreadDescriptor": p}} for p in spec.placement_preferences],
                "MaxReplicas": spec.max_replicas_per_node or 0,
            },
            "Networks": [{"Target": name, "Aliases": list(aliases)} for name, aliases in spec.networks],
            "LogDriver": ({"Name": spec.log_driver or "", "Options": dict(spec.log_options)}
                          if spec.log_driver or spec.log_options else None),
        },
        "Mode": {"Replicated": {"Replicas": spec.replicas if spec.replicas is not None else 1}},
        "UpdateConfig": update_config(spec, failure_action="rollback"),
        "RollbackConfig": update_config(spec, failure_action="pause"),
        "EndpointSpec": {"Mode": spec.endpoint_mode or "vip", "Ports": [_port(p) for p in spec.ports]},
    }


def update_config(spec: ContainerSpec, *, failure_action: str) -> dict[str, Any]:
    """The container's ``update:`` policy as a Swarm UpdateConfig (or RollbackConfig).

    ``order`` → Order (Swarm's default, stop-first, when the spec gives none),
    ``parallelism`` → Parallelism, ``delay`` → Delay, ``min_ready`` → Monitor
    (how long a new task must run before the next is updated; Swarm's 5s when
    unset). A failed update rolls back (``FailureAction: rollback``); a failed
    rollback pauses.
    """
    policy = spec.update
    return {
        "Parallelism": policy.parallelism,
        "Delay": int(policy.delay * 1e9),
        "FailureAction": failure_action,
        "Monitor": int((policy.min_ready or DEFAULT_MONITOR) * 1e9),
        "MaxFailureRatio": 0,
        "Order": policy.order or "stop-first",
    }


def _container_spec(spec: ContainerSpec, stack: str, file_ids: Mapping[str, str] | None) -> dict[str, Any]:
    check = spec.healthcheck
    return {
        "Image": spec.image_ref,
        "Labels": dict(spec.labels),  # the user's only: a task container claims no stack (the docker runtime's)
        "Command": list(spec.entrypoint) if spec.entrypoint is not None else None,
        "Args": list(spec.command) if spec.command is not None else None,
        "Env": [f"{e.name}={e.value}" for e in spec.env],
        "User": spec.user,
        "Dir": spec.working_dir,
        "Hostname": spec.hostname,
        "Mounts": [_mount(m) for m in spec.mounts],
        "StopSignal": spec.stop_signal,
        "StopGracePeriod": spec.stop_grace_period * 10**9 if spec.stop_grace_period is not None else None,
        "Init": spec.init or None,
        "Healthcheck": ({"Test": list(check.test), "Interval": check.interval_ns, "Timeout": check.timeout_ns,
                         "Retries": check.retries, "StartPeriod": check.start_period_ns} if check else None),
        "TTY": spec.tty,
        "OpenStdin": spec.stdin_open,
        "ReadOnly": spec.read_only,
        "Hosts": [_host_line(h) for h in spec.extra_hosts],
        "DNSConfig": _drop_empty({"Nameservers": list(spec.dns), "Search": list(spec.dns_search),
                                  "Options": list(spec.dns_opt)}) or None,
        "CapabilityAdd": list(spec.cap_add),
        "CapabilityDrop": list(spec.cap_drop),
        "Sysctls": dict(spec.sysctls),
        "Configs": [_file(m, stack, file_ids, "Config") for m in spec.files if not m.secret],
        "Secrets": [_file(m, stack, file_ids, "Secret") for m in spec.files if m.secret],
    }


def _file(mount: FileMount, stack: str, file_ids: Mapping[str, str] | None, kind: str) -> dict[str, Any]:
    name = file_object_name(stack, mount)
    ref = {"File": {"Name": mount.target, "UID": str(mount.uid or 0), "GID": str(mount.gid or 0),
                    "Mode": mount.mode}, f"{kind}Name": name}
    if file_ids is not None:
        ref[f"{kind}ID"] = file_ids[name]
    return ref


def _mount(mount) -> dict[str, Any]:
    """A Swarm mount: a named volume is made on each node that runs a task (volumes stay per node)."""
    if mount.type == "tmpfs":
        return {"Type": "tmpfs", "Target": mount.target,
                "TmpfsOptions": {"SizeBytes": mount.tmpfs_size} if mount.tmpfs_size else None}
    return {"Type": mount.type, "Source": mount.source or None, "Target": mount.target, "ReadOnly": mount.read_only}


def _port(port) -> dict[str, Any]:
    return {"Protocol": port.protocol, "TargetPort": port.target, "PublishedPort": port.published,
            "PublishMode": "ingress"}


def _host_line(entry: str) -> str:
    """Compose's ``host:address`` as the hosts-file line Swarm takes (``address host``)."""
    host, _, address = entry.partition(":")
    return f"{address} {host}"


def _restart_policy(text: str) -> dict[str, Any]:
    """The engine's restart policy as a Swarm one. Services are long-running: ``no`` (the default) restarts too."""
    name, _, count = text.partition(":")
    if name == "on-failure":
        return {"Condition": "on-failure", "MaxAttempts": int(count) if count else 0}
    return {"Condition": "any", "MaxAttempts": 0}


def _drop_empty(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if not _empty(v)}


def _empty(value: Any) -> bool:
    return value is None or value is False or value == 0 or (isinstance(value, (str, list, tuple, dict)) and not value)


def drifted_fields(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """The spec fields (``DRIFT_FIELDS``) whose part of the live ``Spec`` differs from ``desired``.

    Both are ServiceSpec dicts (``desired`` from ``service_spec``). Only what
    ``desired`` says is compared, so defaults the Swarm fills in are not
    drift; empty and unset are the same; lists compare item by item, and the
    maps in ``_EXACT_MAPS`` whole (a label added by hand is drift).
    """
    return [name for name, path in DRIFT_FIELDS.items() if _differs(_at(desired, path), _at(live, path), path[-1])]


def _at(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, Mapping) else None
    return data


def _differs(want: Any, have: Any, key: str = "") -> bool:
    if _empty(want) and _empty(have):
        return False
    if isinstance(want, Mapping):
        if not isinstance(have, Mapping):
            return True
        keys = set(want) | set(have) if key in _EXACT_MAPS else set(want)
        return any(_differs(want.get(k), have.get(k), k) for k in keys)
    if isinstance(want, (list, tuple)):
        if not isinstance(have, (list, tuple)) or len(want) != len(have):
            return True
        return any(_differs(w, h, key) for w, h in zip(want, have))
    return want != have
