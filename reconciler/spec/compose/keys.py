"""Every Compose key we know, and what the translator does with it: one table, read by code and docs.

A service key is either passed through under the same name (the stack spec
uses Compose's spelling for it), renamed, translated by a function of the
translator, consumed (it changes what is selected, not a container), ignored
(with the reason in docs/compose.md) or unsupported, with the reason and
what to do instead. A key in none of these is not Compose at all: an error.
"""
from __future__ import annotations

__all__ = ["IGNORED", "PASSED", "RENAMED", "TRANSLATED", "UNSUPPORTED", "UNSUPPORTED_TOP"]

#: Service keys a container takes as they are.
PASSED = frozenset({
    "command", "entrypoint", "user", "working_dir", "stop_signal", "stop_grace_period", "init",
    "privileged", "hostname", "restart", "cpus", "container_name", "cap_add", "cap_drop", "sysctls",
    "extra_hosts", "logging", "ulimits", "expose", "platform", "runtime", "stdin_open", "tty", "read_only",
    "dns", "dns_search", "shm_size", "devices", "security_opt", "pid", "ipc", "network_mode",
})

#: Service key -> the container key that means the same.
RENAMED = {"mem_limit": "memory", "scale": "replicas"}

#: Service keys the translator rewrites (each has a method ``_service_<key>``).
TRANSLATED = frozenset({
    "image", "build", "pull_policy", "environment", "env_file", "labels", "ports", "volumes", "tmpfs",
    "networks", "depends_on", "healthcheck", "deploy", "configs", "secrets", "profiles",
})

#: Keys accepted and dropped because they mean nothing for one engine, with why.
IGNORED = {
    "version": "obsolete: Compose itself ignores it",
}

SWARM_REASON = "a Swarm setting; one engine has no equivalent"
NOT_YET = "reconcile does not set it yet"

#: Service keys we refuse (or drop with --ignore-unsupported), with what to do instead.
UNSUPPORTED = {
    "links": "legacy links: services reach each other by name on a shared network; remove links",
    "external_links": "legacy links to containers outside the project; join a shared network instead",
    "volumes_from": "mounts of another container; name the volumes in volumes: instead",
    "domainname": NOT_YET, "mac_address": NOT_YET, "group_add": NOT_YET, "userns_mode": NOT_YET,
    "cgroup_parent": NOT_YET, "cgroup": NOT_YET, "oom_kill_disable": NOT_YET, "oom_score_adj": NOT_YET,
    "mem_reservation": NOT_YET, "mem_swappiness": NOT_YET, "memswap_limit": NOT_YET, "cpu_shares": NOT_YET,
    "cpu_quota": NOT_YET, "cpu_period": NOT_YET, "cpu_count": NOT_YET, "cpu_percent": NOT_YET,
    "cpuset": NOT_YET, "cpu_rt_runtime": NOT_YET, "cpu_rt_period": NOT_YET, "blkio_config": NOT_YET,
    "storage_opt": NOT_YET, "pids_limit": NOT_YET, "dns_opt": NOT_YET, "device_cgroup_rules": NOT_YET,
    "gpus": NOT_YET, "uts": NOT_YET, "annotations": NOT_YET, "label_file": NOT_YET,
    "post_start": NOT_YET, "pre_stop": NOT_YET, "use_api_socket": NOT_YET,
    "isolation": "Windows containers only", "credential_spec": "Windows containers only",
    "attach": "a setting of 'docker compose up' output; reconcile does not attach to logs",
    "develop": "'docker compose watch' settings; use 'reconcile watch' on the files instead",
    "provider": "Compose provider services run outside the engine",
    "models": "Compose model runner",
}

#: Keys whose value Compose casts after interpolation (``init: ${INIT:-true}``), by the type they take.
CAST = {"init": bool, "privileged": bool, "read_only": bool, "stdin_open": bool, "tty": bool,
        "internal": bool, "attachable": bool, "external": bool, "cpus": float, "scale": int, "replicas": int,
        "retries": int, "target": int, "published": int, "create_host_path": bool}

#: Top-level keys we refuse, with why.
UNSUPPORTED_TOP = {
    "models": "Compose model runner",
}

#: Sub-keys (dotted, relative to the service) that are Swarm's only.
SWARM_DEPLOY = ("mode", "placement", "endpoint_mode", "labels", "rollback_config")
