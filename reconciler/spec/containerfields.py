"""The container fields spelled as Compose spells them, from their spec forms to normalized values.

Compose accepts several forms for most of these (a string or a list, a map or
a list of ``K=V``, ``nofile: 1024`` or ``{soft, hard}``); the schema has
checked the shapes, and this module turns each into the one normalized form
the ``ContainerSpec`` holds and its config hash covers. Order is kept where it
means something to the container (DNS servers, ``/etc/hosts`` lines), sorted
where it does not, so rewriting a map in another order replaces nothing.
"""
from __future__ import annotations

from typing import Any

from ..model import FilesystemPolicy
from . import units
from .conversions import scalar

__all__ = ["container_fields", "filesystem_policy", "parse_expose"]


def container_fields(value: dict) -> dict[str, Any]:
    """The ``ContainerSpec`` keyword arguments for the Compose-spelled fields of one container entry."""
    logging = value.get("logging") or {}
    return {
        "expose": tuple(sorted({port for item in value.get("expose") or [] for port in parse_expose(item)})),
        "cap_add": tuple(sorted(set(value.get("cap_add") or []))),
        "cap_drop": tuple(sorted(set(value.get("cap_drop") or []))),
        "sysctls": tuple(sorted(_key_values(value.get("sysctls")).items())),
        "extra_hosts": _extra_hosts(value.get("extra_hosts")),
        "dns": _strings(value.get("dns")),
        "dns_search": _strings(value.get("dns_search")),
        "dns_opt": _strings(value.get("dns_opt")),
        "shm_size": units.parse_bytes(value["shm_size"]) if value.get("shm_size") is not None else None,
        "ulimits": _ulimits(value.get("ulimits")),
        "devices": tuple(_device(d) for d in value.get("devices") or []),
        "security_opt": _strings(value.get("security_opt")),
        "pid": value.get("pid"),
        "ipc": value.get("ipc"),
        "log_driver": logging.get("driver"),
        "log_options": tuple(sorted(_key_values(logging.get("options")).items())),
        "platform": value.get("platform"),
        "runtime": value.get("runtime"),
        "stdin_open": bool(value.get("stdin_open", False)),
        "tty": bool(value.get("tty", False)),
        "read_only": bool(value.get("read_only", False)),
        "filesystem": filesystem_policy(value.get("filesystem")),
    }


def filesystem_policy(value: str | dict | None) -> FilesystemPolicy:
    """``filesystem: report`` or ``{mode: recreate, ignore: [/tmp]}`` as a policy; paths without a trailing ``/``."""
    if value is None:
        return FilesystemPolicy()
    if isinstance(value, str):
        return FilesystemPolicy(mode=value)
    ignore = {str(path).rstrip("/") or "/" for path in value.get("ignore") or []}
    return FilesystemPolicy(mode=str(value["mode"]), ignore=tuple(sorted(ignore)))


def parse_expose(value: Any) -> list[str]:
    """``80``, ``"80/udp"`` or ``"3000-3002"`` as ``["3000/tcp", "3001/tcp", "3002/tcp"]``."""
    text, _, protocol = str(value).partition("/")
    start, _, end = text.partition("-")
    first, last = int(start), int(end or start)
    if not 0 < first <= last < 65536:
        raise ValueError(f"expose {value!r}: expected ports 1-65535, a range low-high")
    return [f"{port}/{protocol or 'tcp'}" for port in range(first, last + 1)]


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(str(v) for v in value)


def _key_values(value: dict | list | None) -> dict[str, str]:
    """A map, or a list of ``"K=V"``, as a map of strings."""
    if isinstance(value, list):
        return dict(item.partition("=")[::2] for item in value)
    return {str(k): scalar(v) for k, v in (value or {}).items()}


def _extra_hosts(value: dict | list | None) -> tuple[str, ...]:
    """``host:address`` lines: from ``"host:address"``, ``"host=address"`` or a map (an address or a list)."""
    if isinstance(value, dict):
        return tuple(f"{host}:{address}" for host, addresses in value.items()
                     for address in ([addresses] if isinstance(addresses, str) else addresses))
    out = []
    for item in value or []:
        # "host=::1" is Compose's form for IPv6; "host:::1" works too, split at the first colon.
        host, sep, address = item.partition("=")
        if not sep:
            host, _, address = item.partition(":")
        out.append(f"{host}:{address}")
    return tuple(out)


def _ulimits(value: dict | None) -> tuple[tuple[str, int, int], ...]:
    out = []
    for name, limit in (value or {}).items():
        soft, hard = (limit["soft"], limit["hard"]) if isinstance(limit, dict) else (limit, limit)
        if int(soft) > int(hard) and int(hard) != -1:
            raise ValueError(f"ulimits.{name}: soft limit {soft} is above the hard limit {hard}")
        out.append((str(name), int(soft), int(hard)))
    return tuple(sorted(out))


def _device(value: str | dict) -> str:
    """``"/dev/x"``, ``"/dev/x:/dev/y[:rwm]"`` or ``{source, target, permissions}`` as ``host:container:perms``."""
    if isinstance(value, dict):
        source = value["source"]
        return f"{source}:{value.get('target') or source}:{value.get('permissions') or 'rwm'}"
    pieces = value.split(":")
    source = pieces[0]
    target = pieces[1] if len(pieces) > 1 and pieces[1] else source
    return f"{source}:{target}:{pieces[2] if len(pieces) > 2 else 'rwm'}"
